"""Pairs files, as the field publishes them: LFW's `pairs.txt` (View 2: folds of matched and
mismatched pairs; CALFW, CPLFW and others use the same lines) and a plain CSV
`path_a,path_b,same[,fold]` for any other pairs (clean against distorted, for example).

Each line names images under one folder; a name never reaches a path unchecked (no separator, no
"..", nothing outside the folder), and every image must exist: a pairs file is read whole and
checked before anything is embedded.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from gender_cls.errors import UserError

PERSON = re.compile(r"[^/\\\x00-\x1f\x7f]{1,200}")
CSV_FOLDS = 10  # a CSV without a fold column is cut into this many folds, by row order


@dataclass(frozen=True)
class Pair:
    """Two images, whether they show one person, and the fold the pair belongs to."""

    a: Path
    b: Path
    same: bool
    fold: int


def read_pairs(pairs_file: str | Path, images: str | Path, folds: int = CSV_FOLDS) -> list[Pair]:
    """The pairs of `pairs_file` (LFW's format, or CSV when it ends in .csv), their images under
    `images`; a malformed line, an unsafe name, a missing image or an empty fold is a UserError
    naming the line."""
    pairs_file, images = Path(pairs_file), Path(images)
    if not pairs_file.is_file():
        raise UserError(f"{pairs_file}: pairs file not found; check --pairs")
    if not images.is_dir():
        raise UserError(f"{images}: folder not found; --images is the folder the pairs name")
    try:
        text = pairs_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{pairs_file}: cannot read ({error})") from None
    reader = _read_csv if pairs_file.suffix.lower() == ".csv" else _read_lfw
    pairs = reader(text, images, pairs_file, folds)
    _check_folds(pairs, pairs_file)
    missing = sorted({str(p) for pair in pairs for p in (pair.a, pair.b) if not p.is_file()})
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise UserError(f"{missing[0]}: image not found{more}; --images must be the folder "
                        f"{pairs_file.name} names its images in")  # fmt: skip
    return pairs


def lfw_image(images: Path, person: str, number: str, where: str) -> Path:
    """DIR/<person>/<person>_<number:04d>.jpg, the layout LFW publishes."""
    if not PERSON.fullmatch(person) or person in (".", ".."):
        raise UserError(f"{where}: {person!r} is not a person's name (no slash, backslash or "
                        "control character)")  # fmt: skip
    if not number.isascii() or not number.isdigit():
        raise UserError(f"{where}: image number {number!r} is not a whole number")
    return images / person / f"{person}_{int(number):04d}.jpg"


def _read_lfw(text: str, images: Path, source: Path, _folds: int = 0) -> list[Pair]:
    """First line: `folds<TAB>pairs per fold` (or one number: one fold); then per fold its
    matched pairs (`name i j`) and its mismatched ones (`name1 i name2 j`)."""
    lines = [line.split() for line in text.splitlines()]
    header = lines[0] if lines else []
    if not header or len(header) > 2 or not all(v.isascii() and v.isdigit() for v in header):
        raise UserError(f"{source} line 1: expected the number of folds and of pairs per fold "
                        "(10<TAB>300), as LFW's pairs.txt begins")  # fmt: skip
    folds, per_fold = (1, int(header[0])) if len(header) == 1 else map(int, header)
    body = [(number, fields) for number, fields in enumerate(lines[1:], 2) if fields]
    expected = folds * per_fold * 2
    if per_fold == 0 or len(body) != expected:
        raise UserError(f"{source}: the first line promises {folds} fold(s) of {per_fold} matched "
                        f"and {per_fold} mismatched pairs ({expected} lines), but "
                        f"{len(body)} follow")  # fmt: skip
    pairs = []
    for position, (number, fields) in enumerate(body):
        where = f"{source} line {number}"
        if len(fields) == 3:
            a, b = (
                lfw_image(images, fields[0], fields[1], where),
                lfw_image(images, fields[0], fields[2], where),
            )
            same = True
        elif len(fields) == 4:
            a, b = (
                lfw_image(images, fields[0], fields[1], where),
                lfw_image(images, fields[2], fields[3], where),
            )
            same = False
        else:
            raise UserError(f"{where}: expected name<TAB>i<TAB>j (same person) or "
                            f"name1<TAB>i<TAB>name2<TAB>j (two people), got {len(fields)} "
                            "fields")  # fmt: skip
        pairs.append(Pair(a, b, same, position // (2 * per_fold)))
    return pairs


def _read_csv(text: str, images: Path, source: Path, folds: int) -> list[Pair]:
    """`path_a,path_b,same[,fold]` with a header; paths relative to `images`; `same` 1/0 (or
    true/false); without a fold column the rows are cut into `folds` folds in order."""
    rows = list(csv.DictReader(text.splitlines()))
    columns = set(rows[0]) if rows else set()
    if not {"path_a", "path_b", "same"} <= columns:
        raise UserError(f"{source}: a pairs CSV needs a header path_a,path_b,same[,fold] and "
                        "one row per pair")  # fmt: skip
    pairs = []
    for number, row in enumerate(rows, 2):
        where = f"{source} line {number}"
        same = str(row["same"]).strip().lower()
        if same not in ("1", "0", "true", "false"):
            raise UserError(f"{where}: same must be 1 or 0, not {row['same']!r}")
        fold = row.get("fold")
        if fold is not None and not (fold.isascii() and fold.isdigit()):
            raise UserError(f"{where}: fold must be a whole number, not {fold!r}")
        order = int(fold) if fold is not None else (number - 2) * folds // len(rows)
        pairs.append(Pair(_inside(images, row["path_a"], where), _inside(images, row["path_b"],
                          where), same in ("1", "true"), order))  # fmt: skip
    return pairs


def _check_folds(pairs: list[Pair], source: Path) -> None:
    """Two folds or more, numbered 0 to N-1, none empty; both kinds of pair present."""
    present = sorted({p.fold for p in pairs})
    empty = sorted(set(range(max(present, default=-1) + 1)) - set(present))
    if empty:
        raise UserError(f"{source}: fold {empty[0]} has no pairs; number the folds 0 to N-1 "
                        "(or give fewer --folds)")  # fmt: skip
    if len(present) < 2:
        raise UserError(f"{source}: {len(present)} fold; the protocol chooses each fold's "
                        "threshold on the other folds, so it needs two or more")  # fmt: skip
    if len({p.same for p in pairs}) < 2:
        raise UserError(f"{source}: pairs of one kind only; the protocol needs pairs of one "
                        "person and pairs of two")  # fmt: skip


def _inside(images: Path, relative: str | None, where: str) -> Path:
    """A CSV path under `images`; an absolute path or one that climbs out is refused."""
    if not relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise UserError(f"{where}: {relative!r} must be a path inside --images (relative, "
                        "no '..')")  # fmt: skip
    return images / relative
