"""Every figure the toolkit writes. Each function saves one PNG and returns its path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
