"""Pod cost per namespace from the stack's CUR 2.0 export with EKS split cost allocation data.

Cost Explorer cannot group by pod; AWS delivers what each pod costs only in a Cost and Usage Report 2.0 (AWS Data
Exports) created with `INCLUDE_SPLIT_COST_ALLOCATION_DATA`, and only once the account has opted in to split cost
allocation data for EKS in its Billing preferences. The export's gzip CSV files land under
`billing/<export>/data/BILLING_PERIOD=YYYY-MM/<execution>/`. A pod's line item names the pod in
`line_item_resource_id` (`arn:aws:eks:<region>:<account>:pod/<cluster>/<namespace>/<pod>/<uid>`), its share of the
instance in `split_line_item_split_cost`, and its share of the instance's unallocated capacity in
`split_line_item_unused_cost`; the two together are what the pod costs. Team namespaces carry the team's name.
"""

import csv
import gzip
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from contracts.bucket import billing_period_prefix

RESOURCE_ID = "line_item_resource_id"
USAGE_START = "line_item_usage_start_date"
SPLIT_COST = "split_line_item_split_cost"
UNUSED_COST = "split_line_item_unused_cost"
PARENT = "split_line_item_parent_resource_id"
REQUIRED_COLUMNS = (RESOURCE_ID, USAGE_START, PARENT, SPLIT_COST, UNUSED_COST)
_POD = re.compile(r"^arn:[a-z-]+:eks:[a-z0-9-]+:\d{12}:pod/([^/]+)/([^/]+)/")


class SplitCostError(ValueError):
    """The export cannot be read as a CUR 2.0 export with split cost allocation data (one line)."""


@dataclass(frozen=True)
class PodCost:
    """What the pods of one namespace cost over the window."""

    namespace: str
    split_usd: float
    """Their share of the instances they ran on (CPU, memory and accelerators they reserved or used)."""
    unused_usd: float
    """Their share of the instances' capacity no pod used."""

    @property
    def total_usd(self) -> float:
        """Split plus unused: the instances' whole cost is spread over their pods."""
        return self.split_usd + self.unused_usd

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, cents; the namespace is the team's."""
        return {
            "namespace": self.namespace,
            "team": self.namespace,
            "splitCostUsd": round(self.split_usd, 2),
            "unusedCostUsd": round(self.unused_usd, 2),
            "totalUsd": round(self.total_usd, 2),
        }


def billing_periods(start: date, end: date) -> list[str]:
    """`YYYY-MM` of every month the window `[start, end)` touches."""
    periods: list[str] = []
    year, month = start.year, start.month
    while date(year, month, 1) < end:
        periods.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return periods


def latest_delivery(objects: Iterable[Mapping[str, Any]], prefix: str) -> list[str]:
    """The data files of the newest execution under one billing period (each refresh may leave its own folder)."""
    executions: dict[str, list[Mapping[str, Any]]] = {}
    for obj in objects:
        key = str(obj["Key"])
        if not key.endswith(".csv.gz"):
            continue
        execution = key[len(prefix) :].rpartition("/")[0]
        executions.setdefault(execution, []).append(obj)
    if not executions:
        return []
    newest = max(executions.values(), key=lambda files: max(f["LastModified"] for f in files))
    return sorted(str(f["Key"]) for f in newest)


def _rows(data: bytes, key: str) -> Iterator[dict[str, str]]:
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SplitCostError(f"{key} is not a gzip CSV export file ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SplitCostError(
            f"{key} lacks {', '.join(missing)}: the export must select them with INCLUDE_SPLIT_COST_ALLOCATION_DATA"
        )
    yield from reader


def _amount(text: str) -> float:
    return float(text) if text.strip() else 0.0


def namespace_costs(rows: Iterable[Mapping[str, str]], cluster: str, start: date, end: date) -> tuple[PodCost, ...]:
    """Split and unused cost per namespace of `cluster`'s pods whose usage began in `[start, end)`, dearest first."""
    split: dict[str, float] = {}
    unused: dict[str, float] = {}
    for row in rows:
        match = _POD.match(row.get(RESOURCE_ID, ""))
        if match is None or match.group(1) != cluster or not row.get(PARENT):
            continue
        day = date.fromisoformat(row[USAGE_START][:10])
        if not start <= day < end:
            continue
        namespace = match.group(2)
        split[namespace] = split.get(namespace, 0.0) + _amount(row[SPLIT_COST])
        unused[namespace] = unused.get(namespace, 0.0) + _amount(row[UNUSED_COST])
    costs = [PodCost(n, split[n], unused[n]) for n in split]
    return tuple(sorted(costs, key=lambda c: (-c.total_usd, c.namespace)))


def pod_costs(s3: Any, bucket: str, export: str, cluster: str, start: date, end: date) -> tuple[PodCost, ...]:
    """Read the export's newest delivery of every billing period in the window from S3 and sum it per namespace."""
    rows: list[dict[str, str]] = []
    for period in billing_periods(start, end):
        prefix = billing_period_prefix(export, period)
        objects: list[Mapping[str, Any]] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects += page.get("Contents", [])
        for key in latest_delivery(objects, prefix):
            rows += _rows(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), key)
    return namespace_costs(rows, cluster, start, end)
