"""Validation in one place: every component's checks run from the stack file with its key paths, all at once, and a
program that builds a component itself gets the same message from the component's constructor."""

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from components import config
from components.cluster import GpuCluster, GpuClusterArgs
from components.drift import DriftMonitor, DriftMonitorArgs, KubernetesRunner
from components.nodepool import GpuNodePool, GpuNodePoolArgs, PoolSpec
from components.problems import InvalidArgs
from components.team import TeamNamespace, TeamNamespaceArgs, TeamSpec

SOURCE = "stacks/Pulumi.prod.yaml"


@pytest.fixture
def raw() -> dict[str, Any]:
    """The shipped prod stack's config, as `validate` takes it."""
    document = yaml.safe_load(config.stack_file("prod").read_text())
    return copy.deepcopy(config.raw_from_stack_yaml(document, SOURCE))


def _config_problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as caught:
        config.validate(raw, SOURCE)
    return caught.value.problems


def test_bad_keys_of_five_components_are_all_reported_at_once(raw: dict[str, Any]) -> None:
    raw["endpoints"][0]["minCapacity"] = 3
    raw["endpoints"][0]["maxCapacity"] = 2
    raw["cluster"]["publicAccessCidrs"] = ["0.0.0.0/0"]
    raw["gpuPools"][0]["instanceTypes"] = ["m5.xlarge"]
    raw["teams"][0]["gpuQuota"] = 999
    raw["monitoring"]["runner"] = "kubernetes"
    raw["monitoring"]["schedule"] = "cron(0 8 L * ? *)"
    assert _config_problems(raw) == [
        f"{SOURCE}: mlplat:endpoints[0].maxCapacity must be >= minCapacity (got 2 < 3)",
        f"{SOURCE}: mlplat:cluster.publicAccessCidrs[0] must not open the API to the internet (got '0.0.0.0/0')",
        f"{SOURCE}: mlplat:gpuPools[0].instanceTypes[0] is not a GPU instance type (got 'm5.xlarge')",
        f"{SOURCE}: mlplat:teams[0].gpuQuota is more than the GPU pools can ever supply (got 999 > 28)",
        f"{SOURCE}: mlplat:monitoring.schedule must not use L, W or # on runner kubernetes (Kubernetes cron has none) "
        "(got 'cron(0 8 L * ? *)')",
    ]


def test_a_type_error_and_a_component_check_are_reported_together(raw: dict[str, Any]) -> None:
    raw["network"]["azCount"] = 9
    raw["gpuPools"][1]["capacityTypes"] = ["on-demand", "spot"]
    assert _config_problems(raw) == [
        f"{SOURCE}: mlplat:network.azCount must be less than or equal to 3 (got 9)",
        f"{SOURCE}: mlplat:gpuPools[1].capacityTypes must follow Karpenter's order reserved, spot, on-demand "
        "(got ['on-demand', 'spot'])",
    ]


def _pool(**spec: Any) -> None:
    settings: dict[str, Any] = {"name": "p", "instance_types": ("g5.xlarge",), "gpu_limit": 4, **spec}
    GpuNodePool("p", GpuNodePoolArgs(PoolSpec(**settings), None, "c", "p"))  # type: ignore[arg-type]


def _cluster(**overrides: Any) -> None:
    GpuCluster("c", GpuClusterArgs(subnet_ids=["subnet-a"], region="us-east-1", **overrides))


def _team(gpu_quota: int) -> None:
    TeamNamespace("t", TeamNamespaceArgs(TeamSpec("research", gpu_quota), None, "arn", "https://oidc", []))  # type: ignore[arg-type]


def _monitor(**overrides: Any) -> None:
    runner = KubernetesRunner(namespace="research", oidc_provider_arn="arn", oidc_issuer="https://oidc")
    settings: dict[str, Any] = {"runner": "kubernetes", "kubernetes": runner, **overrides}
    DriftMonitor("m", DriftMonitorArgs("e", "m", 1, "us-east-1", None, "arn", "app", "img", **settings))  # type: ignore[arg-type]


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        target = raw
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return apply


