"""Stack endpoints served on the EKS cluster (`platform: kubernetes`): pool, team and cluster checked together."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, load_stack, load_stack_file

REPO = Path(__file__).resolve().parents[1]


def _staging_with(tmp_path: Path, endpoint: dict[str, Any], drop: tuple[str, ...] = ()) -> Path:
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.staging.yaml").read_text())
    config = document["config"]
    config["mlplat:endpoints"] = [{"name": "abalone-eks", "model": "abalone", **endpoint}]
    for key in drop:
        config.pop(key)
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stack_file(path)
    return [p.removeprefix(f"{path}: ") for p in caught.value.problems]


def test_an_endpoint_runs_on_sagemaker_unless_it_says_otherwise() -> None:
    platforms = {e.name: e.platform for e in load_stack("prod").endpoints}
    assert set(platforms.values()) == {"sagemaker"}


def test_the_shipped_staging_stack_serves_one_endpoint_on_the_system_nodes() -> None:
    served = [(e.name, e.pool, e.team) for e in load_stack("staging").endpoints if e.platform == "kubernetes"]
    assert served == [("abalone-eks", "system", "applied")]


def test_a_gpu_pool_of_the_stack_is_a_valid_pool(tmp_path: Path) -> None:
    path = _staging_with(tmp_path, {"platform": "kubernetes", "pool": "eval", "team": "research"})
    assert load_stack_file(path).endpoints[0].pool == "eval"


def test_an_unknown_pool_and_team_are_both_reported_with_the_choices(tmp_path: Path) -> None:
    path = _staging_with(tmp_path, {"platform": "kubernetes", "pool": "cpu", "team": "sales"})
    assert _problems(path) == [
        "mlplat:endpoints[0].pool must be one of ['system', 'train-spot', 'eval'] (got 'cpu')",
        "mlplat:endpoints[0].team must be one of ['research', 'applied'] (got 'sales')",
    ]


def test_a_kubernetes_endpoint_without_pool_or_team_names_both_keys(tmp_path: Path) -> None:
    path = _staging_with(tmp_path, {"platform": "kubernetes"})
    assert _problems(path) == [
        "mlplat:endpoints[0].pool is required for platform: kubernetes (one of ['system', 'train-spot', 'eval'])",
        "mlplat:endpoints[0].team is required for platform: kubernetes (one of ['research', 'applied'])",
    ]


def test_a_kubernetes_endpoint_on_a_stack_without_a_cluster_is_refused(tmp_path: Path) -> None:
    path = _staging_with(
        tmp_path,
        {"platform": "kubernetes", "pool": "system", "team": "applied"},
        drop=("mlplat:cluster", "mlplat:gpuPools", "mlplat:teams"),
    )
    assert _problems(path) == [
        "mlplat:endpoints[0].platform kubernetes needs mlplat:cluster (the endpoint runs on the EKS cluster)",
        "mlplat:endpoints[0].team must be one of [] (got 'applied')",
    ]


def test_pool_and_team_on_a_sagemaker_endpoint_are_refused(tmp_path: Path) -> None:
    path = _staging_with(tmp_path, {"pool": "system", "team": "applied"})
    assert _problems(path) == [
        "mlplat:endpoints[0].pool applies only to platform: kubernetes (got 'system')",
        "mlplat:endpoints[0].team applies only to platform: kubernetes (got 'applied')",
    ]


def test_an_unknown_platform_names_the_choices(tmp_path: Path) -> None:
    path = _staging_with(tmp_path, {"platform": "ecs"})
    assert _problems(path) == ["mlplat:endpoints[0].platform must be 'sagemaker' or 'kubernetes' (got 'ecs')"]


def test_a_cluster_endpoint_problem_is_reported_with_a_field_error_elsewhere(tmp_path: Path) -> None:
    path = _staging_with(tmp_path, {"platform": "kubernetes", "pool": "cpu", "team": "applied", "maxCapacity": 0})
    assert _problems(path) == [
        "mlplat:endpoints[0].maxCapacity must be greater than or equal to 1 (got 0)",
        "mlplat:endpoints[0].pool must be one of ['system', 'train-spot', 'eval'] (got 'cpu')",
    ]


def test_scale_to_zero_and_serverless_are_refused_on_the_cluster(tmp_path: Path) -> None:
    endpoint = {
        "platform": "kubernetes",
        "pool": "system",
        "team": "applied",
        "minCapacity": 0,
        "serverless": {"memoryMiB": 2048, "maxConcurrency": 5},
    }
    path = _staging_with(tmp_path, endpoint)
    assert _problems(path) == [
        "mlplat:endpoints[0].serverless applies only to platform: sagemaker",
        "mlplat:endpoints[0].minCapacity must be >= 1 on platform: kubernetes (got 0)",
    ]


def test_the_shipped_staging_endpoint_scales_on_eight_in_flight_requests_per_pod() -> None:
    (endpoint,) = [e for e in load_stack("staging").endpoints if e.platform == "kubernetes"]
    assert endpoint.autoscaling is not None
    assert (endpoint.autoscaling.metric, endpoint.autoscaling.target) == ("inflight", 8)


@pytest.mark.parametrize(
    ("metric", "target", "highest"), [("inflight", 64, 63), ("inflight", 0, 63), ("cpu", 101, 100), ("cpu", 0, 100)]
)
def test_an_autoscaling_target_outside_its_metrics_bounds_names_the_key(
    tmp_path: Path, metric: str, target: int, highest: int
) -> None:
    scaling = {"metric": metric, "target": target}
    path = _staging_with(
        tmp_path, {"platform": "kubernetes", "pool": "system", "team": "applied", "autoscaling": scaling}
    )
    assert _problems(path) == [
        f"mlplat:endpoints[0].autoscaling.target must be within 1..{highest} for metric {metric} (got {target})"
    ]


def test_an_unknown_autoscaling_metric_names_the_key_and_the_choices(tmp_path: Path) -> None:
    scaling = {"metric": "memory", "target": 5}
    path = _staging_with(
        tmp_path, {"platform": "kubernetes", "pool": "system", "team": "applied", "autoscaling": scaling}
    )
    assert _problems(path) == ["mlplat:endpoints[0].autoscaling.metric must be 'cpu' or 'inflight' (got 'memory')"]


def test_autoscaling_on_a_sagemaker_endpoint_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = _staging_with(tmp_path, {"autoscaling": {"metric": "cpu", "target": 50}})
    assert _problems(path) == [
        "mlplat:endpoints[0].autoscaling applies only to platform: kubernetes (got {'metric': 'cpu', 'target': 50})"
    ]
