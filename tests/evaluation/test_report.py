"""report.html in a real browser: every section, the gallery, escaped names."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.helpers import CHROMIUM, needs_chromium

BORDER = np.array([214, 39, 40])  # the red frame of each mistake's thumbnail


def browse(page, *args: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--enable-logging=stderr", "--v=0", *args, page.as_uri()]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def red_pixels(page, tmp_path) -> int:
    shot = tmp_path / f"{page.stem}.png"
    browse(page, "--window-size=1200,6000", f"--screenshot={shot}")
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    return int((np.abs(pixels - BORDER).max(axis=2) <= 12).sum())


@pytest.fixture(scope="module")
def report(trained_run, two_class_data, tmp_path_factory):
    """An evaluation at threshold 0 (every female image is a mistake), with groups and
    Grad-CAM, written out with its report."""
    from gender_cls.evaluation.evaluate import evaluate
    from gender_cls.evaluation.result import write_outputs

    out = tmp_path_factory.mktemp("evaluation")
    groups = out / "groups.csv"
    names = sorted(p.name for p in (two_class_data / "test").rglob("*.png"))
    groups.write_text("file,lighting\n" + "".join(f"{n},{'dim' if i % 2 else 'bright'}\n"
                                                   for i, n in enumerate(names)))  # fmt: skip
    result = evaluate(trained_run.run_dir, two_class_data / "test", threshold=0.0,
                      groups=str(groups))  # fmt: skip
    write_outputs(result, out, gradcam=2)
    return result, out


@pytest.mark.slow
@needs_chromium
def test_the_page_loads_with_every_section_and_no_console_errors(report):
    _, out = report
    loaded = browse(out / "report.html", "--dump-dom")
    for section in ("metrics", "decision", "plots", "groups", "mistakes", "report"):
        assert f'<section id="{section}">' in loaded.stdout, section
    assert "CONSOLE" not in loaded.stderr
    sources = re.findall(r'<img src="([^"]*)"', loaded.stdout)
    assert len(sources) >= 5 + 12 + 2  # plots, mistakes, Grad-CAMs
    assert all(s.startswith("data:image/png;base64,") for s in sources)  # nothing from outside
    assert "threshold 0.0000 on P(second class) (given on the command line)" in loaded.stdout


@pytest.mark.slow
@needs_chromium
def test_the_gallery_shows_each_mistake_framed(report, tmp_path):
    from gender_cls.evaluation.report import write_report

    result, out = report
    mistakes = len(result.misclassified())
    assert mistakes >= 12
    with_gallery = red_pixels(write_report(result, out), tmp_path)
    none_shown = out / "none"
    none_shown.mkdir()
    for name in ("confusion_matrix.png", "roc_curve.png", "pr_curve.png", "threshold_curve.png",
                 "reliability_diagram.png"):  # fmt: skip
        shutil.copy(out / name, none_shown / name)
    without = red_pixels(write_report(result, none_shown, shown=0), tmp_path)
    frame = 2 * 4 * 146  # a 2-pixel border around a 146-pixel thumbnail
    assert with_gallery - without >= 0.8 * mistakes * frame


@pytest.mark.slow
def test_hostile_class_names_are_escaped_in_the_page_and_kept_out_of_paths(
    trained_run, two_class_data, tmp_path
):
    import json

    from gender_cls.evaluation.evaluate import evaluate
    from gender_cls.evaluation.result import write_outputs

    hostile = ["<img src=x onerror=alert(1)>", "..male"]
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    card = json.loads((run / "model.json").read_text())
    (run / "model.json").write_text(json.dumps({**card, "class_names": hostile}))
    data = tmp_path / "data"
    for name, folder in zip(hostile, ("female", "male"), strict=True):
        shutil.copytree(two_class_data / "test" / folder, data / name)
    out = tmp_path / "out"
    result = evaluate(run, data, threshold=0.0)
    write_outputs(result, out)
    page = (out / "report.html").read_text()
    assert hostile[0] not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.is_relative_to(out) or p.is_relative_to(run) or p.is_relative_to(data)
               for p in written)  # fmt: skip
    mistakes = list((out / "misclassified").iterdir())
    assert mistakes and all(p.name[0] != "." and "<" not in p.name for p in mistakes)
