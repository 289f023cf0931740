"""The typed model of a stack's `mlplat:*` config, validated as a whole before any resource is registered.

A program loads it from `pulumi.Config` (`load_from_pulumi`); the offline tools load it straight from a stack file
(`load_stack_file`). Both report every problem at once, one line each, naming the file, the key and the value:

    stacks/Pulumi.prod.yaml: mlplat:endpoints[0].maxCapacity must be >= minCapacity (got 1 < 2)
"""

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from components import aws_enums, catalog, sagemaker_catalog, versions
from components.problems import Problem

NAMESPACE = "mlplat"
STACKS_DIR = Path(__file__).resolve().parents[1] / "stacks"
ENVIRONMENTS = ("dev", "staging", "prod")

# Per-environment guard rails; a stack may tighten or loosen them under `mlplat:limits`.
DEFAULT_MAX_GPUS_PER_POOL = {"dev": 4, "staging": 16, "prod": 64}
DEFAULT_ALLOWED_GPU_TYPES = {
    "dev": ["g4dn.xlarge", "g5.xlarge", "g6.xlarge"],
    "staging": ["g4dn.xlarge", "g5.xlarge", "g5.2xlarge", "g6.xlarge", "g6.2xlarge", "g5.12xlarge"],
    "prod": ["g5.xlarge", "g5.2xlarge", "g5.12xlarge", "g6.xlarge", "g6e.xlarge", "p4d.24xlarge", "p5.48xlarge"],
}


def today() -> date:
    """The day EKS support dates are judged against (tests pin it)."""
    return date.today()


Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")]
Percent = Annotated[float, Field(ge=0, le=100)]


class ConfigError(ValueError):
    """Stack config that cannot be used; `problems` holds one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# Nested defaults are written `Model.model_construct()`: the same value as `Model()` (every field has a default),
# which mypy, without the pydantic plugin, rejects as a call with missing arguments.
class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, validate_default=True
    )


class NetworkConfig(_Model):
    """VPC layout: CIDR, AZ count and NAT mode."""

    cidr: str = Field("10.0.0.0/16", pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$")
    az_count: int = Field(2, ge=2, le=3)
    nat: Literal["none", "single", "per-az"] = "none"
    flow_log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653] = 90


class ArtifactsConfig(_Model):
    """The artifact bucket's lifecycle and deletion settings."""

    force_destroy: bool = False
    noncurrent_version_expiration_days: int = Field(30, ge=1)
    checkpoint_transition_days: int = Field(30, ge=1)
    checkpoint_expiration_days: int = Field(180, ge=1)
    abort_multipart_days: int = Field(7, ge=1)


class TrackingConfig(_Model):
    """SageMaker managed MLflow: serverless app unless `size` asks for a sized tracking server."""

    size: Literal["Small", "Medium", "Large"] | None = None
    mlflow_version: str = Field("3.0", pattern=r"^\d+\.\d+(\.\d+)?$")
    maintenance_window: str = Field("Sun:03:00", pattern=r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):[0-5]\d$")
    automatic_model_registration: bool = True


class RolloutConfig(_Model):
    """Blue/green deployment of a new endpoint configuration with alarm-driven rollback."""

    canary_percent: int = Field(10, ge=1, le=100)
    wait_minutes: int = Field(10, ge=0, le=60)
    termination_wait_minutes: int = Field(5, ge=0, le=60)
    max_error_rate_percent: Percent = 1.0
    max_latency_p99_ms: int = Field(500, ge=1)


class ServerlessConfig(_Model):
    """SageMaker serverless inference: memory and concurrency instead of instances (small CPU models)."""

    memory_mib: Literal[1024, 2048, 3072, 4096, 5120, 6144] = Field(alias="memoryMiB")
    max_concurrency: int = Field(ge=1, le=200)


SERVER_MAX_IN_FLIGHT = 64
"""The serving image's default in-flight limit per worker (`MLPLAT_MAX_IN_FLIGHT`; a test holds the two together):
past it a worker answers 503 at once, so an in-flight target at or above it is never reached."""


