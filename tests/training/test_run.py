"""A run: learns, writes its folder, mixed precision, exports that fail only warn."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from gender_cls.config import ModelConfig, RunConfig, TrainConfig
from gender_cls.training.phases import plan_phases
from gender_cls.training.run import read_history, train
from tests.helpers import tiny_config


@pytest.mark.slow
def test_two_class_run_learns_and_writes_the_run_directory(trained_run):
    run = trained_run.run_dir
    for name in ("model.keras", "model.json", "history.csv", "config.json", "split.json",
                 "training_plots/accuracy_curve.png", "training_plots/loss_curve.png",
                 "checkpoints/best.keras", "model.tflite"):  # fmt: skip
        assert (run / name).is_file(), name
    temp_files = [p.name for p in run.rglob(".*") if p.name != ".lock"]
    assert temp_files == []  # every file was written under a temp name, then renamed
    meta = json.loads((run / "model.json").read_text())
    assert meta["exports"]["tflite"]["max_abs_diff_vs_keras"] < 1e-4
    assert trained_run.card.exports.keys() == {"tflite"}
    assert meta["class_names"] == ["female", "male"] and meta["image_size"] == 64
    assert 0.0 < meta["threshold"] < 1.0
    assert meta["validation"]["at_threshold"]["accuracy"] > 0.8  # chance is 0.5
    assert len(read_history(run / "history.csv")["loss"]) == 8


@pytest.mark.slow
def test_saved_run_model_predicts_raw_pixels(trained_run, two_class_data):
    model = keras.saving.load_model(trained_run.run_dir / "model.keras")
    from gender_cls.data.images import load_image

    paths = sorted((two_class_data / "test" / "male").glob("*.png"))[:4]
    pixels = np.stack([load_image(p, 64) for p in paths])
    assert (model.predict(pixels, verbose=0) > 0.5).mean() >= 0.75


@pytest.mark.slow
def test_two_phases_with_a_local_pretrained_base_augmenting_in_the_model(
    two_class_data, tmp_path, trained_run
):
    from gender_cls.config import AugmentConfig
    from gender_cls.models.classifier import get_base

    base_weights = tmp_path / "base.weights.h5"
    get_base(keras.saving.load_model(trained_run.run_dir / "model.keras")).save_weights(
        base_weights
    )
    config = tiny_config(two_class_data, tmp_path / "ft", head_epochs=2, fine_tune_epochs=2,
                         fine_tune_layers="10", export="onnx")  # fmt: skip
    config.model.weights = str(base_weights)
    config.augment, config.train.augment_on = AugmentConfig(brightness_range=(0.8, 1.2)), "gpu"
    result = train(config, output_model=str(tmp_path / "models" / "model_new.h5"), verbose=0)
    assert result.phase2_start == 2
    assert len(result.history["loss"]) == 4
    for saved in (result.model_path, tmp_path / "ft" / "checkpoints" / "best.keras"):
        model = keras.saving.load_model(saved)  # safe mode, no custom objects: no augment layer
        assert "augment" not in [layer.name for layer in model.layers]
    for name in ("model_new.h5", "model_new.json", "model_new.onnx", "../ft/model.onnx"):
        assert (tmp_path / "models" / name).is_file(), name
    card = json.loads((tmp_path / "models" / "model_new.json").read_text())
    assert card["exports"]["onnx"]["file"] == "model_new.onnx"


@pytest.mark.slow
def test_fine_tune_layers_larger_than_the_base(two_class_data, tmp_path):
    config = tiny_config(two_class_data, tmp_path / "r", head_epochs=1, fine_tune_epochs=1,
                         fine_tune_layers="5000")  # fmt: skip
    config.model.weights = "imagenet"
    from gender_cls.errors import UserError
    from gender_cls.training.phases import prepare_layers

    with pytest.raises(UserError, match="larger than the base"):
        from gender_cls.models.classifier import build_classifier

        config.model.weights = "none"
        prepare_layers(build_classifier(config.model, 2, 32), plan_phases(
            RunConfig(train=config.train))[1])  # fmt: skip


def test_mixed_precision_builds_float16_compute_with_a_float32_output(monkeypatch):
    import tensorflow as tf

    from gender_cls.models.classifier import build_classifier, precision_policy

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"])
    with precision_policy(True):
        model = build_classifier(ModelConfig(weights="none", alpha=0.35), 2, 32)
    assert model.get_layer("pool").compute_dtype == "float16"
    assert model.get_layer("output").compute_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored


def test_mixed_precision_is_ignored_without_a_gpu(monkeypatch, caplog):
    import tensorflow as tf

    from gender_cls.models.classifier import precision_policy

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    with precision_policy(True):
        assert keras.mixed_precision.global_policy().name == "float32"
    assert "no GPU" in caplog.text


def test_multi_class_validation_report_uses_argmax():
    from types import SimpleNamespace

    from gender_cls.training.run import validation_report

    scores = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    index = SimpleNamespace(num_classes=3, class_names=["down", "left", "up"],
                            splits={"val": SimpleNamespace(labels=[0, 1, 2, 2])})  # fmt: skip
    model = SimpleNamespace(predict=lambda ds, verbose=0: scores)
    report = validation_report(model, index, None, TrainConfig())
    assert report["threshold"] is None and report["temperature"] == 1.0
    assert report["argmax"]["accuracy"] == 0.75
    assert report["argmax"]["roc_auc"] is not None


@pytest.mark.slow
def test_a_run_with_every_recipe_option_trains(two_class_data, tmp_path):
    from gender_cls.config import AugmentConfig

    config = tiny_config(two_class_data, tmp_path / "run", head_epochs=2, optimizer="adamw",
                         schedule="cosine", ema=True, mixup=0.2, tensorboard=True,
                         calibrate=True)  # fmt: skip
    config.augment = AugmentConfig(saturation_range=0.3, hue_range=10, grayscale_probability=0.2,
                                   blur_sigma=1.0, jpeg_quality=40)  # fmt: skip
    result = train(config, verbose=0)
    assert len(result.history["loss"]) == 2 and result.card.config.train.mixup == 0.2
    assert list((tmp_path / "run" / "logs").rglob("events.out.tfevents.*"))  # TensorBoard wrote
    calibration = result.card.validation["calibration"]
    assert result.card.temperature == result.card.validation["temperature"] > 0
    assert calibration["ece_after"] <= calibration["ece_before"] + 1e-9


def test_a_run_that_fails_before_its_first_epoch_leaves_the_folder_as_it_was(tmp_path):
    from gender_cls.data.demo import make_direction_dataset
    from gender_cls.errors import UserError

    data = make_direction_dataset(tmp_path / "direction", n_per_class=8, size=32)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("kept")
    config = tiny_config(data, out)
    config.augment.horizontal_flip = True
    with pytest.raises(UserError, match="swap under a horizontal flip"):
        train(config, verbose=0)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_failed_export_after_training_is_a_warning(tmp_path, monkeypatch, caplog):
    from gender_cls.artifacts.card import ModelCard
    from gender_cls.training.run import export_saved

    def broken(*_args, **_kwargs):
        raise RuntimeError("converter crashed\nlong trace")

    monkeypatch.setattr("gender_cls.training.run.export_model", broken)
    card = ModelCard(class_names=["female", "male"], image_size=8)
    with caplog.at_level("WARNING", logger="gender_cls.training.run"):
        assert export_saved([tmp_path / "model.keras"], "tflite", tmp_path, card) == []
    assert "tflite export failed (converter crashed); the Keras model is saved" in caplog.text
