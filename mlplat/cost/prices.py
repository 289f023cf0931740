"""The price table (`prices.json`): dated rows per SKU and region, lookups, and the staleness warning."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
UNITS = ("usd_per_hour", "usd_per_month", "usd_per_gb_month", "usd_per_gb", "factor")


class PriceError(KeyError):
    """No row prices this SKU in this region."""


@dataclass(frozen=True)
class Price:
    """One row of the table."""

    sku: str
    region: str
    unit: str
    """Which of `UNITS` the row gives."""
    value: float
    source: str
    as_of: date

    def age_days(self, today: date) -> int:
        """Days since the price was checked."""
        return (today - self.as_of).days


@dataclass(frozen=True)
class PriceTable:
    """Every row, the month length, the staleness limit and the usage assumptions."""

    rows: tuple[Price, ...]
    hours_per_month: float
    max_age_days: int
    assumptions: Mapping[str, Mapping[str, float]]
    path: str

    def lookup(self, sku: str, region: str) -> Price:
        """The row for `sku` in `region` (a `*` region row applies everywhere)."""
        for row in self.rows:
            if row.sku == sku and row.region in (region, "*"):
                return row
        raise PriceError(f"no price for {sku} in {region} in {self.path}")

    def assumption(self, key: str, environment: str) -> float:
        """A usage assumption (GB stored, GB ingested) for an environment."""
        return float(self.assumptions[key][environment])

    def stale(self, today: date, used: set[tuple[str, str]] | None = None) -> list[str]:
        """One warning per row (of those `used`, when given) older than the limit."""
        warnings = []
        for row in self.rows:
            if used is not None and (row.sku, row.region) not in used:
                continue
            age = row.age_days(today)
            if age > self.max_age_days:
                warnings.append(
                    f"price of {row.sku} in {row.region} is {age} days old (as of {row.as_of.isoformat()}, "
                    f"limit {self.max_age_days}); re-check {row.source} and update {self.path}"
                )
        return warnings


def _row(raw: Mapping[str, Any], path: str) -> Price:
    units = [u for u in UNITS if u in raw]
    if len(units) != 1:
        raise ValueError(f"{path}: row {raw.get('sku')!r} must give exactly one of {', '.join(UNITS)}")
    return Price(
        sku=str(raw["sku"]),
        region=str(raw["region"]),
        unit=units[0],
        value=float(raw[units[0]]),
        source=str(raw["source"]),
        as_of=date.fromisoformat(str(raw["as_of"])),
    )


def load(path: Path = PRICES_FILE) -> PriceTable:
    """Read and check a price table."""
    shown = _display(path)
    doc = json.loads(path.read_text())
    return PriceTable(
        rows=tuple(_row(r, shown) for r in doc["rows"]),
        hours_per_month=float(doc["hoursPerMonth"]),
        max_age_days=int(doc["maxAgeDays"]),
        assumptions=doc.get("assumptions", {}),
        path=shown,
    )


@cache
def default_table() -> PriceTable:
    """The project's price table."""
    return load(PRICES_FILE)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(__file__).resolve().parents[2]))
    except ValueError:
        return str(path)
