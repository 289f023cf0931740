"""Actual spend from Cost Explorer, grouped by the platform's cost-allocation tags, beside the estimate.

`GetCostAndUsage` is filtered on the stack's `mlplat:environment` tag and grouped once by `mlplat:component` and
once by `mlplat:team` (the API allows two groupings per call, and the two views are read separately). Cost
Explorer names a group `<tag key>$<value>`; an empty value is spend that carries no such tag, shown as
`(untagged)`. The estimate is monthly, so it is scaled to the window's length before it is compared. Where the
stack exports EKS split cost allocation data, pod cost per namespace (`mlplat.cost.split`) joins the report.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from mlplat.cost.model import COMPONENT_TAG, Estimate
from mlplat.cost.split import PodCost

ENVIRONMENT_TAG = "mlplat:environment"
TEAM_TAG = "mlplat:team"
METRIC = "UnblendedCost"
UNTAGGED = "(untagged)"
_SINCE = re.compile(r"^(\d{1,3})d$")


class ActualError(ValueError):
    """Bad input to `--actual` (one line, naming the option)."""


def window(since: str, today: date) -> tuple[date, date]:
    """`30d` -> (today - 30 days, today): Cost Explorer's start is inclusive, its end exclusive."""
    match = _SINCE.match(since)
    if match is None or not 1 <= int(match.group(1)) <= 365:
        raise ActualError(f"--since must be a number of days from 1d to 365d (got {since!r})")
    return today - timedelta(days=int(match.group(1))), today


@dataclass(frozen=True)
class Row:
    """One group: the estimate for the window and what Cost Explorer says was spent."""

    name: str
    idle_usd: float
    """The estimate at idle, scaled to the window."""
    peak_usd: float
    """The estimate at peak, scaled to the window."""
    actual_usd: float

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, cents."""
        return {
            "name": self.name,
            "estimateIdleUsd": round(self.idle_usd, 2),
            "estimatePeakUsd": round(self.peak_usd, 2),
            "actualUsd": round(self.actual_usd, 2),
        }


@dataclass(frozen=True)
class ActualReport:
    """Estimate vs actual per component and per team over one window."""

    stack: str
    environment: str
    start: date
    end: date
    components: tuple[Row, ...]
    teams: tuple[Row, ...]
    pods: tuple[PodCost, ...] | None = None
    """Pod cost per namespace from the split cost allocation export; None when the stack exports none."""

    @property
    def days(self) -> int:
        """The window's length."""
        return (self.end - self.start).days

    def to_json(self) -> dict[str, Any]:
        """The report's JSON form."""
        pods: dict[str, Any] = {}
        if self.pods is not None:
            pods = {
                "pods": [p.to_json() for p in self.pods],
                "podTotalUsd": round(sum(p.total_usd for p in self.pods), 2),
            }
        return {
            "stack": self.stack,
            "environment": self.environment,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": self.days,
            "currency": "USD",
            "components": [r.to_json() for r in self.components],
            "teams": [r.to_json() for r in self.teams],
            "actualTotalUsd": round(sum(r.actual_usd for r in self.components), 2),
            "estimateIdleTotalUsd": round(sum(r.idle_usd for r in self.components), 2),
            "estimatePeakTotalUsd": round(sum(r.peak_usd for r in self.components), 2),
            **pods,
        }


def request(environment: str, start: date, end: date, group_tag: str) -> dict[str, Any]:
    """The `GetCostAndUsage` parameters for one grouping."""
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": [METRIC],
        "Filter": {"Tags": {"Key": ENVIRONMENT_TAG, "Values": [environment], "MatchOptions": ["EQUALS"]}},
        "GroupBy": [{"Type": "TAG", "Key": group_tag}],
    }


def grouped(response: Mapping[str, Any], tag: str) -> dict[str, float]:
    """Spend per tag value, summed over the response's periods."""
    totals: dict[str, float] = {}
    for period in response.get("ResultsByTime", []):
        for group in period.get("Groups", []):
            key = str(group["Keys"][0])
            value = key.split("$", 1)[1] if key.startswith(f"{tag}$") else key
            amount = float(group["Metrics"][METRIC]["Amount"])
            totals[value or UNTAGGED] = totals.get(value or UNTAGGED, 0.0) + amount
    return totals


def _fetch(ce: Any, environment: str, start: date, end: date, tag: str) -> dict[str, float]:
    params = request(environment, start, end, tag)
    totals: dict[str, float] = {}
    while True:
        response = ce.get_cost_and_usage(**params)
        for key, value in grouped(response, tag).items():
            totals[key] = totals.get(key, 0.0) + value
        token = response.get("NextPageToken")
        if not token:
            return totals
        params["NextPageToken"] = token


def _rows(estimates: Mapping[str, tuple[float, float]], actuals: Mapping[str, float]) -> tuple[Row, ...]:
    names = sorted(set(estimates) | set(actuals), key=lambda n: (-actuals.get(n, 0.0), n))
    return tuple(Row(n, *estimates.get(n, (0.0, 0.0)), actuals.get(n, 0.0)) for n in names)


def actual_report(ce: Any, estimate: Estimate, team: str, start: date, end: date) -> ActualReport:
    """Read Cost Explorer for the stack and set it beside the estimate (idle and peak) scaled to the window."""
    share = (end - start).days * 24 / estimate.hours_per_month
    by_component = {c: (idle * share, peak * share) for c, idle, peak in estimate.components()}
    components = _fetch(ce, estimate.environment, start, end, COMPONENT_TAG)
    teams = _fetch(ce, estimate.environment, start, end, TEAM_TAG)
    return ActualReport(
        stack=estimate.stack,
        environment=estimate.environment,
        start=start,
        end=end,
        components=_rows(by_component, components),
        teams=_rows({team: (estimate.idle_total * share, estimate.peak_total * share)}, teams),
    )
