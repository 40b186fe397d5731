"""The public API: `import gender_cls` stays free of TensorFlow, and the README's example runs as
written."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import gender_cls
from tests.helpers import REPO


def readme_example() -> str:
    """The first Python block of the README's "Python API" section."""
    section = (REPO / "README.md").read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_importing_the_package_loads_no_tensorflow_and_names_resolve_on_use():
    code = ("import sys, gender_cls\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "print(sorted(gender_cls.__all__))\n"
            "gender_cls.list_backbones(), gender_cls.RECIPES, gender_cls.UserError\n"
            "assert 'tensorflow' not in sys.modules\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in ("train", "evaluate", "Predictor", "Verifier", "export", "RECIPES", "UserError"):
        assert name in out.stdout
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        gender_cls.trian  # noqa: B018


def test_an_unknown_option_is_refused_by_name_before_any_work(tmp_path):
    with pytest.raises(gender_cls.UserError, match="unknown training option 'epoch'"):
        gender_cls.train(tmp_path / "data", tmp_path / "run", epoch=3)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_predictor_takes_arrays_as_it_takes_files(trained_run, two_class_data):
    from PIL import Image

    predictor = gender_cls.Predictor(trained_run.run_dir)
    files = sorted(str(p) for p in (two_class_data / "test").rglob("*.png"))[:4]
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    by_file, by_array = predictor.predict(files), predictor.predict(arrays)
    assert [p.label for p in by_file] == [p.label for p in by_array]
    for a, b in zip(by_file, by_array, strict=True):
        assert a.confidence == pytest.approx(b.confidence, abs=1e-5)
    assert [p.path for p in by_array] == [f"array[{i}]" for i in range(4)]
    assert predictor.predict(np.stack(arrays))[0].label == by_file[0].label  # a batch
    with pytest.raises(gender_cls.UserError, match=r"array\[0\]: shape \(8, 8\)"):
        predictor.predict([np.zeros((8, 8))])


@pytest.mark.slow
def test_the_readme_example_runs_as_written(tmp_path):
    out = subprocess.run([sys.executable, "-c", readme_example()], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "test accuracy" in out.stdout and "dlib_face_resnet" in out.stdout
    assert (tmp_path / "demo" / "run" / "model.tflite").is_file()
    assert (tmp_path / "demo" / "evaluation" / "metrics.json").is_file()
    assert len([line for line in out.stdout.splitlines() if "/test/up/" in line]) == 3
