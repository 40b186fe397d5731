"""Export to TFLite: outputs match Keras, predict/evaluate use it, predict.py skips TensorFlow."""

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

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported_run(trained_run, tmp_path_factory):
    import shutil

    run = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(trained_run.run_dir, run)
    result = CliRunner().invoke(export_command, ["--model_path", str(run)])
    assert result.exit_code == 0, result.output
    return run


def test_export_is_recorded_and_matches_keras(exported_run):
    meta = json.loads((exported_run / "model.json").read_text())
    record = meta["exports"]["tflite"]
    assert (exported_run / record["file"]).is_file()
    assert record["max_abs_diff_vs_keras"] < 1e-3


def test_tflite_and_keras_predict_the_same(exported_run, two_class_data):
    folder = [str(two_class_data / "test")]
    lite = Predictor(exported_run, backend="tflite").predict_paths(folder)
    keras_ = Predictor(exported_run, backend="keras").predict_paths(folder)
    assert [p.label for p in lite] == [p.label for p in keras_]
    np.testing.assert_allclose([p.confidence for p in lite], [p.confidence for p in keras_],
                               atol=1e-3)  # fmt: skip


def test_a_tflite_file_evaluates_directly(exported_run, two_class_data, tmp_path):
    args = ["--data_path", str(two_class_data / "test"), "--output_dir", str(tmp_path),
            "--model_path", str(exported_run / "model.tflite"), "--json"]  # fmt: skip
    result = CliRunner().invoke(evaluate_command, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == 24


def test_predict_py_with_an_export_never_imports_tensorflow(exported_run, two_class_data):
    image = sorted((two_class_data / "test" / "male").glob("*.png"))[0]
    code = (
        "import sys\n"
        "from gender_cls.cli import predict_command\n"
        f"sys.argv = ['predict.py', '--image_path', {str(image)!r}, '--model_path', "
        f"{str(exported_run)!r}]\n"
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