class AutoscalingConfig(_Model):
    """What a cluster endpoint's HorizontalPodAutoscaler follows: CPU utilisation (percent of the pod's request) or the
    average number of in-flight requests per pod."""

    metric: Literal["cpu", "inflight"]
    target: int


class EndpointConfig(_Model):
    """One SageMaker real-time endpoint and its autoscaling.

    `minCapacity: 0` builds it on inference components, which scale to zero copies and zero instances when idle;
    `serverless` makes it a serverless endpoint instead of an instance-backed one.
    """

    name: Name
    model: Name
    model_version: int = Field(1, ge=1)
    model_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    image: str | None = None
    min_capacity: int = Field(1, ge=0)
    max_capacity: int = Field(2, ge=1)
    serverless: ServerlessConfig | None = None
    copy_cpu_cores: float = Field(1.0, gt=0)
    """Cores one inference-component copy reserves (minCapacity: 0 only)."""
    copy_memory_mib: int = Field(1024, ge=128, alias="copyMemoryMiB")
    """Memory one inference-component copy reserves (minCapacity: 0 only)."""
    target_invocations_per_instance: int = Field(100, ge=1)
    scale_in_cooldown_seconds: int = Field(300, ge=0)
    scale_out_cooldown_seconds: int = Field(60, ge=0)
    data_capture_percent: Percent = 0
    rollout: RolloutConfig = RolloutConfig.model_construct()
    platform: Literal["sagemaker", "kubernetes"] = "sagemaker"
    """Where the endpoint runs: a SageMaker endpoint, or a Deployment on the stack's EKS cluster."""
    pool: str | None = None
    """Kubernetes only: `system` (the CPU system nodes) or one of `mlplat:gpuPools` (one GPU per pod)."""
    team: str | None = None
    """Kubernetes only: the `mlplat:teams` namespace the endpoint runs in."""
    autoscaling: AutoscalingConfig | None = None
    """Kubernetes only: what the autoscaler follows; CPU at 70 % when absent."""


class BudgetConfig(_Model):
    """Monthly cost budget on the stack's environment tag, with e-mail alerts."""

    limit_usd: float = Field(gt=0)
    thresholds: list[Percent] = Field(default_factory=lambda: [50.0, 80.0, 100.0], min_length=1)
    emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(min_length=1)
    enforce: bool | None = None
    """Scale the stack's endpoints down when ACTUAL spend crosses the last threshold; default: all but prod."""
    split_cost_export: bool = False
    """Export CUR 2.0 with EKS split cost allocation data into the bucket, for pod cost in `mlplat cost --actual`
    (the account must also opt in to split cost allocation data in its Billing preferences)."""

    def enforces(self, environment: str) -> bool:
        """Whether the enforcer acts (True) or only notifies (False) in `environment`."""
        return self.enforce if self.enforce is not None else environment != "prod"


class NodeGroupSize(_Model):
    """The on-demand system node group that runs cluster services."""

    instance_type: str = "m6i.large"
    min_size: int = Field(1, ge=1)
    max_size: int = Field(3, ge=1)


class ClusterConfig(_Model):
    """EKS control plane settings."""

    version: str = Field(default_factory=lambda: versions.default_version(today()), pattern=r"^1\.\d{2}$")
    allow_extended_support: bool = False
    """Accept a version past its end of standard support (EKS then bills the extended-support cluster-hour)."""
    prometheus_operator: bool = False
    """The cluster runs the Prometheus operator, so the DCGM exporter gets a ServiceMonitor."""
    public_access_cidrs: list[str] = Field(default_factory=list)
    admin_role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    system_nodes: NodeGroupSize = NodeGroupSize.model_construct()


CapacityType = Literal["reserved", "spot", "on-demand"]
CAPACITY_ORDER = get_args(CapacityType)


