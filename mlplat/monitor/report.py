"""Presenting a drift report: a Rich table for people, a JSON document for tools, one PNG per drifted feature."""

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mlplat.monitor.drift import DriftReport, FeatureDrift

REPORT_FILE = "report.json"


def _number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value != 0 and abs(value) < 10**-digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _shift(result: FeatureDrift) -> str:
    if result.new_categories:
        return "new: " + ", ".join(result.new_categories)
    if result.kind == "numeric" and result.reference_mean is not None and result.current_mean is not None:
        return f"mean {result.reference_mean:.4g} -> {result.current_mean:.4g}"
    return ""


def table(report: DriftReport, title: str) -> Table:
    """One row per feature (and the prediction), drifted rows in red."""
    out = Table(title=title, title_justify="left")
    for column, justify in (
        ("feature", "left"),
        ("type", "left"),
        ("rows", "right"),
        ("PSI", "right"),
        ("test", "left"),
        ("statistic", "right"),
        ("p-value", "right"),
        ("shift", "left"),
        ("drift", "left"),
    ):
        out.add_column(column, justify=justify)  # type: ignore[arg-type]
    rows = list(report.features) + ([report.prediction] if report.prediction else [])
    for result in rows:
        out.add_row(
            result.feature,
            result.kind,
            str(result.rows),
            _number(result.psi),
            result.test,
            _number(result.statistic),
            _number(result.p_value, 4),
            _shift(result),
            ("DRIFT" if result.drifted else "ok") if report.enough_data else "-",
            style="bold red" if result.drifted and report.enough_data else None,
        )
    return out


def print_report(console: Console, report: DriftReport, title: str, notes: list[str]) -> None:
    """The table, then one verdict line naming the drifted features."""
    console.print(table(report, title))
    for note in [*report.notes, *notes]:
        console.print(f"note: {note}", style="yellow", highlight=False)
    thresholds = f"PSI >= {report.thresholds.psi:g} and p < {report.thresholds.p_value:g}"
    if not report.enough_data:
        console.print(not_enough_data(report), style="yellow", highlight=False)
    elif report.drifted:
        names = report.drifted_features + (["prediction"] if report.prediction and report.prediction.drifted else [])
        console.print(f"drift over threshold ({thresholds}): {', '.join(names)}", style="bold red", highlight=False)
    else:
        console.print(f"no drift ({thresholds}) in {report.rows} captured rows", style="green", highlight=False)


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
