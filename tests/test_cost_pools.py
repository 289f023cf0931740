"""Pricing of Karpenter GPU pools and of the EKS extended-support hour: pools cost nothing idle, their peak is the GPU
limit times the dearest allowed type per GPU, and a pool that may take spot is priced as a range."""

from datetime import date
from typing import Any

import pytest

from components.nodepool import PoolSpec, render_node_class, render_node_pool
from mlplat import synth
from mlplat.cost.estimate import estimate
from mlplat.cost.model import CostLine

STACK = "urn:pulumi:prod::mlplat::pulumi:pulumi:Stack::mlplat-prod"
POOL = f"{STACK}$mlplat:nodepool:GpuNodePool::train"
TODAY = date(2026, 12, 6)
H = 730
G5_12X, G5_2X, SPOT = 5.672, 1.212, 0.4  # the shipped table's us-east-1 rows


def _plan(*resources: synth.ResourceRecord) -> synth.PlanRecord:
    config = {"environment": "prod", "region": "us-east-1", "budget": {"limitUsd": 1e6}}
    return synth.PlanRecord("prod", "tests/test_cost_pools.py", config, list(resources), {}, STACK)


def _record(manifest: dict[str, Any], name: str) -> synth.ResourceRecord:
    type_ = f"kubernetes:{manifest['apiVersion']}:{manifest['kind']}"
    return synth.ResourceRecord(f"{POOL}${type_}::{name}", type_, name, POOL, True, manifest)


def _pool_lines(spec: PoolSpec) -> list[CostLine]:
    resources = [
        _record(render_node_pool(spec), "pool"),
        _record(render_node_class(spec, "cluster", "profile", {}), "class"),
    ]
    return list(estimate(_plan(*resources), today=TODAY).lines)


def test_a_pool_costs_nothing_idle_and_its_gpu_limit_of_the_dearest_type_per_gpu_at_peak() -> None:
    gpus, _ = _pool_lines(PoolSpec("train", ("g5.2xlarge", "g5.12xlarge"), 8, disk_size_gib=500))
    assert (gpus.unit, gpus.idle_usd, gpus.peak_low_unit_price) == ("GPU-hour", 0.0, None)
    # Per GPU: g5.2xlarge 1.212, g5.12xlarge 5.672 / 4 = 1.418, so the dearest allowed is g5.12xlarge.
    assert gpus.sku == "ec2:g5.12xlarge"
    assert gpus.peak_usd == pytest.approx(8 * G5_12X / 4 * H)


def test_a_pool_that_may_take_spot_is_a_range_from_all_spot_to_all_on_demand() -> None:
    [gpus, _] = _pool_lines(PoolSpec("train", ("g5.12xlarge",), 16, ("spot", "on-demand")))
    assert gpus.peak_usd == pytest.approx(16 * G5_12X / 4 * H)
    assert gpus.peak_low_usd == pytest.approx(16 * G5_12X / 4 * SPOT * H)
    assert gpus.to_json()["peakLowUsd"] == round(16 * G5_12X / 4 * SPOT * H, 2)


def test_a_spot_only_pool_peaks_at_the_spot_price() -> None:
    [gpus, _] = _pool_lines(PoolSpec("sweep", ("g5.2xlarge",), 4, ("spot",)))
    assert gpus.peak_usd == pytest.approx(4 * G5_2X * SPOT * H)
    assert gpus.peak_low_unit_price is None


def test_a_pools_volumes_cost_nothing_idle_and_scale_with_its_most_nodes_at_peak() -> None:
    [_, volumes] = _pool_lines(PoolSpec("train", ("g5.2xlarge", "g5.12xlarge"), 8, disk_size_gib=500))
    assert (volumes.sku, volumes.idle_quantity, volumes.peak_quantity) == ("ebs:gp3", 0, 8 * 500)


def _cluster(version: str, support: str) -> synth.ResourceRecord:
    inputs = {"version": version, "upgradePolicy": {"supportType": support}}
    return synth.ResourceRecord(
        f"{STACK}$aws:eks/cluster:Cluster::eks", "aws:eks/cluster:Cluster", "eks", STACK, True, inputs
    )


def test_a_cluster_kept_past_standard_support_is_priced_at_the_extended_support_hour() -> None:
    [line] = estimate(_plan(_cluster("1.33", "EXTENDED")), today=TODAY).lines
    assert (line.sku, line.description, line.peak_usd) == (
        "eks:cluster-extended-support",
        "EKS control plane (1.33, extended support)",
        pytest.approx(0.60 * H),
    )


def test_a_current_cluster_is_priced_at_the_standard_hour_even_when_extended_is_allowed() -> None:
    [line] = estimate(_plan(_cluster("1.35", "EXTENDED")), today=TODAY).lines
    assert (line.sku, line.peak_usd) == ("eks:cluster", pytest.approx(0.10 * H))


def test_prod_prices_each_of_its_three_pools_at_zero_idle() -> None:
    result = estimate(synth.synthesize_stack("prod"), today=TODAY)
    pools = {line.item.rsplit("-nodepool-", 1)[1]: line for line in result.lines if line.unit == "GPU-hour"}
    assert {name: (line.idle_usd, round(line.peak_usd, 2)) for name, line in pools.items()} == {
        "train-spot": (0.0, round(16 * G5_12X / 4 * H, 2)),
        "train-ondemand": (0.0, round(8 * 21.96 / 8 * H, 2)),
        "batch-infer": (0.0, round(4 * 0.8048 * H, 2)),
    }
    assert round(pools["train-spot"].peak_low_usd, 2) == round(16 * G5_12X / 4 * SPOT * H, 2)
