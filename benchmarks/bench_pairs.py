"""The pairs protocol (LFW's View 2 arithmetic) on people of ../shared/data/identities that the
verifier never trained on, clean and with the second image of each pair distorted.

    python benchmarks/bench_pairs.py --data ../shared/data/identities --work /tmp/pbench \
        --model dlib_face_resnet --model runs/verifier

How the pairs are made: the people are shuffled with --seed; the last --test_people of them are
the test people (train a verifier on the others, e.g. with
`gender-cls train-verifier --data_path WORK/train`). They are dealt into --folds folds (each
fold its own people, as in View 2); each fold gets --per_fold pairs of one person (a random
person of the fold with two different images) and --per_fold pairs of two (two different
people of the fold, an image of each). The same pairs are scored clean and, for each distort
kind and for all kinds mixed, with the second image replaced by its distorted copy
(`gender-cls distort`, --seed). Every row is one `gender-cls evaluate-verifier --pairs` call.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("blur", "noise", "fog", "rain", "lowlight", "overexpose", "lowres", "jpeg")


def split_people(data: Path, work: Path, test_people: int, seed: int) -> list[str]:
    """work/train: the people a verifier may train on; work/test: the test people."""
    people = sorted(p.name for p in data.iterdir() if p.is_dir())
    order = np.random.default_rng(seed).permutation(people).tolist()
    test = sorted(order[-test_people:])
    for name in people:
        target = work / ("test" if name in test else "train") / name
        if not target.exists():
            shutil.copytree(data / name, target)
    return test


def make_pairs(work: Path, test: list[str], folds: int, per_fold: int, seed: int) -> list[tuple]:
    """(relative a, relative b, same, fold) rows, each fold its own people."""
    rng = np.random.default_rng(seed)
    people = rng.permutation(test).tolist()
    rows = []
    for fold in range(folds):
        group = people[fold::folds]
        files = {p: sorted(f.name for f in (work / "test" / p).iterdir()) for p in group}
        for _ in range(per_fold):
            person = group[rng.integers(len(group))]
            i, j = rng.choice(len(files[person]), 2, replace=False)
            rows.append((f"{person}/{files[person][i]}", f"{person}/{files[person][j]}", 1, fold))
        for _ in range(per_fold):
            one, two = rng.choice(len(group), 2, replace=False)
            a, b = group[one], group[two]
            rows.append((f"{a}/{rng.choice(files[a])}", f"{b}/{rng.choice(files[b])}", 0, fold))
    return rows


def write_csv(path: Path, rows) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path_a", "path_b", "same", "fold"])
        writer.writerows(rows)
    return path


def distorted(row: tuple, kind: str) -> tuple:
    """The row with its second image replaced by distort's copy of it (in DIST/)."""
    a, b, same, fold = row
    stem = Path(b).with_suffix("")
    return a, f"dist/{stem}_{kind}.jpg", same, fold


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--work", required=True, type=click.Path(path_type=Path))
@click.option("--model", "models", multiple=True, required=True,
              help="A train-verifier run, or a backbone name; repeat for several.")  # fmt: skip
@click.option("--test_people", default=120)
@click.option("--folds", default=10)
@click.option("--per_fold", default=30)
@click.option("--seed", default=7)
def main(data: Path, work: Path, models, test_people, folds, per_fold, seed) -> None:
    work.mkdir(parents=True, exist_ok=True)
    test = split_people(data, work, test_people, seed)
    rows = make_pairs(work, test, folds, per_fold, seed)
    images = work / "images"
    if not images.exists():
        shutil.copytree(work / "test", images)
        subprocess.run([sys.executable, "-m", "gender_cls", "distort", str(work / "test"),
                        str(images / "dist"), "--kinds", ",".join(KINDS), "--seed",
                        str(seed)], check=True, cwd=ROOT)  # fmt: skip
    rng = np.random.default_rng(seed)
    sets = {
        "clean": rows,
        **{k: [distorted(r, k) for r in rows] for k in KINDS},
        "mixed": [distorted(r, KINDS[rng.integers(len(KINDS))]) for r in rows],
    }
    print(f"{len(test)} test people, {len(rows)} pairs in {folds} folds; pairs files in {work}")
    results = {}
    for model in models:
        for name, chosen in sets.items():
            pairs = write_csv(work / f"pairs_{name}.csv", chosen)
            out = work / "out" / Path(model).name / name
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "gender_cls", "evaluate-verifier",
                            "--model_path", str(model), "--pairs", str(pairs), "--images",
                            str(images), "--output_dir", str(out)], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            m = json.loads((out / "metrics.json").read_text())
            results[(model, name)] = m
            print(f"{Path(model).name:<20} {name:<11} accuracy {m['accuracy_mean']:.4f} +- "
                  f"{m['accuracy_std']:.4f}  ROC AUC {m['roc_auc']:.4f}  TAR@FAR1e-3 "
                  f"{m['tar_at_far']['0.001']:.4f}  no face {m['no_face']}/{m['images']}  "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
