"""A recipe study of the verifier that runs on any Keras backend (JAX on a GPU machine, where
TensorFlow is absent): train-verifier's embedder, losses, augmentation and distortions, fed from
a bank of pre-augmented variants of each image instead of tf.data, several recipes in one run.
The first recipe is the baseline the others are compared with. Figures come from 50 test people
(never trained on, not used for the threshold), their probes clean and under every distortion.

    KERAS_BACKEND=jax python benchmarks/study_verifier.py --data ../shared/data/identities \
        --out results.jsonl --configs '[{"loss": "cosface"}, {"loss": "triplet"}]'

Recipe keys (defaults as train-verifier's): loss cosface|triplet, margin, scale, tmargin, k,
head bn|plain (plain: GAP -> Dense -> L2, the head before BN-FC-BN), opt adam|adamw|sgd, lr,
wd, epochs, batch, size, alpha, dim, p (distortion probability).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

STUB = os.environ["KERAS_BACKEND"] != "tensorflow"
if STUB:  # augment.py imports tf for its tf.data part only
    sys.modules["tensorflow"] = types.ModuleType("tensorflow")
from gender_cls.data.augment.in_pipeline import augment_image  # noqa: E402

if STUB:
    del sys.modules["tensorflow"]
from gender_cls.config import (  # noqa: E402
    AugmentConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    VerifierOptions,  # noqa: E402
)
from gender_cls.data.augment.distort import KINDS, distort  # noqa: E402
from gender_cls.data.images import read_image, resize_image  # noqa: E402
from gender_cls.metrics.thresholds import tune_threshold  # noqa: E402
from gender_cls.verify.embedding import (  # noqa: E402
    build_embedder,
    cosface_trainer,
    semi_hard_triplet_loss,
    similarities,
)
from gender_cls.verify.evaluate import verification_metrics  # noqa: E402


def augment_config(p):
    return AugmentConfig(rotation_range=10.0, zoom_range=0.1, width_shift_range=0.05,
                         height_shift_range=0.05, distort_probability=p)  # fmt: skip


def variants(job):
    path, size, n, seed, p = job
    image = read_image(path, size_hint=size)
    return np.stack(
        [augment_image(image, augment_config(p), seed * 1000 + i, size) for i in range(n)]
    )


def people(root):
    return {d.name: sorted(str(f) for f in d.iterdir()) for d in sorted(Path(root).iterdir())}


def split(all_people, seed=7):
    """(train, validation (for the threshold), test) people: 50 test, 30 validation."""
    names = sorted(all_people)
    order = np.random.default_rng(seed).permutation(names).tolist()
    return sorted(order[80:]), sorted(order[50:80]), sorted(order[:50])


def open_set(all_people, names, size, seed, kinds):
    """Gallery: first image of every other person; probes: the rest of theirs and every image of
    the others, clean and under each distortion kind."""
    known = names[::2]
    gallery, probes, labels, truth, probe_kinds = {}, [], [], [], []
    for name in names:
        files = all_people[name]
        if name in known:
            gallery[name] = [resize_image(read_image(files[0]), size)]
            files = files[1:]
        for f in files:
            image = read_image(f)
            for kind in ["clean", *kinds]:
                rng = np.random.default_rng([seed, zlib.crc32(f.encode()), len(kind)])
                shown = image if kind == "clean" else distort(image, kind, rng)
                probes.append(resize_image(shown, size))
                labels.append(int(name in known))
                truth.append(name)
                probe_kinds.append(kind)
    return gallery, np.stack(probes), np.asarray(labels), truth, probe_kinds


def scores(embedder, gallery, probes, aggregate="max"):
    g = {n: embedder.predict(np.stack(v).astype("float32"), verbose=0) for n, v in gallery.items()}
    p = embedder.predict(probes.astype("float32"), batch_size=256, verbose=0)
    sims = similarities(p, g, aggregate)
    return sims, list(g)


def build(cfg, size, n_people):
    config = RunConfig(DataConfig("x", image_size=size), model=ModelConfig(
        weights="none", alpha=cfg.get("alpha", 0.35)))  # fmt: skip
    embedder = build_embedder(config, size, cfg.get("dim", 128))
    if cfg.get("head") == "plain":
        x = keras.layers.Dense(cfg.get("dim", 128))(embedder.get_layer("pool").output)
        embedder = keras.Model(embedder.input, keras.layers.UnitNormalization()(x))
    if cfg["loss"] == "triplet":
        return embedder, embedder, semi_hard_triplet_loss(cfg.get("tmargin", 0.2))
    options = VerifierOptions(margin=cfg.get("margin", 0.35), scale=cfg.get("scale", 30.0))
    trainer = cosface_trainer(embedder, n_people, options)
    return embedder, trainer, keras.losses.CategoricalCrossentropy(from_logits=True)


def run(cfg, banks, evalsets):
    size = cfg.get("size", 96)
    bank, labels = banks[(size, cfg.get("p", 0.5))]
    n_people = int(labels.max()) + 1
    keras.utils.set_random_seed(42)
    embedder, trainer, loss = build(cfg, size, n_people)
    batch, epochs, lr = cfg.get("batch", 32), cfg.get("epochs", 120), cfg.get("lr", 3e-3)
    steps = len(labels) // batch
    warm = steps
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, steps * epochs - warm), warmup_target=lr, warmup_steps=warm
    )
    if cfg.get("opt") == "sgd":
        opt = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                                   weight_decay=cfg.get("wd"))  # fmt: skip
    elif cfg.get("opt") == "adamw":
        opt = keras.optimizers.AdamW(schedule, weight_decay=cfg.get("wd", 0.004))
    else:
        opt = keras.optimizers.Adam(schedule)
    trainer.compile(opt, loss)
    onehot = np.eye(n_people, dtype="float32")[labels]
    rng = np.random.default_rng(0)
    k = cfg.get("k", 4)

    def batches():
        while True:
            if cfg["loss"] == "triplet":
                order = []
                while len(order) < steps * batch:
                    person = rng.integers(n_people)
                    mine = np.flatnonzero(labels == person)
                    order += rng.choice(mine, k, replace=len(mine) < k).tolist()
                order = np.asarray(order)
            else:
                order = rng.permutation(len(labels))
            pick = rng.integers(bank.shape[1], size=len(order))
            for s in range(steps):
                idx = order[s * batch : (s + 1) * batch]
                x = bank[idx, pick[s * batch : (s + 1) * batch]].astype("float32")
                y = onehot[idx]
                yield ((x, y), y) if cfg["loss"] != "triplet" else (x, y)

    start = time.perf_counter()
    history = trainer.fit(batches(), steps_per_epoch=steps, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    result = {
        "cfg": cfg,
        "train_s": round(seconds, 1),
        "loss": round(history.history["loss"][-1], 4),
    }
    val = evalsets[("val", size)]
    sims, _ = scores(embedder, val[0], val[1])
    threshold = tune_threshold(val[2], sims.max(axis=1), "balanced_accuracy")
    test = evalsets[("test", size)]
    sims, names = scores(embedder, test[0], test[1])
    best, guess = sims.max(axis=1), [names[i] for i in sims.argmax(axis=1)]
    top1 = [g == t for g, t, known in zip(guess, test[3], test[2], strict=True) if known]
    m = verification_metrics(test[2], best, threshold, top1)
    result["max"] = {k: round(v, 4) for k, v in m.items() if k != "probes"}
    clean = np.asarray(test[4]) == "clean"
    result["auc_clean"] = round(
        verification_metrics(test[2][clean], best[clean], threshold, [])["roc_auc"], 4
    )
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--configs", required=True, help="a JSON list of recipes, or its file")
    parser.add_argument("--variants", type=int, default=12)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    text = args.configs
    configs = json.loads(text if text.lstrip().startswith("[") else Path(text).read_text())
    all_people = people(args.data)
    train, val, test = split(all_people)
    files = [(f, i) for i, n in enumerate(train) for f in all_people[n]]
    t0 = time.perf_counter()
    banks, evalsets = {}, {}
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        for key in {(c.get("size", 96), c.get("p", 0.5)) for c in configs}:
            size, p = key
            jobs = [(f, size, args.variants, j, p) for j, (f, _) in enumerate(files)]
            bank = np.stack(list(pool.map(variants, jobs, chunksize=16)))
            banks[key] = (bank, np.asarray([i for _, i in files]))
    for size in {c.get("size", 96) for c in configs}:
        evalsets[("val", size)] = open_set(all_people, val, size, 3, KINDS[::3])
        evalsets[("test", size)] = open_set(all_people, test, size, 1, KINDS)
    print(f"{len(train)} train / {len(val)} val / {len(test)} test people; data ready in "
          f"{time.perf_counter() - t0:.0f}s", flush=True)  # fmt: skip
    baseline = None
    for cfg in configs:
        result = run(cfg, banks, evalsets)
        baseline = baseline or result
        result["vs_baseline"] = {k: round(result["max"][k] / max(baseline["max"][k], 1e-9), 3)
                                 for k in ("roc_auc", "tar_at_far_1e-3", "top1_accuracy")}  # fmt: skip
        print(json.dumps(result), flush=True)
        with open(args.out, "a") as handle:
            handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
