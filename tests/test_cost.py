"""The cost estimator: a hand-made staging plan priced by hand, staleness warnings, and the shipped price table."""

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from components import catalog
from components.config import DEFAULT_ALLOWED_GPU_TYPES, ENVIRONMENTS, load_stack
from mlplat import synth
from mlplat.cost import prices
from mlplat.cost.estimate import estimate

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TABLE = prices.load(FIXTURES / "prices.json")
TODAY = date(2026, 11, 1)
STACK = "urn:pulumi:staging::mlplat::pulumi:pulumi:Stack::mlplat-staging"
H = 730  # hours in a month


def r(type_: str, name: str, inputs: dict[str, Any], parent: str = STACK, custom: bool = True) -> synth.ResourceRecord:
    return synth.ResourceRecord(f"{parent}${type_}::{name}", type_, name, parent, custom, inputs)


CLUSTER = f"{STACK}$mlplat:cluster:GpuCluster::cluster"
POOL = f"{STACK}$mlplat:nodepool:GpuNodePool::train"
ENDPOINT = f"{STACK}$mlplat:endpoint:InferenceEndpoint::abalone"
NETWORK = f"{STACK}$mlplat:network:Network::net"
LT = "aws:ec2/launchTemplate:LaunchTemplate"


def volume(gib: int) -> dict[str, Any]:
    return {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": gib, "encrypted": "true"}}]}


PLAN = synth.PlanRecord(
    stack="staging",
    stack_file="tests/test_cost.py",
    config={"environment": "staging", "region": "us-west-2", "budget": {"limitUsd": 8000}},
    outputs={},
    stack_urn=STACK,
    resources=[
        r("mlplat:cluster:GpuCluster", "cluster", {}, custom=False),
        r("aws:eks/cluster:Cluster", "eks", {"version": "1.33"}, parent=CLUSTER),
        r(LT, "system-lt", volume(50), parent=CLUSTER),
        r(
            "aws:eks/nodeGroup:NodeGroup",
            "system",
            {
                "instanceTypes": ["m6i.large"],
                "capacityType": "ON_DEMAND",
                "scalingConfig": {"minSize": 2, "maxSize": 3},
            },
            parent=CLUSTER,
        ),
        r("mlplat:nodepool:GpuNodePool", "train", {}, custom=False),
        r(LT, "train-lt", volume(200), parent=POOL),
        r(
            "aws:eks/nodeGroup:NodeGroup",
            "train",
            {
                "instanceTypes": ["g5.2xlarge", "g6.2xlarge"],
                "capacityType": "SPOT",
                "scalingConfig": {"minSize": 0, "maxSize": 4},
            },
            parent=POOL,
        ),
        r("mlplat:network:Network", "net", {}, custom=False),
        r("aws:ec2/natGateway:NatGateway", "nat", {}, parent=NETWORK),
        r("aws:ec2/eip:Eip", "nat-ip", {"domain": "vpc"}, parent=NETWORK),
        r("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"}, parent=NETWORK),
        r(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "sts",
            {
                "vpcEndpointType": "Interface",
                "serviceName": "com.amazonaws.us-west-2.sts",
                "subnetIds": ["a", "b", "c"],
            },
            parent=NETWORK,
        ),
        r("aws:kms/key:Key", "flow-key", {}, parent=NETWORK),
        r("aws:cloudwatch/logGroup:LogGroup", "flow-logs", {"retentionInDays": 90}, parent=NETWORK),
        r("mlplat:endpoint:InferenceEndpoint", "abalone", {}, custom=False),
        r(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "abalone-config",
            {
                "productionVariants": [
                    {"variantName": "champion", "instanceType": "ml.c5.xlarge", "initialInstanceCount": 1}
                ]
            },
            parent=ENDPOINT,
        ),
        r(
            "aws:appautoscaling/target:Target",
            "abalone-scaling",
            {
                "serviceNamespace": "sagemaker",
                "resourceId": "endpoint/abalone/variant/champion",
                "minCapacity": 1,
                "maxCapacity": 4,
            },
            parent=ENDPOINT,
        ),
        r("aws:sagemaker/mlflowApp:MlflowApp", "tracking", {"tags": {"mlplat:component": "tracking"}}),
        r("aws:s3/bucket:Bucket", "artifacts", {"tags": {"mlplat:component": "artifacts"}}),
        r("aws:kms/key:Key", "artifacts-key", {"tags": {"mlplat:component": "artifacts"}}),
    ],
)


