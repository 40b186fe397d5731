"""Per-group metrics: how a model does on each group of images (age band, skin tone...) and the
largest gap between groups. Groups come from a CSV file or from UTKFace-style file names."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from gender_cls.errors import UserError

UTKFACE_RACES = ("White", "Black", "Asian", "Indian", "Others")  # as UTKFace's README names them
UTKFACE_AGE_BANDS = ((0, 17, "0-17"), (18, 29, "18-29"), (30, 44, "30-44"), (45, 59, "45-59"),
                     (60, 200, "60+"))  # fmt: skip
UNLISTED = "(not listed)"


def utkface_groups(paths: list[str]) -> dict[str, list[str]]:
    """Age band and race from UTKFace names, `age_gender_race_date.jpg`; others are unlisted."""
    groups: dict[str, list[str]] = {"age": [], "race": []}
    for path in paths:
        parts = Path(path).name.split("_")
        try:
            age, race = int(parts[0]), int(parts[2])
            band = next(name for low, high, name in UTKFACE_AGE_BANDS if low <= age <= high)
            groups["age"].append(band)
            groups["race"].append(UTKFACE_RACES[race])
        except (IndexError, ValueError, StopIteration):
            groups["age"].append(UNLISTED)
            groups["race"].append(UNLISTED)
    return groups


def csv_groups(csv_path: str | Path, paths: list[str]) -> dict[str, list[str]]:
    """Attributes from a CSV whose first column is an image path or file name and whose other
    columns (with a header row) are attributes, e.g. `path,age_band,skin_tone`."""
    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{csv_path}: cannot read the groups file ({error})") from None
    if len(rows) < 2 or len(rows[0]) < 2:
        raise UserError(f"{csv_path}: expected a header row (path, then attributes) and at "
                        "least one image row")  # fmt: skip
    attributes = [name.strip() for name in rows[0][1:]]
    by_key: dict[str, list[str]] = {}
    for row in rows[1:]:
        if row and row[0].strip():
            values = [v.strip() for v in row[1:]] + [UNLISTED] * len(attributes)
            by_key[_key(row[0].strip())] = values[: len(attributes)]
    matched = [by_key.get(_key(p)) or by_key.get(Path(p).name) for p in paths]
    if not any(matched):
        raise UserError(f"{csv_path}: none of its rows names an evaluated image; give paths or "
                        "file names in the first column")  # fmt: skip
    return {
        name: [row[i] if row else UNLISTED for row in matched] for i, name in enumerate(attributes)
    }


def _key(path: str) -> str:
    """Full paths match by their resolved form, bare names by the name."""
    return str(Path(path).resolve()) if ("/" in path or "\\" in path) else path


def load_groups(spec: str, paths: list[str]) -> dict[str, list[str]]:
    """`utkface` or the path of a CSV file -> {attribute: group of each image}."""
    return utkface_groups(paths) if spec == "utkface" else csv_groups(spec, paths)


def group_table(y_true, y_pred, class_names: list[str], groups: dict[str, list[str]]) -> dict:
    """Per attribute and group: count, accuracy, recall of each class; and per attribute the
    largest gap in accuracy and in each class's recall between its groups (unlisted left out)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    table = {}
    for attribute, labels in groups.items():
        labels = np.asarray(labels)
        rows = {}
        for group in sorted(set(labels)):
            member = labels == group
            correct = y_true[member] == y_pred[member]
            recall = {}
            for index, name in enumerate(class_names):
                of_class = y_true[member] == index
                recall[name] = float(correct[of_class].mean()) if of_class.any() else None
            rows[group] = {"count": int(member.sum()), "accuracy": float(correct.mean()),
                           "recall": recall}  # fmt: skip
        table[attribute] = {"groups": rows, "largest_gap": _gaps(rows, class_names)}
    return table


def _gaps(rows: dict, class_names: list[str]) -> dict:
    listed = {g: r for g, r in rows.items() if g != UNLISTED}
    gaps = {"accuracy": _spread({g: r["accuracy"] for g, r in listed.items()})}
    for name in class_names:
        gaps[f"recall_{name}"] = _spread({g: r["recall"][name] for g, r in listed.items()})
    return gaps


def _spread(values: dict[str, float | None]) -> dict | None:
    """{gap, best, worst}: the difference between the best and the worst group, or None."""
    known = {g: v for g, v in values.items() if v is not None}
    if len(known) < 2:
        return None
    best, worst = max(known, key=known.get), min(known, key=known.get)
    return {"gap": known[best] - known[worst], "best": best, "worst": worst}


def format_report(table: dict, class_names: list[str]) -> str:
    """The group table as aligned text, one block per attribute."""
    lines = []
    for attribute, entry in table.items():
        width = max(len(g) for g in entry["groups"]) + 2
        header = f"{attribute:<{width}}{'count':>7}{'accuracy':>10}"
        header += "".join(f"{'recall ' + n:>{max(14, len(n) + 9)}}" for n in class_names)
        lines += [header]
        for group, row in entry["groups"].items():
            line = f"{group:<{width}}{row['count']:>7}{row['accuracy']:>10.4f}"
            for name in class_names:
                value = row["recall"][name]
                cell = "-" if value is None else f"{value:.4f}"
                line += f"{cell:>{max(14, len(name) + 9)}}"
            lines.append(line)
        for metric, spread in entry["largest_gap"].items():
            if spread is not None:
                lines.append(f"largest {metric} gap: {spread['gap']:.4f} "
                             f"({spread['best']} vs {spread['worst']})")  # fmt: skip
        lines.append("")
    return "\n".join(lines)