class DisruptionConfig(_Model):
    """How Karpenter may take a pool's nodes away: consolidation, its pace, and the node lifetime."""

    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"] = "WhenEmpty"
    consolidate_after: str = Field("5m", pattern=r"^(0|\d+(s|m|h))$")
    expire_after: str = Field("720h", pattern=r"^(Never|\d+(s|m|h))$")
    budget_nodes: str = Field("10%", pattern=r"^(\d+|\d+%)$")
    """Most nodes disrupted at once (a count or a percentage)."""


class GpuSharingConfig(_Model):
    """NVIDIA time-slicing: each physical GPU is advertised as `replicas` schedulable GPUs."""

    replicas: int = Field(ge=2, le=48)


class GpuPoolConfig(_Model):
    """One Karpenter pool of GPU instances, from zero nodes up to `gpuLimit` GPUs."""

    name: Name
    instance_families: list[str] = Field(default_factory=list)
    instance_types: list[str] = Field(default_factory=list)
    capacity_types: list[CapacityType] = Field(default_factory=lambda: list(CAPACITY_ORDER[-1:]), min_length=1)
    """Capacity in order of preference; Karpenter falls back along it."""
    gpu_limit: int = Field(ge=1)
    """Most GPUs the pool's nodes may hold together (the NodePool's `limits`)."""
    ami_family: Literal["AL2023", "Bottlerocket"] = "AL2023"
    disk_size_gib: int = Field(100, ge=20, le=16384, alias="diskSizeGiB")
    labels: dict[str, str] = Field(default_factory=dict)
    disruption: DisruptionConfig = DisruptionConfig.model_construct()
    gpu_sharing: GpuSharingConfig | None = None
    spot_waiver: str | None = Field(None, min_length=1)
    """Why a spot pool may run without an on-demand fallback (the policy pack asks for one otherwise)."""


# Keys of the managed-node-group pools, and what replaced each under Karpenter.
RETIRED_POOL_KEYS = {
    "capacityType": "capacityTypes (an ordered list of reserved, spot, on-demand)",
    "minSize": "gpuLimit (a Karpenter pool idles at zero nodes)",
    "maxSize": "gpuLimit (the most GPUs the pool may hold)",
    "amiType": "amiFamily (AL2023 or Bottlerocket)",
}


class TeamConfig(_Model):
    """A team's namespace and its resource quota."""

    name: Name
    gpu_quota: int = Field(ge=0)
    cpu_quota: str = Field("32", pattern=r"^\d+(m)?$")
    memory_quota: str = Field("128Gi", pattern=r"^\d+(Mi|Gi|Ti)$")


class LimitsConfig(_Model):
    """The environment's guard rails, enforced by validation and by the policy pack."""

    max_gpus_per_pool: int | None = Field(None, ge=1)
    allowed_gpu_instance_types: list[str] | None = None


class ImagesConfig(_Model):
    """The container images the platform runs."""

    training: str = "mlplat/training:0.1.0"
    serving: str = "mlplat/serving:0.1.0"


class MonitoringConfig(_Model):
    """Drift thresholds and the schedule of the drift monitor."""

    psi_threshold: float = Field(0.2, gt=0)
    p_value: float = Field(0.01, gt=0, lt=1)
    # Checked by components/drift.py's `problems` (which the component runs too): its form depends on the runner.
    schedule: str = "rate(1 day)"
    runner: Literal["kubernetes", "sagemaker"] = "sagemaker"
    # Fewer captured rows than this in the window give "not enough data" instead of a verdict.
    min_records: int = Field(50, ge=1)


class TrainingConfig(_Model):
    """How `mlplat train --on eks` watches a job: a rank that has not started within the timeout fails it."""

    schedule_timeout_seconds: int = Field(900, gt=0)