def test_idle_and_peak_totals_of_the_fixture_stack_match_the_hand_computed_values() -> None:
    result = estimate(PLAN, TABLE, TODAY)
    fixed = (
        0.1 * H  # EKS control plane
        + 0.05 * H
        + 100 * 0.05  # NAT gateway hours + 100 GB processed
        + 0.01 * H  # its public IPv4 address
        + 3 * 0.01 * H  # one interface endpoint in three AZs (the gateway endpoint is free)
        + 2 * 1.0  # two KMS keys
        + 500 * 0.02  # 500 GB in S3 (staging assumption)
        + 10 * 0.5
        + 10 * 3 * 0.03  # 10 GB logs ingested, kept 90 days = 30 GB stored
    )
    idle = fixed + 2 * 0.1 * H + 2 * 50 * 0.1 + 1 * 0.2 * H  # system pool at 2, no GPU nodes, endpoint at 1
    # system pool at 3; GPU pool at 4 of its dearest type (g5.2xlarge) at half price on spot; endpoint at 4
    peak = fixed + 3 * 0.1 * H + 3 * 50 * 0.1 + 4 * 1.0 * 0.5 * H + 4 * 200 * 0.1 + 4 * 0.2 * H
    assert result.idle_total == pytest.approx(idle)
    assert result.peak_total == pytest.approx(peak)
    assert round(result.idle_total, 2) == 463.6
    assert round(result.peak_total, 2) == 2519.6


def test_the_breakdown_is_per_component_with_the_dearest_at_peak_first() -> None:
    result = estimate(PLAN, TABLE, TODAY)
    assert [(c, round(i, 2), round(p, 2)) for c, i, p in result.components()] == [
        ("nodepool", 0.0, 1540.0),
        ("endpoint", 146.0, 584.0),
        ("cluster", 229.0, 307.0),
        ("network", 77.6, 77.6),
        ("artifacts", 11.0, 11.0),
        ("tracking", 0.0, 0.0),
    ]


def test_the_report_says_whether_peak_fits_the_budget() -> None:
    doc = estimate(PLAN, TABLE, TODAY).to_json()
    assert (doc["idleMonthlyUsd"], doc["peakMonthlyUsd"], doc["budgetUsd"], doc["withinBudget"]) == (
        463.6,
        2519.6,
        8000.0,
        True,
    )


def test_a_price_older_than_ninety_days_is_warned_about() -> None:
    # logs:storage was checked on 2026-07-01; on 2026-11-01 that is 123 days ago.
    assert estimate(PLAN, TABLE, TODAY).warnings == (
        "price of logs:storage in us-west-2 is 123 days old (as of 2026-07-01, limit 90); re-check test and update "
        "tests/fixtures/prices.json",
    )


def test_no_warning_while_every_used_price_is_fresh() -> None:
    assert estimate(PLAN, TABLE, date(2026, 9, 28)).warnings == ()


def test_every_price_goes_stale_once_the_limit_passes() -> None:
    # Every row of the fixture table is used by the fixture plan (g6.2xlarge too: it is priced to pick the dearest).
    assert len(estimate(PLAN, TABLE, date(2027, 6, 1)).warnings) == len(TABLE.rows)


def test_a_missing_price_is_warned_about_and_counted_as_zero() -> None:
    plan = synth.PlanRecord(
        stack="staging",
        stack_file="x",
        config=PLAN.config,
        outputs={},
        stack_urn=STACK,
        resources=[
            r(
                "aws:eks/nodeGroup:NodeGroup",
                "x",
                {"instanceTypes": ["p5.48xlarge"], "scalingConfig": {"minSize": 0, "maxSize": 1}},
            )
        ],
    )
    result = estimate(plan, TABLE, date(2026, 10, 2))
    assert [line.peak_usd for line in result.lines if line.sku == "ec2:p5.48xlarge"] == [0.0]
    assert "no price for ec2:p5.48xlarge in us-west-2 in tests/fixtures/prices.json; counted as $0" in result.warnings


def test_a_row_with_two_units_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text(
        '{"hoursPerMonth": 730, "maxAgeDays": 90, "rows": [{"sku": "kms:key", "region": "us-east-1", '
        '"usd_per_month": 1, "usd_per_hour": 1, "source": "x", "as_of": "2026-10-01"}]}'
    )
    with pytest.raises(ValueError, match="must give exactly one of"):
        prices.load(bad)


def test_the_shipped_table_prices_every_allowed_gpu_type_in_both_regions() -> None:
    table = prices.default_table()
    types = {t for env in ENVIRONMENTS for t in DEFAULT_ALLOWED_GPU_TYPES[env]} | set(catalog.GPU_INSTANCES) - {
        "p5e.48xlarge"
    }
    for region in ("us-east-1", "us-west-2"):
        for itype in sorted(types):
            assert table.lookup(f"ec2:{itype}", region).unit == "usd_per_hour"


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_every_shipped_stack_is_fully_priced_with_fresh_prices(stack: str) -> None:
    record = synth.synthesize_stack(stack)
    result = estimate(record, today=date(2026, 11, 1))
    assert result.warnings == ()
    assert result.peak_total <= load_stack(stack).budget.limit_usd
