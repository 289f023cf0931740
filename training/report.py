"""The human-readable outputs of a run: `training_curves.png` and `metrics.json`."""

import json
from pathlib import Path
from typing import Any

CURVES = "training_curves.png"
METRICS = "metrics.json"


def plot_curves(history: list[dict[str, float]], path: Path, best_epoch: int) -> Path:
    """Loss (train and validation) and the other validation metrics per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(11, 4))
    loss_axes.plot(epochs, [row["train_loss"] for row in history], label="train loss")
    loss_axes.plot(epochs, [row["val_loss"] for row in history], label="validation loss")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("loss")
    loss_axes.set_yscale("log")
    others = [key for key in (history[0] if history else {}) if key.startswith("val_") and key != "val_loss"]
    for key in others:
        if key not in {"val_r2", "val_log_loss"}:
            metric_axes.plot(epochs, [row[key] for row in history], label=key.replace("_", " "))
    metric_axes.set_xlabel("epoch")
    for axes in (loss_axes, metric_axes):
        if best_epoch:
            axes.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch ({best_epoch})")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_metrics(document: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
    return path
