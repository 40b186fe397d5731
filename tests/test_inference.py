"""predict.py and the Predictor: files, folders, mixed lists with a corrupt file, JSON, thresholds."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gender_cls.cli import predict_command
from gender_cls.images import load_image
from gender_cls.inference import Predictor
from gender_cls.model_input import InputSpec


@pytest.mark.slow
def test_predict_one_file_prints_label_confidence_path(trained_run, two_class_data):
    image = sorted((two_class_data / "test" / "male").glob("*.png"))[0]
    result = CliRunner().invoke(predict_command, ["--image_path", str(image),
                                                  "--model_path", str(trained_run.run_dir)])  # fmt: skip
    assert result.exit_code == 0, result.output
    label, p_male, probability, sign, _, threshold, path = result.output.split()
    assert label in ("female", "male") and p_male == "P(male)" and path == str(image)
    assert 0 <= float(probability.rstrip("%")) <= 100 and 0 <= float(threshold.rstrip("%")) <= 100
    assert (label == "male") == (sign == ">=")  # the line explains the label


@pytest.mark.slow
def test_predict_folder_and_mixed_list_with_a_corrupt_file(trained_run, two_class_data, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    good = sorted((two_class_data / "test" / "female").glob("*.png"))[0]
    args = ["--image_path", str(good), str(broken), str(two_class_data / "test" / "male"),
            "--model_path", str(trained_run.run_dir), "--json"]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 1  # one file failed, the others were still predicted
    records = json.loads(result.stdout)
    assert len(records) == 2 + 12
    failed = [r for r in records if "error" in r]
    assert [r["path"] for r in failed] == [str(broken)]
    ok = [r for r in records if "error" not in r]
    assert all(set(r["probabilities"]) == {"female", "male"} for r in ok)
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in ok)


@pytest.mark.slow
def test_threshold_override_flips_labels(trained_run, two_class_data):
    folder = str(two_class_data / "test" / "female")
    predictor = Predictor(trained_run.run_dir, threshold=0.0)
    assert {p.label for p in predictor.predict_paths([folder])} == {"male"}


@pytest.mark.slow
def test_predict_arrays_matches_predict_paths(trained_run, two_class_data):
    paths = sorted((two_class_data / "test" / "male").glob("*.png"))[:3]
    predictor = Predictor(trained_run.run_dir)
    from_arrays = predictor.predict_arrays(np.stack([load_image(p, 64) for p in paths]))
    from_paths = predictor.predict_paths(paths)
    np.testing.assert_allclose(from_arrays[:, 1], [p.probabilities["male"] for p in from_paths],
                               atol=1e-5)  # fmt: skip


@pytest.mark.slow
def test_save_dir_writes_annotated_images(trained_run, two_class_data, tmp_path):
    image = sorted((two_class_data / "test" / "male").glob("*.png"))[0]
    args = ["--image_path", str(image), "--model_path", str(trained_run.run_dir),
            "--save_dir", str(tmp_path / "annotated")]  # fmt: skip
    assert CliRunner().invoke(predict_command, args).exit_code == 0
    (written,) = (tmp_path / "annotated").iterdir()
    with Image.open(written) as annotated:
        assert annotated.size == Image.open(image).size


@pytest.mark.slow
def test_same_named_images_of_two_folders_get_a_file_each(trained_run, two_class_data, tmp_path):
    image = sorted((two_class_data / "test" / "male").glob("*.png"))[0]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(image, tmp_path / folder / "x.png")
    args = ["--image_path", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"),
            "--model_path", str(trained_run.run_dir), "--save_dir", str(tmp_path / "annotated"),
            "--gradcam", str(tmp_path / "cams")]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "annotated").iterdir())) == 2
    assert len(list((tmp_path / "cams").iterdir())) == 2


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--image_path", "/no/such.jpg"], "image not found"),
    ([], "no images"),
])  # fmt: skip
def test_bad_image_paths_exit_2(trained_run, args, message):
    result = CliRunner().invoke(predict_command, [*args, "--model_path", str(trained_run.run_dir)])
    assert result.exit_code == 2 and message in result.output


@pytest.mark.slow
def test_mixed_precision_and_jit_prediction_match_float32(trained_run, two_class_data, monkeypatch):
    import tensorflow as tf

    folder = [str(two_class_data / "test")]
    plain = Predictor(trained_run.run_dir).predict_paths(folder)
    jit = Predictor(trained_run.run_dir, jit=True)
    assert jit.runner.model.jit_compile is True
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"])
    mixed = Predictor(trained_run.run_dir, mixed_precision=True)
    monkeypatch.undo()
    assert mixed.runner.model.get_layer("pool").compute_dtype == "float16"
    assert mixed.runner.model.get_layer("output").compute_dtype == "float32"
    for other in (jit.predict_paths(folder), mixed.predict_paths(folder)):
        np.testing.assert_allclose([p.confidence for p in other], [p.confidence for p in plain],
                                   atol=2e-2)  # fmt: skip


@pytest.mark.slow
def test_mixed_precision_needs_a_gender_cls_model(trained_run, tmp_path):
    import keras

    from gender_cls.errors import UserError

    bare = tmp_path / "bare.keras"  # saved by Keras alone: no card inside
    keras.saving.load_model(trained_run.run_dir / "model.keras", compile=False).save(bare)
    with pytest.raises(UserError, match="--mixed_precision needs a model trained by gender_cls"):
        Predictor(bare, classes=["female", "male"], mixed_precision=True)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_lone_model_file_predicts_exactly_like_its_run(trained_run, two_class_data, tmp_path,
                                                         suffix):  # fmt: skip
    import keras

    from gender_cls import artifacts

    run = artifacts.resolve_model(trained_run.run_dir)
    card = dataclasses.replace(run.card, threshold=0.37, threshold_source="tuned")  # not 0.5
    model = keras.saving.load_model(run.file, compile=False)
    saved, beside = artifacts.save_artifact(model, card, tmp_path / f"run{suffix}")
    lone = tmp_path / "elsewhere" / f"model_balanced{suffix}"  # renamed, without its .json
    lone.parent.mkdir()
    shutil.copy(saved, lone)
    assert beside.is_file() and not lone.with_suffix(".json").exists()
    folder = str(two_class_data / "test")
    with_json = Predictor(saved, backend="keras").predict_paths([folder])
    alone = Predictor(lone, backend="keras")
    assert alone.assumptions == [] and alone.threshold == 0.37 and alone.input == InputSpec()
    got = alone.predict_paths([folder])
    assert [p.label for p in got] == [p.label for p in with_json]
    np.testing.assert_allclose([p.probabilities["male"] for p in got],
                               [p.probabilities["male"] for p in with_json], atol=1e-6)  # fmt: skip


@pytest.mark.slow
def test_unwritable_save_dir_is_one_line_exit_2(trained_run, two_class_data, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    args = ["--image_path", str(two_class_data / "test" / "male"), "--model_path",
            str(trained_run.run_dir), "--save_dir", str(blocker / "annotated")]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 2 and "Not a directory; check that this path" in result.output
    assert "Traceback" not in result.output


def test_keras_settings_pick_the_keras_model():
    from gender_cls.runners import keras_if_asked

    assert keras_if_asked("auto", False, None) == "auto"
    assert keras_if_asked("auto", True, None) == "keras"
    assert keras_if_asked("auto", False, False) == "keras"
    assert keras_if_asked("tflite", False, True) == "tflite"  # open_runner then says it is wrong


@pytest.mark.slow
def test_max_pixels_option_refuses_and_allows_a_large_image(trained_run, tmp_path, monkeypatch):
    from gender_cls.images import MAX_PIXELS_VARIABLE

    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "64000000")  # restored after: the option sets it
    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000), (120, 80, 60)).save(big)
    args = ["--image_path", str(big), "--model_path", str(trained_run.run_dir)]
    refused = CliRunner().invoke(predict_command, [*args, "--max_pixels", "5000000"])
    assert refused.exit_code == 1
    message = "3000 x 2000 pixels, more than the 5,000,000 allowed; pass --max_pixels"
    assert message in refused.output
    allowed = CliRunner().invoke(predict_command, [*args, "--max_pixels", "6000000"])
    assert allowed.exit_code == 0, allowed.output
