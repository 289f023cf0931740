"""Pricing of cluster-served endpoints: the pod's share of one node of its pool, min replicas idle, max at peak."""

from datetime import date
from typing import Any

import pytest

from components.nodepool import PoolSpec, render_node_pool
from components.serving_deployment import ServingSpec, render_serving_deployment
from mlplat import synth
from mlplat.cost.estimate import estimate
from mlplat.cost.model import CostLine, Estimate
from mlplat.cost.prices import default_table

STACK = "urn:pulumi:staging::mlplat::pulumi:pulumi:Stack::mlplat-staging"
SERVING = f"{STACK}$mlplat:serving_deployment:ServingDeployment::abalone"
TODAY = date(2026, 12, 6)
H = 730
M6I_LARGE, G5_XLARGE = 0.096, 1.006  # the shipped table's us-east-1 rows
SPEC = ServingSpec("abalone", "applied", "mlplat/serving:0.1.0", "models:/abalone/1", "arn", 2, 5, cpu="500m")
SYSTEM_NODES = synth.ResourceRecord(
    f"{STACK}$aws:eks/nodeGroup:NodeGroup::system",
    "aws:eks/nodeGroup:NodeGroup",
    "system",
    STACK,
    True,
    {"instanceTypes": ["m6i.large"], "capacityType": "ON_DEMAND", "scalingConfig": {"minSize": 2, "maxSize": 3}},
)


def _record(manifest: dict[str, Any], parent: str = SERVING) -> synth.ResourceRecord:
    type_ = f"kubernetes:{manifest['apiVersion']}:{manifest['kind']}"
    name = f"{manifest['kind'].lower()}-{manifest['metadata']['name']}"
    return synth.ResourceRecord(f"{parent}${type_}::{name}", type_, name, parent, True, manifest)


def _estimate(spec: ServingSpec, *others: synth.ResourceRecord) -> Estimate:
    component = synth.ResourceRecord(SERVING, SERVING.rsplit("$", 1)[1].split("::")[0], "abalone", STACK, False, {})
    resources = [*others, component, *(_record(m) for m in render_serving_deployment(spec))]
    config = {"environment": "staging", "region": "us-east-1", "budget": {"limitUsd": 1e6}}
    plan = synth.PlanRecord("staging", "tests/test_cost_cluster_serving.py", config, resources, {}, STACK)
    return estimate(plan, default_table(), TODAY)


def _serving_lines(spec: ServingSpec, *others: synth.ResourceRecord) -> list[CostLine]:
    return [line for line in _estimate(spec, *others).lines if line.item.startswith("deployment-")]


def test_a_cpu_endpoint_costs_its_cpu_share_of_a_system_node_per_replica_min_idle_max_at_peak() -> None:
    (line,) = _serving_lines(SPEC, SYSTEM_NODES)
    assert (line.component, line.sku, line.description) == (
        "serving_deployment",
        "ec2:m6i.large",
        "0.5 vCPU of m6i.large (0.25 node) x2..5 pods",
    )
    assert line.idle_usd == pytest.approx(2 * 0.25 * M6I_LARGE * H)
    assert line.peak_usd == pytest.approx(5 * 0.25 * M6I_LARGE * H)


def test_a_gpu_endpoint_costs_its_gpu_share_of_the_pools_dearest_node_per_replica() -> None:
    pool = render_node_pool(PoolSpec("eval", ("g5.xlarge",), 2))
    spec = ServingSpec("abalone", "applied", "img", "models:/abalone/1", "arn", 1, 2, gpus=1, pool="eval")
    (line,) = _serving_lines(spec, _record(pool, STACK))
    assert (line.sku, line.description) == ("ec2:g5.xlarge", "1 GPU of g5.xlarge (1 node) x1..2 pods")
    assert (line.idle_usd, line.peak_usd) == pytest.approx((1 * G5_XLARGE * H, 2 * G5_XLARGE * H))


def test_an_endpoint_whose_pool_has_no_priced_node_is_reported_missing_not_guessed() -> None:
    result = _estimate(SPEC)
    assert [line for line in result.lines if line.item.startswith("deployment-")] == []
    assert result.warnings == ("serving Deployment deployment-abalone runs on no priced node type; counted as $0",)
