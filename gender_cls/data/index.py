"""Find classes and images in a folder tree, split them, check them, and weigh the classes."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cls.atomic import write_text
from gender_cls.data.images import ImageReadError, is_image_file, read_image
from gender_cls.errors import UserError

log = logging.getLogger(__name__)

SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}
EXTENSIONS_HELP = ".jpg .jpeg .png .bmp .gif .webp"


class DataError(UserError):
    """Bad input data; the message names the path and the fix."""


@dataclass
class Split:
    """Image paths with integer labels (indices into the class names)."""

    paths: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self, num_classes: int) -> list[int]:
        tally = Counter(self.labels)
        return [tally.get(i, 0) for i in range(num_classes)]


@dataclass
class DatasetIndex:
    """The classes of a dataset and its train/val/test splits."""

    root: str
    class_names: list[str]
    splits: dict[str, Split]
    layout: str  # "folders" (train/ and val/ given) or "val_split" (split made here)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def all_paths(self) -> list[str]:
        """Every file of every split, split by split."""
        return [p for split in self.splits.values() for p in split.paths]

    def summary(self) -> str:
        """A table of images per class and split."""
        names = [n for n in ("train", "val", "test") if n in self.splits]
        width = max(len(c) for c in self.class_names + ["class"])
        lines = [f"{'class':<{width}}  " + "  ".join(f"{n:>6}" for n in names)]
        counts = {n: self.splits[n].counts(self.num_classes) for n in names}
        for i, name in enumerate(self.class_names):
            lines.append(f"{name:<{width}}  " + "  ".join(f"{counts[n][i]:>6}" for n in names))
        totals = "  ".join(f"{len(self.splits[n]):>6}" for n in names)
        lines.append(f"{'total':<{width}}  {totals}")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable file(s)")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """The split as plain data, so a later evaluation can reuse it; absolute paths, so it
        resolves from any working directory."""
        return {
            "root": os.path.abspath(self.root),
            "class_names": self.class_names,
            "layout": self.layout,
            "splits": {
                k: {"paths": [os.path.abspath(p) for p in s.paths], "labels": s.labels}
                for k, s in self.splits.items()
            },  # fmt: skip
        }

    def save(self, path: str | Path) -> None:
        write_text(path, json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DatasetIndex:
        """A split.json written by training; a damaged one is a UserError naming it."""
        try:
            raw = json.loads(Path(path).read_text())
            splits = {k: Split(list(v["paths"]), list(v["labels"]))
                      for k, v in raw["splits"].items()}  # fmt: skip
            return cls(raw["root"], list(raw["class_names"]), splits, raw["layout"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise UserError(f"{path}: not a readable split file ({type(error).__name__}: "
                            f"{error}); train again without --resume / --split") from None  # fmt: skip


def _find_split_folder(root: Path, split: str) -> Path | None:
    for name in SPLIT_FOLDERS[split]:
        if (root / name).is_dir():
            return root / name
    return None


def list_images(folder: Path) -> list[Path]:
    """All image files below `folder`, sorted, skipping hidden files and folders."""
    found = []
    for path in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if not hidden and path.is_file() and is_image_file(path):
            found.append(path)
    return sorted(found)


def scan_class_folders(folder: Path) -> dict[str, list[Path]]:
    """Map each visible sub-folder (a class) to its images; errors name the fix."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; pass a folder with one sub-folder per class")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"{folder}: no class folders; put the images in one sub-folder per class "
            f"(e.g. {folder}/female/, {folder}/male/)"
        )
    classes = {d.name: list_images(d) for d in class_dirs}
    for name, images in classes.items():
        if not images:
            raise DataError(
                f"{folder / name}: class folder has no images ({EXTENSIONS_HELP}); "
                "add images or remove the folder"
            )
    return classes


def _labelled(classes: dict[str, list[Path]], class_names: list[str], where: Path) -> Split:
    unknown = sorted(set(classes) - set(class_names))
    if unknown:
        raise DataError(
            f"{where}: class(es) {', '.join(unknown)} not in the training classes "
            f"({', '.join(class_names)}); rename or remove those folders"
        )
    split = Split()
    for name, images in classes.items():
        split.paths += [str(p) for p in images]
        split.labels += [class_names.index(name)] * len(images)
    return split


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split per class with a fixed seed: (rest, held_out), held_out ~ fraction of each class."""
    rng = np.random.default_rng(seed)
    rest, held = Split(), Split()
    labels = np.asarray(split.labels)
    for label in sorted(set(split.labels)):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        n_held = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        for target, chosen in ((held, idx[:n_held]), (rest, idx[n_held:])):
            target.paths += [split.paths[i] for i in sorted(chosen)]
            target.labels += [label] * len(chosen)
    return rest, held


def discover(root: str | Path, val_split: float = 0.2, seed: int = 42) -> DatasetIndex:
    """Find classes and images: ROOT/train|val|test/<class>/ or ROOT/<class>/ (split here)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found; check --data_path")
    train_dir = _find_split_folder(root, "train")
    if train_dir is None:
        classes = scan_class_folders(root)
        class_names = sorted(classes)
        _require_two_classes(class_names, root)
        train, val = stratified_split(_labelled(classes, class_names, root), val_split, seed)
        return DatasetIndex(str(root), class_names, {"train": train, "val": val}, "val_split")

    classes = scan_class_folders(train_dir)
    class_names = sorted(classes)
    _require_two_classes(class_names, train_dir)
    splits = {"train": _labelled(classes, class_names, train_dir)}
    layout = "folders"
    for name in ("val", "test"):
        folder = _find_split_folder(root, name)
        if folder is not None:
            splits[name] = _labelled(scan_class_folders(folder), class_names, folder)
    if "val" not in splits:
        splits["train"], splits["val"] = stratified_split(splits["train"], val_split, seed)
        layout = "val_split"
    return DatasetIndex(str(root), class_names, splits, layout)


