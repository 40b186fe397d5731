"""Every figure the toolkit writes. Each function saves one PNG and returns its path."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np

from gender_cls.atomic import replacing


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with replacing(path) as temp:
        fig.savefig(temp, dpi=110)
    plt.close(fig)
    return path


def training_curve(
    history: dict[str, list[float]], metric: str, path: Path, phase2_start: int | None = None
) -> Path:
    """Train and validation `metric` per epoch on one axis, a line where phase 2 starts."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    epochs = range(1, len(history.get(metric, [])) + 1)
    for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
        if key in history:
            ax.plot(epochs, history[key], marker="o", markersize=3, label=label)
    if phase2_start is not None:
        ax.axvline(phase2_start + 0.5, color="grey", linestyle="--", label="fine-tuning starts")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def confusion_matrix(matrix, class_names: list[str], path: Path) -> Path:
    """Seaborn heatmap of counts with row-normalised percentages, class names on the axes."""
    import seaborn as sns  # kept out of start-up

    matrix = np.asarray(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    labels = [[f"{c}\n{s:.1%}" for c, s in zip(r, sr, strict=True)]
              for r, sr in zip(matrix, share, strict=True)]  # fmt: skip
    size = 2.2 + 1.1 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    sns.heatmap(share, annot=labels, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=True, ax=ax,
                xticklabels=class_names, yticklabels=class_names, square=True)  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (counts, % of true class)")
    return _save(fig, path)


def roc_curve(y_true, scores, path: Path) -> Path:
    """ROC curve of the positive class with its AUC."""
    from sklearn.metrics import RocCurveDisplay  # kept out of start-up

    fig, ax = plt.subplots(figsize=(5.5, 5))
    RocCurveDisplay.from_predictions(y_true, scores, ax=ax, name="model", plot_chance_level=True)
    ax.set_title("ROC curve")
    return _save(fig, path)


def roc_log_far(same, scores, path: Path, title: str = "ROC curve") -> Path:
    """True accept rate against the false accept rate on a log scale (face verification's way:
    the low false accept rates are what a deployment runs at)."""
    from sklearn.metrics import auc, roc_curve  # kept out of start-up

    far, tar, _ = roc_curve(same, scores)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    shown = far > 0
    ax.plot(far[shown], tar[shown], label=f"AUC {auc(far, tar):.4f}")
    ax.set_xscale("log")
    ax.set_xlim(max(1e-4, 1 / max(1, int((~np.asarray(same, bool)).sum()))), 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate (log scale)")
    ax.set_ylabel("true accept rate")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower right")
    return _save(fig, path)


def pr_curve(y_true, scores, path: Path) -> Path:
    """Precision-recall curve of the positive class with its average precision."""
    from sklearn.metrics import PrecisionRecallDisplay  # kept out of start-up

    fig, ax = plt.subplots(figsize=(5.5, 5))
    PrecisionRecallDisplay.from_predictions(y_true, scores, ax=ax, name="model",
                                            plot_chance_level=True)  # fmt: skip
    ax.set_title("Precision-recall curve")
    return _save(fig, path)


def threshold_curve(sweep: dict, chosen: float | None, path: Path) -> Path:
    """Precision, recall, F1 and balanced accuracy against the threshold, the chosen one marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in ("precision", "recall", "f1", "balanced_accuracy"):
        ax.plot(sweep["threshold"], sweep[key], label=key.replace("_", " "))
    if chosen is not None:
        ax.axvline(chosen, color="black", linestyle="--", label=f"chosen {chosen:.3f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("threshold on P(positive class)")
    ax.set_ylabel("score")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title("Metrics against the decision threshold")
    return _save(fig, path)


def contact_sheet(images: list, captions: list[str], path: Path, title: str) -> Path:
    """A grid of RGB images with a caption under each."""

    columns = min(6, len(images))
    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, caption in zip(axes.ravel(), images, captions, strict=False):
        ax.imshow(image)
        ax.set_title(caption, fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def group_bars(attribute: str, entry: dict, class_names: list[str], path: Path) -> Path:
    """Accuracy and each class's recall per group of one attribute, as grouped bars."""
    import pandas as pd  # kept out of start-up
    import seaborn as sns  # kept out of start-up

    rows = []
    for group, row in entry["groups"].items():
        label = f"{group}\n(n={row['count']})"
        rows.append({"group": label, "metric": "accuracy", "value": row["accuracy"]})
        for name in class_names:
            if row["recall"][name] is not None:
                rows.append({"group": label, "metric": f"recall {name}",
                             "value": row["recall"][name]})  # fmt: skip
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(entry["groups"]) + 2), 4.5))
    sns.barplot(pd.DataFrame(rows), x="group", y="value", hue="metric", ax=ax)
    gap = entry["largest_gap"]["accuracy"]
    title = f"By {attribute}"
    if gap is not None:
        title += f": largest accuracy gap {gap['gap']:.3f} ({gap['best']} vs {gap['worst']})"
    ax.set_title(title)
    ax.set_ylim(0, 1)
    ax.set_xlabel("")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def reliability_diagram(table: dict, ece: float, path: Path) -> Path:
    """Accuracy against confidence per bin (bars, image counts beneath), the diagonal of a
    perfectly calibrated model, and the ECE in the title."""

    count = np.asarray(table["count"])
    bins = len(count)
    centres = (np.arange(bins) + 0.5) / bins
    filled = count > 0
    fig, (ax, counts_ax) = plt.subplots(2, 1, figsize=(5.5, 6), sharex=True,
                                        gridspec_kw={"height_ratios": [3, 1]})  # fmt: skip
    ax.bar(centres[filled], np.asarray(table["accuracy"])[filled], width=1 / bins,
           edgecolor="black", alpha=0.8, label="accuracy")  # fmt: skip
    ax.plot(centres[filled], np.asarray(table["confidence"])[filled], "o", color="tab:red",
            markersize=4, label="mean confidence")  # fmt: skip
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"Reliability (ECE {ece:.3f}, {bins} bins)")
    ax.legend(loc="upper left")
    counts_ax.bar(centres, count, width=1 / bins, color="tab:grey")
    counts_ax.set_xlabel("confidence of the predicted class")
    counts_ax.set_ylabel("images")
    counts_ax.set_xlim(0, 1)
    return _save(fig, path)


def lr_finder(
    lrs: list[float], losses: list[float], smoothed, suggestion: float, path: Path
) -> Path:
    """Loss against learning rate (log axis), raw and smoothed, with the suggestion marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(lrs, losses, color="tab:grey", alpha=0.4, label="batch loss")
    ax.plot(lrs, smoothed, color="tab:blue", label="smoothed")
    ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggestion {suggestion:.2g}")
    ax.set_xscale("log")
    low, high = min(smoothed), max(smoothed[: max(1, len(smoothed) // 2)])
    ax.set_ylim(low - 0.1 * (high - low + 1e-9), high + 0.5 * (high - low + 1e-9))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, path)


def similarity_histogram(genuine, impostor, threshold: float, path: Path) -> Path:
    """Best similarity of probes whose person is in the gallery and of those whose is not."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bins = [i / 50 for i in range(-25, 51)]
    ax.hist(genuine, bins=bins, alpha=0.6, label=f"known person ({len(genuine)})")
    ax.hist(impostor, bins=bins, alpha=0.6, label=f"unknown person ({len(impostor)})")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("cosine similarity to the best gallery identity")
    ax.set_ylabel("probes")
    ax.set_title("Genuine vs impostor similarity")
    ax.legend()
    return _save(fig, path)
