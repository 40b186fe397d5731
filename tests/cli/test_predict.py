"""predict.py / gender-cls predict: output lines, --save_dir, --gradcam, exit codes, no TensorFlow
with an export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gender_cls.cli import evaluate_command, predict_command
from gender_cls.data.images import read_image
from tests.helpers import REPO, nchw_onnx, raising_dds

pytestmark = pytest.mark.slow  # every test here trains or exports a model


@pytest.mark.slow
def test_gradcam_from_predict_and_test_script(trained_run, two_class_data, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from gender_cls.cli import predict_command

    folder = two_class_data / "test" / "male"
    args = ["--image_path", str(folder), "--model_path", str(trained_run.run_dir),
            "--gradcam", str(tmp_path / "cams")]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 0, result.output
    written = sorted((tmp_path / "cams").glob("*_gradcam.png"))
    assert len(written) == len(list(folder.glob("*.png")))
    with Image.open(written[0]) as picture:
        assert picture.size == (256, 256)
    args = ["--data_path", str(two_class_data / "test"), "--model_path",
            str(trained_run.run_dir), "--threshold", "0.0", "--output_dir", str(tmp_path / "ev"),
            "--gradcam", "3"]  # fmt: skip
    result = CliRunner().invoke(evaluate_command, args)  # threshold 0: every female is wrong
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "ev" / "gradcam").glob("*.png"))) == 3
    lone = tmp_path / "model.tflite"
    lone.write_bytes((trained_run.run_dir / "model.tflite").read_bytes())
    args = ["--image_path", str(folder), "--model_path", str(lone), "--classes", "female,male",
            "--gradcam", str(tmp_path / "none")]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 2 and "Grad-CAM needs the Keras model" in result.output


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


@pytest.mark.slow
def test_predict_reports_the_face_box_or_its_absence(face_run, face_data, tmp_path):
    from gender_cls.cli import predict_command

    face = sorted((face_data / "test" / "male").glob("*.jpg"))[0]
    blank = face_data / "test" / "female" / "blank.png"
    args = ["--image_path", str(face), str(blank), "--model_path", str(face_run[0].run_dir),
            "--save_dir", str(tmp_path / "annotated")]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert " face at " in lines[0] and lines[1].endswith("no face found: whole image used")
    records = json.loads(CliRunner().invoke(predict_command, [*args, "--json"]).stdout)
    x0, y0, x1, y1 = records[0]["face_box"]
    height, width = read_image(face).shape[:2]
    assert 0 < (x0 + x1) / 2 < width and 0 < (y0 + y1) / 2 < height and x1 - x0 > width / 3
    assert records[1]["face_found"] is False and "face_box" not in records[1]
    off = CliRunner().invoke(predict_command, [*args, "--no-face_crop"])
    assert off.output.splitlines()[0].endswith(str(face))  # no face note without the crop
    assert len(list((tmp_path / "annotated").iterdir())) == 2


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
    """Bytes of no image, a DDS file (its decoder raised NotImplementedError) named .jpg, and a
    FIFO (reported as "not found"): each is its own file's error, the rest are predicted."""
    broken, dds, fifo = tmp_path / "broken.jpg", tmp_path / "dds.jpg", tmp_path / "fifo.png"
    broken.write_bytes(b"not a jpeg")
    dds.write_bytes(raising_dds())
    os.mkfifo(fifo)
    good = sorted((two_class_data / "test" / "female").glob("*.png"))[0]
    args = ["--image_path", str(good), str(broken), str(dds), str(fifo),
            str(two_class_data / "test" / "male"), "--model_path", str(trained_run.run_dir),
            "--json"]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # no traceback
    records = json.loads(result.stdout)
    assert len(records) == 4 + 12
    failed = {r["path"]: r["error"] for r in records if "error" in r}
    assert list(failed) == [str(broken), str(dds), str(fifo)]
    assert "not a JPEG, PNG, BMP, GIF or WebP file" in failed[str(dds)]
    assert "a FIFO, socket or device, not a regular file" in failed[str(fifo)]
    ok = [r for r in records if "error" not in r]
    assert all(set(r["probabilities"]) == {"female", "male"} for r in ok)
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in ok)


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
def test_unwritable_save_dir_is_one_line_exit_2(trained_run, two_class_data, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    args = ["--image_path", str(two_class_data / "test" / "male"), "--model_path",
            str(trained_run.run_dir), "--save_dir", str(blocker / "annotated")]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 2 and "Not a directory; check that this path" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_max_pixels_option_refuses_and_allows_a_large_image(trained_run, tmp_path, monkeypatch):
    from gender_cls.data.images import MAX_PIXELS_VARIABLE

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


def test_predict_cli_names_the_classes_and_reads_the_layout(tmp_path):
    path = nchw_onnx(tmp_path / "gender.onnx")
    red = np.zeros((20, 20, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    args = ["--model_path", str(path), "--image_path", str(tmp_path / "red.png"),
            "--classes", "female,male", "--input_mean", "120,110,100", "--input_std", "50"]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 0, result.output
    assert "assumed: bare model" in result.output
    assert result.stdout.split()[0] == "female"  # red -> the first output
