"""--engine ray: the same predictions and evaluation files as the local engine, each file once."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from gender_cls.cli import evaluate_command, predict_command
from tests.helpers import make_image_tree


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def many_images(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    make_image_tree(root / "test", {"female": 160, "male": 160}, size=64, seed=7)
    return root / "test"


@pytest.mark.slow
def test_ray_predicts_every_file_once_as_the_local_engine_does(ray_cluster, trained_run,
                                                              many_images, tmp_path):  # fmt: skip
    broken = many_images / "male" / "zz_broken.png"
    broken.write_bytes(b"not an image")
    args = ["--model_path", str(trained_run.run_dir), "--image_path", str(many_images), "--json"]
    local = CliRunner().invoke(predict_command, args)
    remote = CliRunner().invoke(predict_command, [*args, "--engine", "ray"])
    broken.unlink()
    assert local.exit_code == remote.exit_code == 1  # the broken file, reported by both
    records = json.loads(remote.stdout)
    assert records == json.loads(local.stdout)
    paths = [r["path"] for r in records]
    assert len(paths) == len(set(paths)) == 321
    assert [r["path"] for r in records if "error" in r] == [str(broken)]


@pytest.mark.slow
def test_ray_evaluation_writes_the_same_files(ray_cluster, trained_run, many_images, tmp_path):
    outputs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        args = ["--model_path", str(trained_run.run_dir), "--data_path", str(many_images),
                "--output_dir", str(out), "--tta", "2", "--engine", engine]  # fmt: skip
        result = CliRunner().invoke(evaluate_command, args)
        assert result.exit_code == 0, result.output
        outputs[engine] = out
    for name in ("predictions.csv", "metrics.json", "classification_report.txt"):
        assert (outputs["ray"] / name).read_text() == (outputs["local"] / name).read_text(), name
    assert len((outputs["ray"] / "predictions.csv").read_text().splitlines()) == 321


@pytest.mark.slow
def test_without_ray_the_engine_is_a_one_line_error_with_the_install_command(
    trained_run, monkeypatch
):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if not installed
    args = ["--model_path", str(trained_run.run_dir), "--image_path", str(trained_run.run_dir),
            "--engine", "ray"]  # fmt: skip
    result = CliRunner().invoke(predict_command, args)
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --engine ray needs Ray: pip install 'gender_cls[ray]' (that is, pip install "
        "'ray[data]')"
    )
