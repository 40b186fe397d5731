"""Face verification on people never seen in training nor in the threshold's tuning, through the
three commands (train-verifier, distort, evaluate-verifier), with wall times.

    python benchmarks/bench_verification.py --data ../shared/data/identities --work /tmp/vbench
    python benchmarks/bench_verification.py ... -- --epochs 40 --loss triplet   # train options
    python benchmarks/bench_verification.py ... --run RUN   # evaluate a verifier trained before

The people are split with --seed into --test_people test people and the rest, which
train-verifier trains on (holding --val_people of them out to tune the threshold). The test
people alternate between known (first image in the gallery, the others are genuine probes) and
unknown (every image an impostor probe); each probe is used clean and under every distortion.
The baseline is the clean probes: the table shows each distortion's figures beside them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("accuracy", "f1", "roc_auc", "tar_at_far_1e-2", "tar_at_far_1e-3", "top1_accuracy")


def gender_cls(*args: str) -> float:
    """Run a gender-cls command; its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gender_cls", *args], cwd=ROOT, check=True)
    return time.perf_counter() - start


def set_test_people_apart(data: Path, work: Path, test_people: int, seed: int) -> list[str]:
    """Copy the training people to work/train; the test people's images go to work/gallery and
    work/clean (probes). Returns the test people."""
    people = sorted(p.name for p in data.iterdir() if p.is_dir())
    test = sorted(np.random.default_rng(seed).permutation(people)[:test_people].tolist())
    for name in people:
        images = sorted(f for f in (data / name).iterdir() if f.is_file())
        if name not in test:
            shutil.copytree(data / name, work / "train" / name)
            continue
        probes = images
        if test.index(name) % 2 == 0:  # known: the first image is the gallery
            (work / "gallery" / name).mkdir(parents=True)
            shutil.copy(images[0], work / "gallery" / name)
            probes = images[1:]
        (work / "clean" / name).mkdir(parents=True)
        for image in probes:
            shutil.copy(image, work / "clean" / name)
    return test


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--work", required=True, type=click.Path(file_okay=False), help="Emptied first.")
@click.option("--test_people", default=50, show_default=True)
@click.option("--seed", default=7, show_default=True, help="Picks the test people.")
@click.option("--run", "run_dir", default=None, help="A verifier trained before (not again).")
@click.argument("train_options", nargs=-1, type=click.UNPROCESSED)
def main(data, work, test_people, seed, run_dir, train_options) -> None:
    work = Path(work)
    shutil.rmtree(work, ignore_errors=True)
    test = set_test_people_apart(Path(data), work, test_people, seed)
    run = Path(run_dir) if run_dir else work / "run"
    if run_dir:
        trained = set(json.loads((run / "verifier.json").read_text())["train_people"])
        if trained & set(test):
            raise click.UsageError(f"{run} was trained on test people; use another --seed")
        train_s = None
    else:
        train_s = gender_cls("train-verifier", "--data_path", str(work / "train"),
                             "--output_dir", str(run), *train_options)  # fmt: skip
    gender_cls("distort", str(work / "clean"), str(work / "probes"), "--seed", "1")
    shutil.copytree(work / "clean", work / "probes", dirs_exist_ok=True)
    eval_s = gender_cls("evaluate-verifier", "--model_path", str(run), "--gallery",
                        str(work / "gallery"), "--probes", str(work / "probes"),
                        "--output_dir", str(work / "results"))  # fmt: skip
    result = json.loads((work / "results" / "metrics.json").read_text())
    rows = {"all": result["overall"], **result["per_kind"]}
    print(f"\n{len(test)} test people; train {train_s or 0:.0f}s, evaluate {eval_s:.0f}s; "
          f"threshold {result['threshold']:.3f}")  # fmt: skip
    print(f"{'probes':<12}{'n':>6}" + "".join(f"{m:>17}" for m in METRICS))
    for kind, m in rows.items():
        cells = "".join(f"{m[k]:>17.3f}" if m[k] is not None else f"{'-':>17}" for k in METRICS)
        print(f"{kind:<12}{m['probes']:>6}{cells}")
    clean = rows["clean"]["roc_auc"]
    worst = min((m["roc_auc"], k) for k, m in rows.items() if k not in ("all", "clean"))
    print(f"ROC AUC of the worst distortion vs clean: {worst[0]:.3f} / {clean:.3f} = "
          f"{worst[0] / clean:.2f} ({worst[1]})")  # fmt: skip


if __name__ == "__main__":
    main()
