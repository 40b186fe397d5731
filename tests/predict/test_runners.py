"""Runners: missing, corrupt and foreign exports refused in one line."""

from __future__ import annotations

import pytest

from gender_cls.predict.predictor import Predictor

pytestmark = pytest.mark.slow  # every test here trains or exports a model


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