class StackConfig(_Model):
    """Everything a stack file says about the platform."""

    environment: Literal["dev", "staging", "prod"]
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    team: Name
    cost_center: str = Field(min_length=1)
    network: NetworkConfig = NetworkConfig.model_construct()
    artifacts: ArtifactsConfig = ArtifactsConfig.model_construct()
    tracking: TrackingConfig = TrackingConfig.model_construct()
    endpoints: list[EndpointConfig] = Field(default_factory=list)
    budget: BudgetConfig
    cluster: ClusterConfig | None = None
    gpu_pools: list[GpuPoolConfig] = Field(default_factory=list)
    teams: list[TeamConfig] = Field(default_factory=list)
    limits: LimitsConfig = LimitsConfig.model_construct()
    images: ImagesConfig = ImagesConfig()
    monitoring: MonitoringConfig = MonitoringConfig.model_construct()
    training: TrainingConfig = TrainingConfig.model_construct()

    @property
    def max_gpus_per_pool(self) -> int:
        """The environment's cap on one pool's GPUs at its maximum size."""
        return self.limits.max_gpus_per_pool or DEFAULT_MAX_GPUS_PER_POOL[self.environment]

    @property
    def allowed_gpu_instance_types(self) -> list[str]:
        """GPU instance types this environment may run."""
        return self.limits.allowed_gpu_instance_types or DEFAULT_ALLOWED_GPU_TYPES[self.environment]

    @property
    def tags(self) -> dict[str, str]:
        """The three stack tags every taggable resource carries."""
        return {
            "mlplat:environment": self.environment,
            "mlplat:team": self.team,
            "mlplat:cost-center": self.cost_center,
        }


def pool_instance_types(pool: GpuPoolConfig, allowed: Iterable[str]) -> list[str]:
    """The types a pool may launch: its named types, plus the allowed catalogued types of its families."""
    return catalog.pool_types(pool.instance_types, pool.instance_families, list(allowed))


