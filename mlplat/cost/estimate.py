"""Monthly cost of a stack's plan, per component and in total, at idle (autoscalers at minimum) and at peak (maximum).

The estimate reads the resources of the offline plan (`mlplat.synth`) and its validated config, and prices them
with the project's table (`prices.json`):

- EKS control plane: one cluster-hour per hour; the extended-support hour for a version past standard support.
- Karpenter GPU pools (NodePools): nothing at idle (no pending pod, no node); at peak the pool's GPU limit times the
  dearest allowed instance type per GPU; a pool that may take spot is a range from all-spot (`ec2:spot-factor`) up
  to all on-demand. Reserved capacity is billed at the on-demand rate. Its gp3 volumes scale with the node count.
- Node groups: `scalingConfig.minSize` nodes at idle, `maxSize` at peak, priced at the most expensive of the
  group's instance types (what the autoscaler may launch); SPOT groups at `ec2:spot-factor` times on-demand.
  Their gp3 volumes (from the group's launch template) scale with the node count.
- NAT gateways and their Elastic IPs around the clock, plus an assumed volume of processed data per gateway.
- Interface VPC endpoints: one endpoint-hour per subnet (AZ) per hour. Gateway endpoints are free.
- SageMaker endpoints: each variant's instance type, at the autoscaling target's min and max capacity (without a
  target, at its initial instance count).
- MLflow: the tracking server's size around the clock; the serverless app itself is free.
- KMS keys per month; S3 and CloudWatch Logs from per-environment volume assumptions in the price table.

Idle and peak differ only where an autoscaler decides; everything else costs the same in both.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from components import catalog, versions
from mlplat.cost.prices import Price, PriceError, PriceTable, default_table

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


class _Pricer:
    """Looks prices up for one region, remembering which rows it used and which it could not find."""

    def __init__(self, table: PriceTable, region: str) -> None:
        self.table = table
        self.region = region
        self.used: set[tuple[str, str]] = set()
        self.missing: list[str] = []

    def get(self, sku: str) -> Price | None:
        try:
            price = self.table.lookup(sku, self.region)
        except PriceError as exc:
            self.missing.append(f"{exc.args[0]}; counted as $0")
            return None
        self.used.add((price.sku, price.region))
        return price

    def value(self, sku: str) -> float:
        price = self.get(sku)
        return price.value if price is not None else 0.0


def _component(resource: ResourceLike, by_urn: Mapping[str, ResourceLike]) -> str:
    tags = resource.inputs.get("tags")
    if isinstance(tags, Mapping) and tags.get(COMPONENT_TAG):
        return str(tags[COMPONENT_TAG])
    parent = by_urn.get(resource.parent)
    while parent is not None:
        parts = parent.type.split(":")
        if not parent.custom and len(parts) == 3 and parts[1] != "platform":
            return parts[1]
        parent = by_urn.get(parent.parent)
    return "platform"


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _quantity(value: Any) -> Any:
    """A Kubernetes quantity such as `"16"` or `"500Gi"` as a number (GiB for sizes); other values unchanged."""
    if isinstance(value, str):
        text = value.removesuffix("Gi")
        return float(text) if text.replace(".", "", 1).isdigit() else value
    return value


def _siblings(resources: Iterable[ResourceLike], resource: ResourceLike, type_: str) -> list[ResourceLike]:
    return [r for r in resources if r.type == type_ and r.parent == resource.parent]


class _Estimator:
    def __init__(self, plan: PlanLike, table: PriceTable, today: date) -> None:
        self.today = today
        self.plan = plan
        self.config = plan.config
        self.environment = str(self.config.get("environment", "dev"))
        self.region = str(self.config.get("region", "us-east-1"))
        self.table = table
        self.hours = table.hours_per_month
        self.prices = _Pricer(table, self.region)
        self.resources: list[ResourceLike] = [r for r in plan.resources]
        self.by_urn = {r.urn: r for r in self.resources}
        self.lines: list[CostLine] = []

    def add(
        self, resource: ResourceLike, description: str, sku: str, unit: str, price: float, idle: float, peak: float
    ) -> None:
        self.lines.append(
            CostLine(_component(resource, self.by_urn), resource.name, description, sku, unit, price, idle, peak)
        )

    def hourly(self, resource: ResourceLike, description: str, sku: str, count: float = 1.0) -> None:
        self.add(resource, description, sku, "hour", self.prices.value(sku), count * self.hours, count * self.hours)

    def run(self) -> None:
        handlers = {
            "aws:eks/cluster:Cluster": self.cluster,
            "aws:eks/nodeGroup:NodeGroup": self.node_group,
            "kubernetes:karpenter.sh/v1:NodePool": self.node_pool,
            "aws:ec2/natGateway:NatGateway": self.nat_gateway,
            "aws:ec2/eip:Eip": self.public_ip,
            "aws:ec2/vpcEndpoint:VpcEndpoint": self.vpc_endpoint,
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration": self.endpoint_config,
            "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": self.tracking_server,
            "aws:sagemaker/mlflowApp:MlflowApp": self.mlflow_app,
            "aws:kms/key:Key": self.kms_key,
            "aws:s3/bucket:Bucket": self.bucket,
            "aws:s3/bucketV2:BucketV2": self.bucket,
            "aws:cloudwatch/logGroup:LogGroup": self.log_group,
        }
        for resource in self.resources:
            handler = handlers.get(resource.type)
            if handler is not None and (resource.custom or resource.type.startswith("kubernetes:")):
                handler(resource)

    def cluster(self, r: ResourceLike) -> None:
        version = str(r.inputs.get("version", "default"))
        extended = (r.inputs.get("upgradePolicy") or {}).get("supportType") == "EXTENDED"
        if extended and version in versions.RELEASES and not versions.in_standard_support(version, self.today):
            self.hourly(r, f"EKS control plane ({version}, extended support)", "eks:cluster-extended-support")
            return
        self.hourly(r, f"EKS control plane ({version})", "eks:cluster")

    def node_pool(self, r: ResourceLike) -> None:
        spec = r.inputs.get("spec") or {}
        gpus = _number(_quantity((spec.get("limits") or {}).get("nvidia.com/gpu")))
        requirements = ((spec.get("template") or {}).get("spec") or {}).get("requirements") or []
        allowed = {str(q.get("key")): [str(v) for v in q.get("values") or []] for q in requirements}
        types = [t for t in allowed.get("node.kubernetes.io/instance-type", []) if catalog.gpus_per_node(t)]
        capacity = allowed.get("karpenter.sh/capacity-type", ["on-demand"])
        if not types or not gpus:
            self.prices.missing.append(f"NodePool {r.name} names no GPU types or GPU limit; counted as $0")
            return
        dearest = max(types, key=lambda t: self.prices.value(f"ec2:{t}") / catalog.gpus_per_node(t))
        per_gpu = self.prices.value(f"ec2:{dearest}") / catalog.gpus_per_node(dearest)
        spot_per_gpu = per_gpu * self.prices.value("ec2:spot-factor")
        high = spot_per_gpu if capacity == ["spot"] else per_gpu
        low = spot_per_gpu if "spot" in capacity else None
        kinds = "/".join(capacity)
        self.lines.append(
            CostLine(
                _component(r, self.by_urn),
                r.name,
                f"{gpus:g} GPUs of {dearest} ({kinds}) at peak, none idle",
                f"ec2:{dearest}",
                "GPU-hour",
                high,
                0.0,
                gpus * self.hours,
                low if low != high else None,
            )
        )
        nodes = -(-int(gpus) // min(catalog.gpus_per_node(t) for t in types))
        gib = self._node_class_gib(r)
        if gib:
            price = self.prices.value("ebs:gp3")
            self.add(r, f"gp3 {gib:g} GiB per node, up to {nodes} nodes", "ebs:gp3", "GB-month", price, 0, nodes * gib)

    def _node_class_gib(self, r: ResourceLike) -> float:
        for c in _siblings(self.resources, r, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
            mappings = (c.inputs.get("spec") or {}).get("blockDeviceMappings") or []
            return sum(_number(_quantity((m.get("ebs") or {}).get("volumeSize"))) for m in mappings)
        return 0.0

    def _node_type(self, r: ResourceLike) -> str | None:
        types = [str(t) for t in r.inputs.get("instanceTypes") or []]
        if not types:
            types = [str(t.inputs["instanceType"]) for t in self._templates(r) if t.inputs.get("instanceType")]
        if not types:
            return None
        return max(types, key=lambda t: self.prices.value(f"ec2:{t}"))

    def _templates(self, r: ResourceLike) -> list[ResourceLike]:
        return _siblings(self.resources, r, "aws:ec2/launchTemplate:LaunchTemplate")

    def node_group(self, r: ResourceLike) -> None:
        scaling = r.inputs.get("scalingConfig") or {}
        low, high = _number(scaling.get("minSize")), _number(scaling.get("maxSize"))
        instance_type = self._node_type(r)
        if instance_type is None:
            self.prices.missing.append(f"node group {r.name} names no instance type; counted as $0")
            return
        sku = f"ec2:{instance_type}"
        price = self.prices.value(sku)
        spot = r.inputs.get("capacityType") == "SPOT"
        if spot:
            price *= self.prices.value("ec2:spot-factor")
        kind = "spot" if spot else "on-demand"
        self.add(
            r, f"{instance_type} {kind} x{low:g}..{high:g}", sku, "hour", price, low * self.hours, high * self.hours
        )
        gib = self._volume_gib(r)
        if gib:
            self.add(
                r,
                f"gp3 {gib:g} GiB per node",
                "ebs:gp3",
                "GB-month",
                self.prices.value("ebs:gp3"),
                low * gib,
                high * gib,
            )

    def _volume_gib(self, r: ResourceLike) -> float:
        templates = self._templates(r)
        if len(templates) == 1:
            mappings = templates[0].inputs.get("blockDeviceMappings") or []
            return sum(_number((m.get("ebs") or {}).get("volumeSize")) for m in mappings if isinstance(m, Mapping))
        return _number(r.inputs.get("diskSize"), 20.0)

    def nat_gateway(self, r: ResourceLike) -> None:
        self.hourly(r, "NAT gateway", "vpc:nat-gateway")
        gb = self.table.assumption("natGbProcessedPerGatewayMonth", self.environment)
        price = self.prices.value("vpc:nat-gateway-data")
        self.add(r, f"NAT data processing ({gb:g} GB assumed)", "vpc:nat-gateway-data", "GB", price, gb, gb)

    def public_ip(self, r: ResourceLike) -> None:
        self.hourly(r, "public IPv4 address", "vpc:public-ipv4")

    def vpc_endpoint(self, r: ResourceLike) -> None:
        if r.inputs.get("vpcEndpointType") != "Interface":
            return
        azs = len(r.inputs.get("subnetIds") or []) or 1
        service = str(r.inputs.get("serviceName", "")).rsplit(".", 1)[-1]
        self.hourly(r, f"interface endpoint {service} x{azs} AZ", "vpc:interface-endpoint-az", azs)

    def _capacity(self, r: ResourceLike, variant: Mapping[str, Any], variants: int) -> tuple[float, float]:
        initial = _number(variant.get("initialInstanceCount"), 1.0)
        targets = [
            t
            for t in _siblings(self.resources, r, "aws:appautoscaling/target:Target")
            if t.inputs.get("serviceNamespace") == "sagemaker"
        ]
        name = variant.get("variantName")
        named = [t for t in targets if str(t.inputs.get("resourceId", "")).endswith(f"/variant/{name}")]
        chosen = named or (targets if variants == 1 else [])
        if not chosen:
            return initial, initial
        return _number(chosen[0].inputs.get("minCapacity"), initial), _number(
            chosen[0].inputs.get("maxCapacity"), initial
        )

    def endpoint_config(self, r: ResourceLike) -> None:
        variants = [v for v in r.inputs.get("productionVariants") or [] if isinstance(v, Mapping)]
        for variant in variants:
            instance_type = variant.get("instanceType")
            if not instance_type:
                continue  # serverless variants are billed per request
            low, high = self._capacity(r, variant, len(variants))
            sku = f"sagemaker:hosting:{instance_type}"
            self.add(
                r,
                f"{instance_type} x{low:g}..{high:g} ({variant.get('variantName')})",
                sku,
                "hour",
                self.prices.value(sku),
                low * self.hours,
                high * self.hours,
            )

    def tracking_server(self, r: ResourceLike) -> None:
        size = str(r.inputs.get("trackingServerSize") or "Small")
        self.hourly(r, f"MLflow tracking server ({size})", f"sagemaker:mlflow-tracking-server:{size}")

    def mlflow_app(self, r: ResourceLike) -> None:
        self.hourly(r, "MLflow serverless app", "sagemaker:mlflow-app")

    def kms_key(self, r: ResourceLike) -> None:
        self.add(r, "KMS key", "kms:key", "month", self.prices.value("kms:key"), 1, 1)

    def bucket(self, r: ResourceLike) -> None:
        buckets = sum(1 for x in self.resources if x.type in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"))
        gb = self.table.assumption("s3GbMonth", self.environment) / max(buckets, 1)
        self.add(
            r, f"S3 Standard ({gb:g} GB assumed)", "s3:standard", "GB-month", self.prices.value("s3:standard"), gb, gb
        )

    def log_group(self, r: ResourceLike) -> None:
        gb = self.table.assumption("logGbIngestedPerGroupMonth", self.environment)
        self.add(
            r, f"log ingestion ({gb:g} GB assumed)", "logs:ingestion", "GB", self.prices.value("logs:ingestion"), gb, gb
        )
        days = _number(r.inputs.get("retentionInDays"), 365.0) or 365.0
        stored = gb * min(days / 30.0, 12.0)
        price = self.prices.value("logs:storage")
        self.add(r, f"log storage ({stored:g} GB at {days:g} days)", "logs:storage", "GB-month", price, stored, stored)


def estimate(plan: PlanLike, table: PriceTable | None = None, today: date | None = None) -> Estimate:
    """Price a stack's plan; `today` (default: the real date) decides which prices are stale."""
    table = table or default_table()
    estimator = _Estimator(plan, table, today or date.today())
    estimator.run()
    budget = (plan.config.get("budget") or {}).get("limitUsd")
    environment = estimator.environment
    return Estimate(
        stack=plan.stack,
        environment=environment,
        region=estimator.region,
        budget_usd=float(budget) if budget is not None else None,
        lines=tuple(estimator.lines),
        warnings=tuple(table.stale(today or date.today(), estimator.prices.used) + estimator.prices.missing),
        price_table=table.path,
        hours_per_month=table.hours_per_month,
        assumptions={
            key: float(values[environment]) for key, values in table.assumptions.items() if environment in values
        },
    )
