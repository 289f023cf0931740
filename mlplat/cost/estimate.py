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
  target, at its initial instance count). A scale-to-zero variant (inference components) counts its managed
  instance scaling's min (0) and max instances; a serverless variant costs nothing idle and, at peak, its memory
  busy at full concurrency around the clock.
- Cluster-served endpoints (serving Deployments): the pod's share of one node of its pool (GPUs of a GPU pool's
  dearest type; CPU of the system node group's type) times the autoscaler's min replicas at idle and max at peak.
  It is counted on top of the pool's own line: these pods are what makes the pool grow.
- MLflow: the tracking server's size around the clock; the serverless app itself is free.
- KMS keys per month; S3 and CloudWatch Logs from per-environment volume assumptions in the price table.

Idle and peak differ only where an autoscaler decides; everything else costs the same in both.
"""

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from components import catalog, versions
from components.serving_deployment import POOL_LABEL
from components.serving_deployment import WORKLOAD_LABEL as SERVING_LABEL
from mlplat.cost.model import COMPONENT_TAG, CostLine, Estimate, PlanLike, ResourceLike
from mlplat.cost.prices import Price, PriceError, PriceTable, default_table


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


def _cpu(value: Any) -> float:
    """A CPU quantity (`"2"`, `"500m"`) in cores; 0 when it is not one."""
    text = str(value) if isinstance(value, str | int | float) else ""
    if text.endswith("m") and text[:-1].isdigit():
        return int(text[:-1]) / 1000
    return float(text) if text.replace(".", "", 1).isdigit() else 0.0


def _vcpus(instance_type: str) -> int | None:
    """vCPUs of a general-purpose size (large 2, xlarge 4, Nxlarge 4N); None for other sizes."""
    size = instance_type.rsplit(".", 1)[-1]
    if size == "large":
        return 2
    multiple = size.removesuffix("xlarge")
    if size.endswith("xlarge") and (multiple == "" or multiple.isdigit()):
        return 4 * int(multiple or 1)
    return None


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
            "kubernetes:apps/v1:Deployment": self.serving_deployment,
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
            serverless = variant.get("serverlessConfig")
            if isinstance(serverless, Mapping):
                self._serverless(r, variant, serverless)
                continue
            instance_type = variant.get("instanceType")
            if not instance_type:
                continue
            managed = variant.get("managedInstanceScaling")
            if isinstance(managed, Mapping) and managed.get("status") == "ENABLED":
                low = _number(managed.get("minInstanceCount"))
                high = _number(managed.get("maxInstanceCount"), _number(variant.get("initialInstanceCount"), 1.0))
            else:
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

    def serving_deployment(self, r: ResourceLike) -> None:
        metadata = r.inputs.get("metadata") or {}
        if (metadata.get("labels") or {}).get(SERVING_LABEL) != "serving":
            return
        pod = ((r.inputs.get("spec") or {}).get("template") or {}).get("spec") or {}
        requests = ((pod.get("containers") or [{}])[0].get("resources") or {}).get("requests") or {}
        low = high = 1.0
        for hpa in _siblings(self.resources, r, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"):
            spec = hpa.inputs.get("spec") or {}
            low, high = _number(spec.get("minReplicas"), 1.0), _number(spec.get("maxReplicas"), 1.0)
        pool = (pod.get("nodeSelector") or {}).get(POOL_LABEL)
        share = self._gpu_share(pool, requests) if pool else self._cpu_share(requests)
        if share is None:
            self.prices.missing.append(f"serving Deployment {r.name} runs on no priced node type; counted as $0")
            return
        instance_type, fraction, what = share
        sku = f"ec2:{instance_type}"
        self.add(
            r,
            f"{what} of {instance_type} ({fraction:.3g} node) x{low:g}..{high:g} pods",
            sku,
            "hour",
            self.prices.value(sku) * fraction,
            low * self.hours,
            high * self.hours,
        )

    def _gpu_share(self, pool: str, requests: Mapping[str, Any]) -> tuple[str, float, str] | None:
        gpus = _number(_quantity(requests.get("nvidia.com/gpu")))
        for p in self.resources:
            spec = p.inputs.get("spec") or {}
            if p.type != "kubernetes:karpenter.sh/v1:NodePool" or (p.inputs.get("metadata") or {}).get("name") != pool:
                continue
            requirements = ((spec.get("template") or {}).get("spec") or {}).get("requirements") or []
            types = [
                str(v)
                for q in requirements
                if q.get("key") == "node.kubernetes.io/instance-type"
                for v in q.get("values") or []
                if catalog.gpus_per_node(str(v))
            ]
            if types and gpus:
                dearest = max(types, key=lambda t: self.prices.value(f"ec2:{t}") / catalog.gpus_per_node(t))
                return dearest, gpus / catalog.gpus_per_node(dearest), f"{gpus:g} GPU"
        return None

    def _cpu_share(self, requests: Mapping[str, Any]) -> tuple[str, float, str] | None:
        cpu = _cpu(requests.get("cpu"))
        for group in self.resources:
            if group.type == "aws:eks/nodeGroup:NodeGroup":
                instance_type = self._node_type(group)
                vcpus = _vcpus(instance_type) if instance_type else None
                if instance_type and vcpus and cpu:
                    return instance_type, cpu / vcpus, f"{cpu:g} vCPU"
        return None

    def _serverless(self, r: ResourceLike, variant: Mapping[str, Any], serverless: Mapping[str, Any]) -> None:
        gib = _number(serverless.get("memorySizeInMb"), 1024.0) / 1024
        concurrency = _number(serverless.get("maxConcurrency"), 1.0)
        sku = "sagemaker:serverless-gb-hour"
        self.add(
            r,
            f"serverless {gib:g} GB x0..{concurrency:g} concurrent ({variant.get('variantName')})",
            sku,
            "GB-hour",
            self.prices.value(sku),
            0.0,
            gib * concurrency * self.hours,
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