def _duplicates(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dupes: list[str] = []
    for name in names:
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    return dupes


def _semantic_problems(cfg: StackConfig) -> list[Problem]:
    """Cross-field checks that the field types alone cannot express, and each component's own checks of its keys."""
    # The components import Pulumi's SDKs; only a validation pays for that, not every importer of this module.
    from components import cluster, drift, nodepool, team

    problems: list[Problem] = []
    add = problems.append
    for i, ep in enumerate(cfg.endpoints):
        if ep.max_capacity < ep.min_capacity:
            add(
                Problem(
                    f"mlplat:endpoints[{i}].maxCapacity",
                    f"must be >= minCapacity (got {ep.max_capacity} < {ep.min_capacity})",
                )
            )
    for name in _duplicates(ep.name for ep in cfg.endpoints):
        add(Problem("mlplat:endpoints", f"has duplicate name {name!r}"))
    for i, ep in enumerate(cfg.endpoints):
        if ep.platform == "kubernetes":
            problems += _cluster_endpoint_problems(f"mlplat:endpoints[{i}]", ep, cfg)
        else:
            problems += _sagemaker_only_keys(f"mlplat:endpoints[{i}]", ep)
            problems.extend(_hosting_mode_problems(f"mlplat:endpoints[{i}]", ep, cfg.region))
    artifacts = cfg.artifacts
    if artifacts.checkpoint_expiration_days <= artifacts.checkpoint_transition_days:
        # S3 rejects a lifecycle rule that expires objects on or before the day it transitions them.
        add(
            Problem(
                "mlplat:artifacts.checkpointExpirationDays",
                "must be > checkpointTransitionDays "
                f"(got {artifacts.checkpoint_expiration_days} <= {artifacts.checkpoint_transition_days})",
            )
        )
    if sorted(cfg.budget.thresholds) != cfg.budget.thresholds or _duplicates(str(t) for t in cfg.budget.thresholds):
        add(Problem("mlplat:budget.thresholds", f"must be strictly increasing (got {cfg.budget.thresholds})"))
    if cfg.gpu_pools and cfg.cluster is None:
        add(Problem("mlplat:gpuPools", "needs mlplat:cluster (GPU pools run on the EKS cluster)"))
    if cfg.gpu_pools and cfg.budget.enforces(cfg.environment) and cfg.network.nat == "none":
        # The enforcer joins the VPC to reach the private cluster API; SSM, SNS and Application Auto Scaling have
        # no VPC endpoints here, so it reaches them through NAT.
        add(
            Problem(
                "mlplat:network.nat",
                "must be single or per-az when the budget enforcer zeroes mlplat:gpuPools "
                "(it runs in the VPC and calls SSM, SNS and Application Auto Scaling) (got 'none')",
            )
        )
    if cfg.budget.split_cost_export and cfg.cluster is None:
        add(Problem("mlplat:budget.splitCostExport", "needs mlplat:cluster (split cost allocation covers EKS pods)"))
    if cfg.teams and cfg.cluster is None:
        add(Problem("mlplat:teams", "needs mlplat:cluster (team namespaces live on the EKS cluster)"))
    if cfg.cluster is not None:
        problems += cluster.problems(
            "mlplat:cluster",
            version=cfg.cluster.version,
            allow_extended_support=cfg.cluster.allow_extended_support,
            public_access_cidrs=cfg.cluster.public_access_cidrs,
            system_min_size=cfg.cluster.system_nodes.min_size,
            system_max_size=cfg.cluster.system_nodes.max_size,
            today=today(),
        )
    for i, pool in enumerate(cfg.gpu_pools):
        problems += nodepool.problems(
            f"mlplat:gpuPools[{i}]",
            pool,
            allowed=cfg.allowed_gpu_instance_types,
            environment=cfg.environment,
            max_gpus=cfg.max_gpus_per_pool,
        )
    for name in _duplicates(p.name for p in cfg.gpu_pools):
        add(Problem("mlplat:gpuPools", f"has duplicate name {name!r}"))
    supply = sum(p.gpu_limit for p in cfg.gpu_pools)
    for i, spec in enumerate(cfg.teams):
        problems += team.problems(f"mlplat:teams[{i}]", gpu_quota=spec.gpu_quota, gpu_supply=supply)
    for name in _duplicates(t.name for t in cfg.teams):
        add(Problem("mlplat:teams", f"has duplicate name {name!r}"))
    monitoring = cfg.monitoring
    problems += drift.problems(
        "mlplat:monitoring",
        schedule=monitoring.schedule,
        runner=monitoring.runner,
        psi_threshold=monitoring.psi_threshold,
        p_value=monitoring.p_value,
    )
    return problems


SYSTEM_POOL = "system"
"""The pool name of the cluster's system node group (CPU, untainted) for a Kubernetes endpoint."""


def _sagemaker_only_keys(key: str, ep: EndpointConfig) -> list[Problem]:
    autoscaling = ep.autoscaling.model_dump(by_alias=True) if ep.autoscaling is not None else None
    return [
        Problem(f"{key}.{field_name}", f"applies only to platform: kubernetes (got {value!r})")
        for field_name, value in (("pool", ep.pool), ("team", ep.team), ("autoscaling", autoscaling))
        if value is not None
    ]


def _cluster_endpoint_problems(key: str, ep: EndpointConfig, cfg: StackConfig) -> list[Problem]:
    problems: list[Problem] = []
    add = problems.append
    if ep.serverless is not None:
        add(Problem(f"{key}.serverless", "applies only to platform: sagemaker"))
    if ep.min_capacity == 0:
        # The autoscaler on CPU cannot wake a Deployment from zero pods; scale-to-zero is SageMaker's.
        add(Problem(f"{key}.minCapacity", "must be >= 1 on platform: kubernetes (got 0)"))
    if cfg.cluster is None:
        add(Problem(f"{key}.platform", "kubernetes needs mlplat:cluster (the endpoint runs on the EKS cluster)"))
    pools = [SYSTEM_POOL, *(p.name for p in cfg.gpu_pools)]
    if ep.pool is None:
        add(Problem(f"{key}.pool", f"is required for platform: kubernetes (one of {pools})"))
    elif ep.pool not in pools:
        add(Problem(f"{key}.pool", f"must be one of {pools} (got {ep.pool!r})"))
    teams = [t.name for t in cfg.teams]
    if ep.team is None:
        add(Problem(f"{key}.team", f"is required for platform: kubernetes (one of {teams})"))
    elif ep.team not in teams:
        add(Problem(f"{key}.team", f"must be one of {teams} (got {ep.team!r})"))
    scaling = ep.autoscaling
    if scaling is not None:
        from components.serving_deployment import scaling_problems

        problems += scaling_problems(
            f"{key}.autoscaling.metric", scaling.metric, f"{key}.autoscaling.target", scaling.target
        )
    return problems


def _hosting_mode_problems(key: str, ep: EndpointConfig, region: str) -> list[Problem]:
    """Scale-to-zero and serverless endpoints only where SageMaker offers them (the dated sagemaker_catalog)."""
    found: list[Problem] = []
    as_of = sagemaker_catalog.AS_OF.isoformat()
    if ep.serverless is not None:
        if ep.min_capacity == 0:
            found.append(
                Problem(f"{key}.serverless", "and minCapacity: 0 are exclusive (serverless scales to zero itself)")
            )
        if ep.data_capture_percent > 0:
            found.append(
                Problem(
                    f"{key}.dataCapturePercent",
                    f"must be 0 on a serverless endpoint (serverless inference has no data "
                    f"capture) (got {ep.data_capture_percent:g})",
                )
            )
        if region not in sagemaker_catalog.SERVERLESS_REGIONS:
            found.append(Problem(f"{key}.serverless", f"is not offered in {region} (serverless regions as of {as_of})"))
        return found
    if ep.min_capacity == 0:
        if not sagemaker_catalog.supports_inference_components(ep.instance_type):
            found.append(
                Problem(
                    f"{key}.minCapacity",
                    f": 0 needs inference components, which {ep.instance_type} does not support "
                    f"(families as of {as_of}: ml.c5, ml.m5, ml.g5, ...) (got instanceType {ep.instance_type!r})",
                )
            )
        if region not in sagemaker_catalog.INFERENCE_COMPONENT_REGIONS:
            found.append(
                Problem(
                    f"{key}.minCapacity",
                    f": 0 needs inference components, which {region} does not offer (regions as of {as_of})",
                )
            )
    return found


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = f"{NAMESPACE}:{loc[0]}" if loc else NAMESPACE
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: Mapping[str, Any]) -> Problem:
    path = _key_path(tuple(error["loc"]))
    if path == f"{NAMESPACE}:region":
        path = "aws:region"
    kind = error["type"]
    if kind == "missing":
        return Problem(path, "is required")
    if kind == "extra_forbidden":
        loc = tuple(error["loc"])
        if loc[0] == "gpuPools" and str(loc[-1]) in RETIRED_POOL_KEYS:
            return Problem(path, f"is replaced by {RETIRED_POOL_KEYS[str(loc[-1])]}")
        return Problem(path, "is not a known key")
    message = str(error["msg"]).replace("Input should be", "must be").replace("String should", "must")
    message = message.replace("List should", "must").replace("Value error, ", "")
    return Problem(path, f"{message} (got {error['input']!r})")


