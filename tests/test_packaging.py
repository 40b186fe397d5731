"""The wheel: setuptools finds every subpackage and the serve page, and the installed package
runs `gender-cls --help` and a prediction in a fresh virtual environment."""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the sources (the build leaves nothing in the checkout)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "gender_cls", source / "gender_cls",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(source)], check=True, capture_output=True, timeout=300)  # fmt: skip
    return next(out.glob("gender_cls-*.whl"))


def test_the_wheel_holds_every_subpackage_and_the_page(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = {p.parent.relative_to(REPO).as_posix() for p in (REPO / "gender_cls").rglob("*.py")}
    assert packages <= {name.rsplit("/", 1)[0] for name in names}
    assert "gender_cls/serve/page.html" in names


def test_installed_in_a_fresh_environment_it_helps_and_predicts(wheel, exported_run, two_class_data,
                                                                tmp_path):  # fmt: skip
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # the dependencies come from this environment; gender_cls only from the wheel
    packages = next((venv / "lib").glob("python*/site-packages"))
    (packages / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    subprocess.run([*pip, "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    code = "import gender_cls; print(gender_cls.__file__)"
    where = subprocess.run([venv / "bin" / "python", "-c", code], capture_output=True, text=True,
                           cwd=tmp_path, check=True)  # fmt: skip
    assert where.stdout.startswith(str(packages)), where.stdout
    helped = subprocess.run([venv / "bin" / "gender-cls", "--help"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)  # fmt: skip
    assert helped.returncode == 0 and "predict" in helped.stdout and "train" in helped.stdout
    image = next((two_class_data / "test" / "female").glob("*.png"))
    predicted = subprocess.run([venv / "bin" / "gender-cls", "predict", "--model_path",
                                str(exported_run), "--image_path", str(image), "--json"],
                               capture_output=True, text=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    record = json.loads(predicted.stdout)
    record = record[0] if isinstance(record, list) else record
    assert record["label"] in ("female", "male") and 0.5 <= record["confidence"] <= 1.0
