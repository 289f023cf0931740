"""A drift report as a Rich table for people, and its verdict line."""

from rich.console import Console
from rich.table import Table

from mlplat.monitor.drift import DriftReport, FeatureDrift
from mlplat.monitor.report import not_enough_data


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
