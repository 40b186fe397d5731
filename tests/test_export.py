"""Export to TFLite and ONNX: outputs match Keras, predict/evaluate use them, predict.py skips
TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cls.cli import evaluate_command, export_command
from gender_cls.inference import Predictor

pytestmark = pytest.mark.slow  # every test here trains or exports a model


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported_run(trained_run, tmp_path_factory):
    import shutil

    run = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(trained_run.run_dir, run)
    for fmt in ("tflite", "onnx"):
        result = CliRunner().invoke(export_command, ["--model_path", str(run), "--format", fmt])
        assert result.exit_code == 0, result.output
    return run


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_export_is_recorded_and_matches_keras(exported_run, fmt):
    meta = json.loads((exported_run / "model.json").read_text())
    record = meta["exports"][fmt]
    assert (exported_run / record["file"]).is_file()
    assert record["max_abs_diff_vs_keras"] < 1e-3


@pytest.mark.parametrize("backend", ["tflite", "onnx"])
def test_exported_and_keras_predict_the_same(exported_run, two_class_data, backend):
    folder = [str(two_class_data / "test")]
    exported = Predictor(exported_run, backend=backend).predict_paths(folder)
    keras_ = Predictor(exported_run, backend="keras").predict_paths(folder)
    assert [p.label for p in exported] == [p.label for p in keras_]
    np.testing.assert_allclose([p.confidence for p in exported], [p.confidence for p in keras_],
                               atol=1e-3)  # fmt: skip


@pytest.mark.parametrize("name", ["model.tflite", "model.onnx"])
def test_an_exported_file_evaluates_directly(exported_run, two_class_data, tmp_path, name):
    args = ["--data_path", str(two_class_data / "test"), "--output_dir", str(tmp_path),
            "--model_path", str(exported_run / name), "--json"]  # fmt: skip
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == 24


@pytest.mark.parametrize("backend", ["auto", "onnx"])
def test_predict_py_with_an_export_never_imports_tensorflow(exported_run, two_class_data, backend):
    image = sorted((two_class_data / "test" / "male").glob("*.png"))[0]
    code = (
        "import sys\n"
        "from gender_cls.cli import predict_command\n"
        f"sys.argv = ['predict.py', '--image_path', {str(image)!r}, '--model_path', "
        f"{str(exported_run)!r}, '--backend', {backend!r}]\n"
        "try:\n    predict_command()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "tensorflow loaded: False" in out.stdout, out.stderr[-2000:]
    assert str(image) in out.stdout


def test_int8_export_calibrates_on_training_images(exported_run):
    result = CliRunner().invoke(export_command, ["--model_path", str(exported_run),
                                                 "--quantize", "int8"])  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = json.loads((exported_run / "model.json").read_text())
    assert (exported_run / meta["exports"]["tflite_int8"]["file"]).is_file()
    assert meta["exports"]["tflite"]["quantize"] is None  # the float export stays the default


def test_asking_for_a_missing_export_is_a_clear_error(trained_run):
    from gender_cls.errors import UserError

    with pytest.raises(UserError, match="no onnx export; run gender-cls export --format onnx"):
        Predictor(trained_run.run_dir, backend="onnx")


def test_a_corrupt_onnx_file_is_a_clear_error(tmp_path):
    from gender_cls.errors import UserError

    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(UserError, match="model.onnx: not a readable ONNX model"):
        Predictor(broken, classes=["female", "male"])


def test_keras_settings_with_an_export_are_a_clear_error(exported_run):
    from gender_cls.errors import UserError

    with pytest.raises(UserError, match="--mixed_precision and --jit apply to the Keras model"):
        Predictor(exported_run, backend="tflite", jit=True)


def test_exported_models_predict_in_bounded_chunks_with_the_same_results(
    exported_run, two_class_data, monkeypatch
):
    from gender_cls import inference

    files = sorted(str(p) for p in (two_class_data / "test").rglob("*.png"))
    predictor = Predictor(exported_run, backend="tflite", tta=2)
    whole = predictor.predict_files(files), predictor.predict_paths(files)
    loaded = []
    real_load = Predictor.load_inputs
    monkeypatch.setattr(inference, "CHUNK", 5)
    monkeypatch.setattr(Predictor, "load_inputs",
                        lambda self, paths, crop=False: loaded.append(len(paths)) or
                        real_load(self, paths, crop))  # fmt: skip
    chunked = predictor.predict_files(files), predictor.predict_paths(files)
    assert max(loaded) == 5 and sum(loaded) == 2 * len(files)
    np.testing.assert_allclose(chunked[0], whole[0], atol=1e-6)
    assert [p.probabilities for p in chunked[1]] == [p.probabilities for p in whole[1]]


def _onnx_model(path, outputs: dict[str, list[int]]):
    """An ONNX graph of Identity/Reshape nodes from one image input to the given outputs."""
    import onnx
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8, 8, 3])
    nodes, infos, inits = [], [], []
    for name, shape in outputs.items():
        inits.append(helper.make_tensor(f"{name}_shape", TensorProto.INT64, [len(shape)], shape))
        nodes.append(helper.make_node("Reshape", ["image", f"{name}_shape"], [name]))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(nodes, "not_a_classifier", [image], infos, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.mark.parametrize("outputs, message", [
    ({"boxes": [1, 64, 3]}, r"outputs \[1, 64, 3\]; a classifier gives one \[N, classes\]"),
    ({"a": [1, 96], "b": [1, 96]}, r"outputs \[1, 96\], \[1, 96\]; a classifier gives one"),
])  # fmt: skip
def test_an_onnx_model_that_is_not_a_classifier_is_refused(tmp_path, outputs, message):
    from gender_cls.errors import UserError

    model = _onnx_model(tmp_path / "detector.onnx", outputs)
    with pytest.raises(UserError, match=rf"detector.onnx: {message}"):
        Predictor(model, classes=["female", "male"])


def test_a_tflite_detector_is_refused(tmp_path):
    import keras
    import tensorflow as tf

    from gender_cls.errors import UserError

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Reshape((64, 3))(inputs))
    path = tmp_path / "detector.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    with pytest.raises(UserError, match=r"detector.tflite: outputs \[1, 64, 3\]; a classifier"):
        Predictor(path, classes=["female", "male"])
