"""The cost estimate as data: the plan it reads (protocols), one priced line per resource and SKU, and the totals,
components and budget verdict that `mlplat cost`, the policy pack and the local report show."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

COMPONENT_TAG = "mlplat:component"


class ResourceLike(Protocol):
    """What the estimator reads from one plan resource (`mlplat.synth.ResourceRecord`)."""

    @property
    def urn(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def parent(self) -> str: ...
    @property
    def custom(self) -> bool: ...
    @property
    def inputs(self) -> dict[str, Any]: ...


class PlanLike(Protocol):
    """What the estimator reads from a plan (`mlplat.synth.PlanRecord`)."""

    @property
    def stack(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def resources(self) -> list[Any]: ...


@dataclass(frozen=True)
class CostLine:
    """One priced item: a resource (or one variant of it) at idle and at peak."""

    component: str
    item: str
    description: str
    sku: str
    unit: str
    unit_price: float
    idle_quantity: float
    peak_quantity: float
    peak_low_unit_price: float | None = None
    """The cheapest unit price at peak when capacity may be spot (the line is then a range)."""

    @property
    def peak_low_usd(self) -> float:
        """Monthly cost at peak at the low end of the range (the peak itself when there is no range)."""
        low = self.unit_price if self.peak_low_unit_price is None else self.peak_low_unit_price
        return low * self.peak_quantity

    @property
    def idle_usd(self) -> float:
        """Monthly cost at idle."""
        return self.unit_price * self.idle_quantity

    @property
    def peak_usd(self) -> float:
        """Monthly cost at peak."""
        return self.unit_price * self.peak_quantity

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form, money rounded to cents."""
        return {
            "component": self.component,
            "item": self.item,
            "description": self.description,
            "sku": self.sku,
            "unit": self.unit,
            "unitPriceUsd": self.unit_price,
            "idleQuantity": self.idle_quantity,
            "peakQuantity": self.peak_quantity,
            "idleUsd": round(self.idle_usd, 2),
            "peakUsd": round(self.peak_usd, 2),
            **({"peakLowUsd": round(self.peak_low_usd, 2)} if self.peak_low_unit_price is not None else {}),
        }


@dataclass(frozen=True)
class Estimate:
    """The monthly cost of one stack."""

    stack: str
    environment: str
    region: str
    budget_usd: float | None
    lines: tuple[CostLine, ...]
    warnings: tuple[str, ...]
    price_table: str
    hours_per_month: float
    assumptions: Mapping[str, float] = field(default_factory=dict)

    @property
    def idle_total(self) -> float:
        """Monthly total with every autoscaler at its minimum."""
        return sum(line.idle_usd for line in self.lines)

    @property
    def peak_total(self) -> float:
        """Monthly total with every autoscaler at its maximum."""
        return sum(line.peak_usd for line in self.lines)

    @property
    def within_budget(self) -> bool | None:
        """Whether peak fits the budget; None without a budget."""
        return None if self.budget_usd is None else self.peak_total <= self.budget_usd

    def components(self) -> list[tuple[str, float, float]]:
        """(component, idle, peak) per component, most expensive at peak first."""
        totals: dict[str, list[float]] = {}
        for line in self.lines:
            entry = totals.setdefault(line.component, [0.0, 0.0])
            entry[0] += line.idle_usd
            entry[1] += line.peak_usd
        return sorted(((c, i, p) for c, (i, p) in totals.items()), key=lambda row: (-row[2], row[0]))

    def to_json(self) -> dict[str, Any]:
        """The report's JSON form."""
        return {
            "schemaVersion": 1,
            "stack": self.stack,
            "environment": self.environment,
            "region": self.region,
            "currency": "USD",
            "hoursPerMonth": self.hours_per_month,
            "priceTable": self.price_table,
            "budgetUsd": self.budget_usd,
            "idleMonthlyUsd": round(self.idle_total, 2),
            "peakMonthlyUsd": round(self.peak_total, 2),
            "peakLowMonthlyUsd": round(sum(line.peak_low_usd for line in self.lines), 2),
            "withinBudget": self.within_budget,
            "components": [
                {"component": c, "idleUsd": round(i, 2), "peakUsd": round(p, 2)} for c, i, p in self.components()
            ],
            "lines": [line.to_json() for line in self.lines],
            "assumptions": dict(self.assumptions),
            "warnings": list(self.warnings),
        }
