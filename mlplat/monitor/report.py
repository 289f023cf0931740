"""A drift report's files: the JSON document for tools, one PNG per drifted feature, and the verdict line when
there is too little data (the command line's table is `mlplat.monitor_cmd.table`)."""

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlplat.monitor.drift import DriftReport, FeatureDrift

REPORT_FILE = "report.json"


def not_enough_data(report: DriftReport) -> str:
    """The verdict line when the window is too small to judge."""
    return (
        f"not enough data: {report.rows} captured rows, fewer than the {report.thresholds.min_records} needed to "
        "judge drift (--min-records, mlplat:monitoring.minRecords); no verdict"
    )


def write_json(path: Path, document: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def _file_name(feature: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", feature) + ".png"


def plot_feature(result: FeatureDrift, directory: Path) -> Path:
    """Reference against current shares per bin or category; categories training never saw are hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    dist = result.distribution
    positions = np.arange(len(dist.labels))
    width = 0.4
    fig, axis = plt.subplots(figsize=(max(6.0, 0.7 * len(dist.labels) + 2), 4.0), dpi=100)
    try:
        axis.bar(positions - width / 2, dist.reference, width, label="training (reference)", color="#4c72b0")
        bars = axis.bar(positions + width / 2, dist.current, width, label="captured (current)", color="#dd8452")
        for bar, label in zip(bars, dist.labels, strict=True):
            if label in result.new_categories:
                bar.set_hatch("//")
                bar.set_edgecolor("#c44e52")
        axis.set_xticks(positions, dist.labels, rotation=30 if result.kind == "numeric" else 0, ha="right")
        axis.set_ylabel("share of rows")
        p_value = "-" if result.p_value is None else f"{result.p_value:.2g}"
        axis.set_title(f"{result.feature}: PSI {result.psi:.3f}, {result.test} p = {p_value}")
        axis.legend()
        fig.tight_layout()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / _file_name(result.feature)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def plot_drifted(report: DriftReport, directory: Path) -> list[Path]:
    """One PNG per drifted feature (and the prediction, when it drifted)."""
    if not report.enough_data:
        return []
    results = [f for f in report.features if f.drifted]
    if report.prediction is not None and report.prediction.drifted:
        results.append(report.prediction)
    return [plot_feature(result, directory) for result in results]
