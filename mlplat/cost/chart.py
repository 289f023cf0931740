"""A PNG bar chart of an estimate: idle and peak per component, with the budget as a line across the total."""

from pathlib import Path
from typing import Any

from mlplat.cost.actual import ActualReport
from mlplat.cost.model import Estimate


def write_chart(estimate: Estimate, path: Path, compare: Estimate | None = None) -> Path:
    """Draw the breakdown (and a second stack's, side by side, when comparing) to `path` as PNG."""
    plt = _pyplot()
    estimates = [estimate] if compare is None else [estimate, compare]
    components = sorted({c for e in estimates for c, _, _ in e.components()})
    labels = [*components, "total"]
    fig, axes = plt.subplots(1, len(estimates), figsize=(7 * len(estimates), 0.5 * len(labels) + 2), squeeze=False)
    for ax, current in zip(axes[0], estimates, strict=True):
        rows = {c: (i, p) for c, i, p in current.components()}
        idle = [rows.get(c, (0.0, 0.0))[0] for c in components] + [current.idle_total]
        peak = [rows.get(c, (0.0, 0.0))[1] for c in components] + [current.peak_total]
        positions = range(len(labels))
        ax.barh([y + 0.2 for y in positions], idle, height=0.4, label="idle", color="#4c78a8")
        ax.barh([y - 0.2 for y in positions], peak, height=0.4, label="peak", color="#f58518")
        if current.budget_usd is not None:
            budget = f"budget \\${current.budget_usd:,.0f}"
            ax.axvline(current.budget_usd, color="#e45756", linestyle="--", label=budget)
        ax.set_yticks(list(positions), labels)
        ax.invert_yaxis()
        ax.set_xlabel("USD per month")
        # "$" would start matplotlib mathtext; "\$" is a literal dollar sign.
        ax.set_title(f"{current.stack}: idle \\${current.idle_total:,.0f}, peak \\${current.peak_total:,.0f}")
        ax.legend(loc="lower right")
    return _save(plt, fig, path)


def write_actual_chart(report: ActualReport, path: Path) -> Path:
    """Estimate (idle, peak) against actual spend per component and per team, side by side, to `path` as PNG."""
    plt = _pyplot()
    views = [("component", report.components), ("team", report.teams)]
    pods = report.pods
    rows = max([len(r) for _, r in views] + [len(pods or ())]) or 1
    panels = len(views) + (pods is not None)
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 0.5 * rows + 2), squeeze=False)
    if pods is not None:
        ax = axes[0][-1]
        names = [p.namespace for p in pods]
        ax.barh(names, [p.split_usd for p in pods], label="split cost")
        ax.barh(names, [p.unused_usd for p in pods], left=[p.split_usd for p in pods], label="unused cost")
        ax.invert_yaxis()
        ax.set_xlabel(f"USD over {report.days} days")
        ax.set_title(f"{report.stack}: EKS pods per namespace (split cost allocation)")
        ax.legend(loc="lower right")
    for ax, (title, view) in zip(axes[0][: len(views)], views, strict=True):
        names = [r.name for r in view]
        positions = range(len(names))
        ax.barh([y - 0.27 for y in positions], [r.idle_usd for r in view], height=0.27, label="estimate idle")
        ax.barh(list(positions), [r.peak_usd for r in view], height=0.27, label="estimate peak")
        ax.barh([y + 0.27 for y in positions], [r.actual_usd for r in view], height=0.27, label="actual")
        ax.set_yticks(list(positions), names)
        ax.invert_yaxis()
        ax.set_xlabel(f"USD over {report.days} days")
        ax.set_title(f"{report.stack}: per {title}, {report.start} to {report.end}")
        ax.legend(loc="lower right")
    return _save(plt, fig, path)


def _pyplot() -> Any:
    # Imported here: matplotlib costs half a second, and only --chart needs it.
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path
