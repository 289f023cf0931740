"""Idle spend: endpoints nobody invoked over a window, and GPU nodes whose GPUs sat (nearly) unused, with what each
costs a month.

Endpoints are the stack's (`mlplat-<environment>-<name>`, as the program names them); their `Invocations` come from
CloudWatch (`AWS/SageMaker`, summed over the window). GPU nodes come from the DCGM telemetry that CloudWatch
Container Insights publishes as `node_gpu_utilization` (namespace `ContainerInsights`, per `ClusterName`,
`InstanceId`, `InstanceType`); without it there is nothing to judge and no node is listed.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from components.config import StackConfig
from mlplat.cost.model import Estimate
from mlplat.cost.prices import PriceError, PriceTable

GPU_NAMESPACE = "ContainerInsights"
GPU_METRIC = "node_gpu_utilization"
DEFAULT_GPU_UTILISATION_PERCENT = 10.0


@dataclass(frozen=True)
class IdleItem:
    """One thing that costs money and did no work over the window."""

    kind: str
    """`endpoint` or `gpu-node`."""
    name: str
    detail: str
    monthly_usd: float

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, cents."""
        return {"kind": self.kind, "name": self.name, "detail": self.detail, "monthlyUsd": round(self.monthly_usd, 2)}


def endpoint_names(config: StackConfig) -> dict[str, str]:
    """`mlplat:endpoints[].name` -> the SageMaker endpoint's name."""
    return {ep.name: f"mlplat-{config.environment}-{ep.name}" for ep in config.endpoints}


def _endpoint_monthly(estimate: Estimate, endpoint: str) -> float:
    """What the endpoint costs a month as it stands (its idle estimate: the floor it never scales below)."""
    return sum(line.idle_usd for line in estimate.lines if line.item == f"{endpoint}-config")


def idle_endpoints(
    cloudwatch: Any, config: StackConfig, estimate: Estimate, start: datetime, end: datetime
) -> list[IdleItem]:
    """Endpoints with no invocation between `start` and `end`."""
    found = []
    period = max(60, int((end - start).total_seconds()) // 60 * 60)
    for name in endpoint_names(config).values():
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="Invocations",
            Dimensions=[{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "primary"}],
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=["Sum"],
        )["Datapoints"]
        if sum(float(p["Sum"]) for p in points) == 0:
            days = (end - start).days
            found.append(IdleItem("endpoint", name, f"0 invocations in {days}d", _endpoint_monthly(estimate, name)))
    return found


def _dimensions(metric: Mapping[str, Any]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}


def idle_gpu_nodes(
    cloudwatch: Any,
    cluster: str,
    table: PriceTable,
    region: str,
    start: datetime,
    end: datetime,
    threshold: float = DEFAULT_GPU_UTILISATION_PERCENT,
) -> list[IdleItem]:
    """GPU nodes of `cluster` whose average GPU utilisation over the window is below `threshold` percent."""
    metrics = cloudwatch.list_metrics(
        Namespace=GPU_NAMESPACE, MetricName=GPU_METRIC, Dimensions=[{"Name": "ClusterName", "Value": cluster}]
    )["Metrics"]
    found = []
    period = max(60, int((end - start).total_seconds()) // 60 * 60)
    for metric in metrics:
        dims = _dimensions(metric)
        if "InstanceId" not in dims:
            continue
        points = cloudwatch.get_metric_statistics(
            Namespace=GPU_NAMESPACE,
            MetricName=GPU_METRIC,
            Dimensions=metric["Dimensions"],
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=["Average"],
        )["Datapoints"]
        if not points:
            continue
        average = sum(float(p["Average"]) for p in points) / len(points)
        if average >= threshold:
            continue
        instance_type = dims.get("InstanceType", "unknown")
        try:
            monthly = table.lookup(f"ec2:{instance_type}", region).value * table.hours_per_month
        except PriceError:
            monthly = 0.0
        found.append(
            IdleItem("gpu-node", dims["InstanceId"], f"{instance_type}, GPU {average:.1f}% on average", monthly)
        )
    return found


def idle_window(days: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last `days` days, ending now (UTC)."""
    end = now or datetime.now(UTC)
    return end - timedelta(days=days), end