def labelled_folder(folder: str | Path, class_names: list[str] | None = None) -> DatasetIndex:
    """A labelled evaluation folder: <class>/ sub-folders, or a root holding test/."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; check --data_path")
    test_dir = _find_split_folder(folder, "test") or folder
    classes = scan_class_folders(test_dir)
    names = class_names or sorted(classes)
    split = _labelled(classes, names, test_dir)
    return DatasetIndex(str(folder), names, {"test": split}, "folders")


def run_split(split_file: Path, name: str) -> DatasetIndex:
    """One split of a run's split.json as an evaluation index (its images as "test")."""
    if not split_file.is_file():
        raise DataError(f"{split_file}: not found; --split needs a run directory written by "
                        "train_model.py (its split.json), else pass --data_path")  # fmt: skip
    index = DatasetIndex.load(split_file)
    if name not in index.splits:
        raise DataError(f"{split_file}: the run has no {name} split (its data had no {name}/ "
                        f"folder); choose one of {', '.join(index.splits)} or pass --data_path")  # fmt: skip
    return DatasetIndex(index.root, index.class_names, {"test": index.splits[name]}, index.layout)


def _require_two_classes(class_names: list[str], folder: Path) -> None:
    if len(class_names) < 2:
        raise DataError(
            f"{folder}: only one class ({class_names[0]}); a classifier needs at least two "
            "class folders"
        )


def check_readable(index: DatasetIndex, workers: int = 4) -> DatasetIndex:
    """Decode every image once; drop unreadable files (logged and counted) from every split."""
    return drop_unreadable(index, find_unreadable(index.all_paths(), workers))


def find_unreadable(paths: list[str], workers: int = 4) -> list[tuple[str, str]]:
    """(path, reason) of each of `paths` that does not decode."""

    def probe(path: str) -> str | None:
        try:
            read_image(path, size_hint=32)
        except ImageReadError as error:
            return error.reason
        return None

    from tqdm import tqdm  # kept out of start-up

    with ThreadPoolExecutor(max_workers=workers) as pool:
        checks = tqdm(pool.map(probe, paths), total=len(paths), desc="checking images",
                      unit="img", disable=not sys.stderr.isatty(), leave=False)  # fmt: skip
        return [(p, r) for p, r in zip(paths, checks, strict=True) if r is not None]


def drop_unreadable(index: DatasetIndex, bad: list[tuple[str, str]]) -> DatasetIndex:
    """`index` without the `bad` (path, reason) files, each logged; every class must keep one."""
    for path, reason in bad:
        log.warning("skipping unreadable image %s (%s)", path, reason)
    if bad:
        log.warning("skipped %d unreadable file(s) of %d", len(bad), len(index.all_paths()))
    bad_set = {p for p, _ in bad}
    splits = {}
    for name, split in index.splits.items():
        keep = [i for i, p in enumerate(split.paths) if p not in bad_set]
        splits[name] = Split([split.paths[i] for i in keep], [split.labels[i] for i in keep])
    checked = DatasetIndex(
        index.root, index.class_names, splits, index.layout, [tuple(b) for b in bad]
    )
    _require_readable_classes(checked)
    return checked


def _require_readable_classes(index: DatasetIndex) -> None:
    counts = index.splits["train"].counts(index.num_classes) if "train" in index.splits else []
    for name, count in zip(index.class_names, counts, strict=False):
        if count == 0:
            raise DataError(
                f"{index.root}: no readable images for class '{name}' in train; "
                "replace the unreadable files listed above"
            )
    for split_name, split in index.splits.items():
        if len(split) == 0:
            raise DataError(
                f"{index.root}: no readable images in {split_name}; "
                "replace the unreadable files listed above"
            )


def class_weights(labels: list[int], num_classes: int) -> dict[int, float]:
    """scikit-learn's 'balanced' class weights as a dict for Keras' fit()."""
    from sklearn.utils.class_weight import compute_class_weight  # kept out of start-up

    classes = np.arange(num_classes)
    weights = compute_class_weight("balanced", classes=classes, y=np.asarray(labels))
    return {int(c): float(w) for c, w in zip(classes, weights, strict=True)}
