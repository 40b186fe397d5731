"""The tf.data pipeline: shapes, order, oversampling, shards, unreadable files, mixup."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from gender_cls.config import AugmentConfig
from gender_cls.data.index import discover
from gender_cls.data.pipeline import encode_labels, make_dataset, predict_dataset
from tests.helpers import FACES, XRAY, make_image_tree, needs

TRAIN_ON_BROKEN_FILES = """
import sys
import numpy as np
import tensorflow as tf
from gender_cls.data.index import Split
from gender_cls.data.pipeline import make_dataset
paths = sys.argv[1:]
for oversample in (False, True):
    ds = make_dataset(Split(paths, [0, 1] * (len(paths) // 2)), 2, 32, 2, training=True,
                      oversample=oversample)
    try:
        list(ds)
    except tf.errors.FailedPreconditionError as error:
        print("ended:", "expected to contain" in str(error))
"""


def test_encode_labels_binary_and_one_hot():
    assert encode_labels([0, 1], 2).tolist() == [[0.0], [1.0]]
    assert encode_labels([2, 0], 3).tolist() == [[0, 0, 1], [1, 0, 0]]


def test_batches_have_model_shapes(split_tree):
    index = discover(split_tree)
    ds = make_dataset(index.splits["val"], 2, 24, 5)
    batches = list(ds)
    assert [len(x) for x, _ in batches] == [5, 3]
    x, y = batches[0]
    assert x.shape == (5, 24, 24, 3) and x.dtype.name == "float32" and y.shape == (5, 1)


def test_training_order_repeats_with_a_seed(split_tree):
    index = discover(split_tree)
    aug = AugmentConfig(rotation_range=20)

    def first_epoch(seed):
        ds = make_dataset(index.splits["train"], 2, 16, 4, training=True, augment=aug, seed=seed)
        return np.concatenate([x.numpy() for x, _ in ds])

    np.testing.assert_array_equal(first_epoch(3), first_epoch(3))
    assert not np.array_equal(first_epoch(3), first_epoch(4))


def test_epochs_are_reshuffled(split_tree):
    index = discover(split_tree)
    ds = make_dataset(index.splits["train"], 2, 8, 20, training=True, seed=1)
    one, two = (next(iter(ds))[0].numpy() for _ in range(2))
    assert not np.array_equal(one, two)


@pytest.mark.parametrize("oversample", [False, True])
def test_an_epoch_does_not_depend_on_how_far_a_dropped_iterator_read_ahead(split_tree, oversample):
    """Keras (JAX) opens an iterator to build the model, takes one batch and drops it; the next
    epoch's order must not depend on how far that iterator's parallel decoding had read ahead
    (into the next pass over the files) before it was dropped."""
    index = discover(split_tree)

    def second_epoch(read_ahead: bool):
        ds = make_dataset(index.splits["train"], 2, 8, 10, training=True, oversample=oversample,
                          seed=5)  # fmt: skip
        first = iter(ds)
        if read_ahead:
            next(first)
            time.sleep(1.0)  # the decoders run on past the epoch's end, into the next pass
        del first
        return np.concatenate([x.numpy() for x, _ in ds])

    np.testing.assert_array_equal(second_epoch(read_ahead=False), second_epoch(read_ahead=True))


def test_oversampling_balances_classes(tmp_path):
    root = make_image_tree(tmp_path / "imb", {"big": 40, "small": 5}, size=8)
    index = discover(root, val_split=0.1)
    train = index.splits["train"]
    ds = make_dataset(train, 2, 8, 16, training=True, oversample=True, seed=0)
    labels = np.concatenate([y.numpy()[:, 0] for _ in range(10) for _, y in ds])
    epoch = max(train.counts(2)) * 2
    assert len(labels) == 10 * epoch
    assert abs(labels.mean() - 0.5) < 0.05  # small class drawn as often as the big one


def test_images_per_class_draws_runs_of_one_class(tmp_path):
    root = make_image_tree(tmp_path / "three", {"a": 6, "b": 6, "c": 3}, size=8)
    train = discover(root, val_split=0.1).splits["train"]
    ds = make_dataset(train, 3, 8, 12, training=True, images_per_class=4, seed=0)
    labels = np.concatenate([y.numpy().argmax(axis=1) for _, y in ds])
    assert len(labels) == len(train)  # an epoch is as long as the split
    runs = labels[: len(labels) // 4 * 4].reshape(-1, 4)
    assert (runs == runs[:, :1]).all()  # every run of 4 is one class, the small one included
    assert len(set(runs[:, 0].tolist())) > 1


def test_predict_dataset_keeps_order(split_tree):
    index = discover(split_tree)
    paths = index.splits["test"].paths
    images = np.concatenate(list(predict_dataset(paths, 12, 3).as_numpy_iterator()))
    assert images.shape == (len(paths), 12, 12, 3)
    first = np.concatenate(list(predict_dataset(paths[:1], 12, 3).as_numpy_iterator()))
    np.testing.assert_array_equal(images[:1], first)


@needs(FACES)
def test_real_faces_flow_through_the_pipeline():
    index = discover(FACES)
    ds = make_dataset(index.splits["val"], 2, 64, 32, training=True, augment=AugmentConfig())
    x, y = next(iter(ds))
    assert x.shape == (32, 64, 64, 3) and float(x.numpy().max()) <= 255.0


@needs(XRAY)
def test_grayscale_xrays_become_rgb_batches():
    index = discover(XRAY)
    x, _ = next(iter(make_dataset(index.splits["test"], 2, 64, 8)))
    assert x.shape == (8, 64, 64, 3)
    np.testing.assert_array_equal(x[..., 0], x[..., 1])


def test_images_stay_with_their_labels(tmp_path):
    root = make_image_tree(tmp_path / "lr", {"left": 20, "right": 20}, size=16)
    index = discover(root, val_split=0.1)
    for oversample in (False, True):
        ds = make_dataset(index.splits["train"], 2, 16, 8, training=True, oversample=oversample)
        for x, y in ds:
            x = x.numpy()
            right_brighter = x[:, :, 8:].mean(axis=(1, 2, 3)) > x[:, :, :8].mean(axis=(1, 2, 3))
            np.testing.assert_array_equal(right_brighter, y.numpy()[:, 0] == 1)


def test_an_epoch_of_unreadable_files_ends_with_an_error_instead_of_spinning(tmp_path):

    paths = []
    for i in range(4):
        (tmp_path / f"{i}.jpg").write_text("broken after the check")
        paths.append(str(tmp_path / f"{i}.jpg"))
    out = subprocess.run([sys.executable, "-c", TRAIN_ON_BROKEN_FILES, *paths],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.stdout.split("\n")[:2] == ["ended: True", "ended: True"], out.stderr[-2000:]


def test_process_shards_together_are_the_one_process_batches(split_tree):
    train = discover(split_tree).splits["train"]
    whole = list(make_dataset(train, 2, 32, 4, training=True, seed=3).as_numpy_iterator())
    shards = [list(make_dataset(train, 2, 32, 4, training=True, seed=3, shard=(i, 2))
                   .as_numpy_iterator()) for i in (0, 1)]  # fmt: skip
    full = len(train) // 4
    assert len(shards[0]) == len(shards[1]) == full  # the last partial global batch is dropped
    for step in range(full):
        for part in (0, 1):  # images and targets
            joined = np.concatenate([shards[0][step][part], shards[1][step][part]])
            np.testing.assert_array_equal(joined, whole[step][part])


def test_mixup_blends_images_and_targets(two_class_data):
    from gender_cls.data.index import discover
    from gender_cls.data.pipeline import make_dataset, mixup

    split = discover(two_class_data).splits["train"]
    plain = make_dataset(split, 2, 64, 16, training=True, seed=3)
    mixed = mixup(plain, 0.4, seed=3)
    x, y = next(iter(mixed))
    assert x.dtype == "float32" and x.shape == (16, 64, 64, 3)
    soft = (y.numpy() > 0.01) & (y.numpy() < 0.99)
    assert soft.any()  # some targets are blends, not 0/1


def non_utf8_copy(folder) -> str:
    """A copy of the folder's first image under a name that is not UTF-8 (Latin-1 "café"), as
    os.listdir gives it back: with a surrogate escape."""
    import os

    source = sorted(os.listdir(folder))[0]
    target = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    with open(os.path.join(folder, source), "rb") as src, open(target, "wb") as dst:
        dst.write(src.read())
    return os.fsdecode(target)


def test_a_file_name_that_is_not_utf8_trains_and_predicts(split_tree):
    """TensorFlow took paths as UTF-8 and refused the surrogate: training and Keras-backend
    evaluation broke on such a name. They travel as the file system's bytes now."""
    name = non_utf8_copy(split_tree / "train" / "male")
    index = discover(split_tree)
    assert name in index.splits["train"].paths
    batches = list(make_dataset(index.splits["train"], 2, 24, 64, training=True, seed=0))
    assert len(batches[0][0]) == len(index.splits["train"].paths)
    images = np.concatenate(list(predict_dataset([name], 12, 1).as_numpy_iterator()))
    assert images.shape == (1, 12, 12, 3) and images.any()