@pytest.mark.parametrize(
    ("stack_change", "stack_key", "build", "component", "message"),
    [
        (
            _set(("gpuPools", 0, "gpuLimit"), 0),
            "mlplat:gpuPools[0].gpuLimit",
            lambda: _pool(gpu_limit=0),
            "GpuNodePool p: gpuLimit",
            "must be greater than or equal to 1 (got 0)",
        ),
        (
            _set(("gpuPools", 0, "instanceTypes"), ["m5.xlarge"]),
            "mlplat:gpuPools[0].instanceTypes[0]",
            lambda: _pool(instance_types=("m5.xlarge",)),
            "GpuNodePool p: instanceTypes[0]",
            "is not a GPU instance type (got 'm5.xlarge')",
        ),
        (
            _set(("gpuPools", 0, "amiFamily"), "Ubuntu"),
            "mlplat:gpuPools[0].amiFamily",
            lambda: _pool(ami_family="Ubuntu"),
            "GpuNodePool p: amiFamily",
            "must be 'AL2023' or 'Bottlerocket' (got 'Ubuntu')",
        ),
        (
            _set(("cluster", "publicAccessCidrs"), ["::/0"]),
            "mlplat:cluster.publicAccessCidrs[0]",
            lambda: _cluster(public_access_cidrs=("::/0",)),
            "GpuCluster c: publicAccessCidrs[0]",
            "must not open the API to the internet (got '::/0')",
        ),
        (
            _set(("cluster", "systemNodes", "maxSize"), 1),
            "mlplat:cluster.systemNodes.maxSize",
            lambda: _cluster(system_min_size=2, system_max_size=1),
            "GpuCluster c: systemNodes.maxSize",
            "must be >= minSize (got 1 < 2)",
        ),
        (
            _set(("teams", 0, "gpuQuota"), -1),
            "mlplat:teams[0].gpuQuota",
            lambda: _team(-1),
            "TeamNamespace t: gpuQuota",
            "must be greater than or equal to 0 (got -1)",
        ),
        (
            _set(("monitoring", "psiThreshold"), 0),
            "mlplat:monitoring.psiThreshold",
            lambda: _monitor(psi_threshold=0),
            "DriftMonitor m: psiThreshold",
            "must be greater than 0 (got 0)",
        ),
        (
            _set(("monitoring", "pValue"), 1),
            "mlplat:monitoring.pValue",
            lambda: _monitor(p_value=1),
            "DriftMonitor m: pValue",
            "must be less than 1 (got 1)",
        ),
        (
            _set(("monitoring", "schedule"), "every day"),
            "mlplat:monitoring.schedule",
            lambda: _monitor(
                runner="sagemaker", subnet_ids=["s"], security_group_ids=["g"], vpc_arn="v", schedule="every day"
            ),
            "DriftMonitor m: schedule",
            "must be rate(N minutes|hours|days) or cron(...) (got 'every day')",
        ),
    ],
)
def test_the_stack_file_and_the_component_report_a_problem_in_the_same_words(
    raw: dict[str, Any],
    stack_change: Callable[[dict[str, Any]], None],
    stack_key: str,
    build: Callable[[], None],
    component: str,
    message: str,
) -> None:
    stack_change(raw)
    with pytest.raises(InvalidArgs) as raised:
        build()
    assert (_config_problems(raw), str(raised.value)) == (
        [f"{SOURCE}: {stack_key} {message}"],
        f"{component} {message}",
    )


def test_a_schedule_kubernetes_cannot_run_is_refused_by_the_stack_file_before_any_resource(
    raw: dict[str, Any],
) -> None:
    raw["monitoring"]["runner"] = "kubernetes"
    raw["monitoring"]["schedule"] = "cron(0 8 ? * MON-FRI)"
    assert _config_problems(raw) == [
        f"{SOURCE}: mlplat:monitoring.schedule must have the six fields of an EventBridge cron "
        "(got 'cron(0 8 ? * MON-FRI)')"
    ]
