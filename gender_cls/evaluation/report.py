"""report.html: one self-contained page (images embedded, no network, no script) with what an
evaluation found: metrics, decision rule, calibration, plots, groups and the mistakes."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import cv2
import numpy as np

from gender_cls.atomic import write_text
from gender_cls.data.images import ImageReadError, load_image

PLOTS = (("confusion_matrix.png", "Confusion matrix"), ("roc_curve.png", "ROC curve"),
         ("pr_curve.png", "Precision-recall curve"), ("threshold_curve.png", "Threshold sweep"),
         ("reliability_diagram.png", "Reliability diagram"))  # fmt: skip
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: .25em .8em;
  border-bottom: 1px solid #eee; text-align: right; } th:first-child, td:first-child { text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } .plots figure { margin: 0; width: 340px; }
.plots img { width: 100%; } figcaption { font-size: .85em; color: #555; }
.gallery { display: flex; flex-wrap: wrap; gap: .8em; }
.mistake { width: 150px; font-size: .8em; } .mistake img { width: 146px; border: 2px solid #d62728; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; }
"""


def _png(image_rgb: np.ndarray) -> str:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode() if ok else ""


def _file(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _row(cells, header: bool = False) -> str:
    tag = "th" if header else "td"
    return "<tr>" + "".join(f"<{tag}>{escape(str(c))}</{tag}>" for c in cells) + "</tr>"


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _metrics_section(m: dict) -> str:
    rows = [("accuracy", m["accuracy"]), ("balanced accuracy", m["balanced_accuracy"]),
            ("macro-F1", m["macro_f1"]), ("ROC AUC", m["roc_auc"]),
            ("average precision", m["average_precision"])]  # fmt: skip
    if "tta" in m:
        rows.append((f"accuracy without TTA ({m['tta']['views']} views with)",
                     m["tta"]["without_tta"]["accuracy"]))  # fmt: skip
    table = "".join(_row((name, _number(value))) for name, value in rows)
    per_class = _row(("class", "precision", "recall", "F1", "images"), header=True) + "".join(
        _row((name, _number(c["precision"]), _number(c["recall"]), _number(c["f1-score"]),
              int(c["support"])))
        for name, c in m["per_class"].items()
    )  # fmt: skip
    return (f'<section id="metrics"><h2>Metrics</h2><p>{m["images"]} images from '
            f'{escape(str(m["data_path"]))}</p><table>{table}</table><table>{per_class}</table>'
            "</section>")  # fmt: skip


def _decision_section(m: dict) -> str:
    if m["threshold"] is None:
        rule = "the most probable class (argmax)"
    else:
        rule = (
            f"threshold {m['threshold']:.4f} on P(second class) ({escape(m['threshold_source'])})"
        )
    calibration = (f"ECE {m['ece']:.4f} (15 bins), Brier score {m['brier']:.4f}, temperature "
                   f"{m['temperature']:.3f}" + (" (not calibrated)" if m["temperature"] == 1
                                                 else ""))  # fmt: skip
    return (f'<section id="decision"><h2>Decision rule and calibration</h2><p>Decision: {rule}.'
            f"</p><p>Calibration: {calibration}.</p></section>")  # fmt: skip


def _plots_section(out: Path) -> str:
    figures = "".join(
        f'<figure><img src="{_file(out / name)}" alt="{title}"><figcaption>{title}</figcaption>'
        "</figure>"
        for name, title in PLOTS
        if (out / name).is_file()
    )
    return f'<section id="plots"><h2>Plots</h2><div class="plots">{figures}</div></section>'


def _groups_section(m: dict, class_names: list[str]) -> str:
    if "groups" not in m:
        return ""
    blocks = []
    for attribute, entry in m["groups"].items():
        head = _row((attribute, "images", "accuracy", *[f"recall {n}" for n in class_names]),
                    header=True)  # fmt: skip
        rows = "".join(
            _row((group, row["count"], _number(row["accuracy"]),
                  *[_number(row["recall"][n]) for n in class_names]))
            for group, row in entry["groups"].items()
        )  # fmt: skip
        blocks.append(f"<table>{head}{rows}</table>")
    return f'<section id="groups"><h2>Per group</h2>{"".join(blocks)}</section>'


def _gallery_section(result, indices, out: Path) -> str:
    names, confidence = result.class_names, result.confidence()
    cams = sorted((out / "gradcam").glob("*.png")) if (out / "gradcam").is_dir() else []
    cards = []
    for rank, i in enumerate(indices):
        try:
            thumbnail = _png(load_image(result.paths[i], 146))
        except ImageReadError:
            continue
        cam = f'<img src="{_file(cams[rank])}" alt="Grad-CAM">' if rank < len(cams) else ""
        caption = (f"true {escape(names[result.y_true[i]])}, predicted "
                   f"{escape(names[result.y_pred[i]])} "
                   f"({confidence[i]:.1%})<br>{escape(Path(result.paths[i]).name)}")  # fmt: skip
        cards.append(f'<div class="mistake"><img src="{thumbnail}" alt="mistake">{cam}'
                     f"<div>{caption}</div></div>")  # fmt: skip
    body = "".join(cards) or "<p>No mistakes.</p>"
    return (f'<section id="mistakes"><h2>Mistakes, most confident first ({len(cards)} shown)'
            f'</h2><div class="gallery">{body}</div></section>')  # fmt: skip


def write_report(result, out_dir: str | Path, shown: int = 60) -> Path:
    """Write report.html beside the evaluation's other files (its plots must exist already)."""
    out = Path(out_dir)
    m = result.metrics
    sections = [_metrics_section(m), _decision_section(m), _plots_section(out),
                _groups_section(m, result.class_names),
                _gallery_section(result, result.misclassified()[:shown], out),
                f'<section id="report"><h2>Classification report</h2><pre>'
                f"{escape(result.full_report())}</pre></section>"]  # fmt: skip
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Evaluation of '
            f"{escape(Path(str(m['model_path'])).name)}</title><style>{STYLE}</style></head><body>"
            f"<h1>Evaluation of {escape(str(m['model_path']))}</h1>{''.join(sections)}"
            "</body></html>")  # fmt: skip
    path = out / "report.html"
    write_text(path, page)
    return path