def validate(raw: Mapping[str, Any], source: str) -> StackConfig:
    """Validate raw config (keys without the `mlplat:` prefix, plus `region`) or raise ConfigError."""
    try:
        cfg = StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        problems += _problems_beyond(raw, exc, problems)
        raise ConfigError([f"{source}: {p}" for p in problems]) from None
    problems = _semantic_problems(cfg) + aws_enums.problems(cfg)
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    return cfg


def _problems_beyond(raw: Mapping[str, Any], exc: ValidationError, reported: list[Problem]) -> list[Problem]:
    """The cross-field problems too, so every problem is reported at once: drop each key that failed its type
    (its default stands in) and check the rest; a problem about a dropped key is not repeated."""
    import copy

    trimmed: Any = copy.deepcopy(dict(raw))
    errors = exc.errors()
    for _ in range(3):  # a dropped key can expose a required one beneath it; give up rather than guess
        for error in errors:
            loc = tuple(error["loc"])
            if error["type"] == "missing" or not loc:
                return []
            parent = trimmed
            try:
                for part in loc[:-1]:
                    parent = parent[part]
            except (KeyError, IndexError, TypeError):  # a loc through a union member's tag: no key to drop
                return []
            if isinstance(parent, dict):
                parent.pop(loc[-1], None)
        try:
            cfg = StackConfig.model_validate(trimmed)
        except ValidationError as again:
            errors = again.errors()
            continue
        dropped = [_key_path(tuple(e["loc"])) for e in exc.errors()]
        beyond = _semantic_problems(cfg) + aws_enums.problems(cfg)
        return [p for p in beyond if not any(p.key.startswith(d) for d in dropped) and p not in reported]
    return []


def raw_from_stack_yaml(document: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Take the `mlplat:*` keys (and `aws:region`) out of a parsed `Pulumi.<stack>.yaml`."""
    config = document.get("config") or {}
    if not isinstance(config, Mapping):
        raise ConfigError([f"{source}: config must be a mapping of keys to values"])
    raw: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace == NAMESPACE:
            raw[name] = value
        elif key == "aws:region":
            raw["region"] = value
    return raw


def stack_file(stack: str) -> Path:
    """`stacks/Pulumi.<stack>.yaml` of this project."""
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


def display_path(path: Path) -> str:
    """A path as the user should read it: relative to the project when inside it."""
    try:
        return str(path.resolve().relative_to(STACKS_DIR.parent))
    except ValueError:
        return str(path)


def load_stack_file(path: Path) -> StackConfig:
    """Read and validate a stack file, as the offline tools do."""
    source = display_path(path)
    if not path.is_file():
        raise ConfigError([f"{source}: no such stack file"])
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML ({_first_line(str(exc))})"]) from None
    if not isinstance(document, Mapping):
        raise ConfigError([f"{source}: must be a YAML mapping with a config: block"])
    return validate(raw_from_stack_yaml(document, source), source)


def load_stack(stack: str) -> StackConfig:
    """Validate a shipped stack by name (`dev`, `staging`, `prod`, or any `stacks/Pulumi.<name>.yaml`)."""
    return load_stack_file(stack_file(stack))


def load_from_pulumi() -> StackConfig:
    """Validate the running program's config; raises ConfigError before any resource exists."""
    import pulumi

    cfg = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for field_name, field in StackConfig.model_fields.items():
        key = field.alias or field_name
        text = cfg.get(key)
        # Scalar string keys arrive as they are; objects and lists arrive as JSON.
        value = text if _is_text(field.annotation) else _engine_value(text)
        if value is not None:
            raw[key] = value
    # Any mlplat:* key the model does not know is an error, as it is offline.
    for full_key in pulumi.runtime.get_config_env():
        namespace, _, name = full_key.partition(":")
        if namespace == NAMESPACE and name not in raw and name not in _aliases():
            raw[name] = _engine_value(pulumi.runtime.get_config(full_key))
    region = pulumi.Config("aws").get("region")
    if region is not None:
        raw["region"] = region
    return validate(raw, display_path(stack_file(pulumi.get_stack())))


def _is_text(annotation: Any) -> bool:
    return annotation is str or (
        get_origin(annotation) is Literal and all(isinstance(a, str) for a in get_args(annotation))
    )


def _engine_value(text: Any) -> Any:
    """A config value as the engine passes it: objects, lists, numbers and booleans as JSON, plain strings as is."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _aliases() -> set[str]:
    return {f.alias or n for n, f in StackConfig.model_fields.items()}


def _first_line(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().splitlines()[0]) if text.strip() else "parse error"
