"""`mlplat cost --actual` and `--idle`: Cost Explorer and CloudWatch through boto3 against moto.

moto answers `GetCostAndUsage` from a queue of results it is given; the results are recorded responses under
tests/fixtures/cost_explorer/, each validated against botocore's output shape for the call before it is used.
"""

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
import requests
from botocore.validate import ParamValidator
from moto import mock_aws
from typer.testing import CliRunner

from components.config import load_stack
from mlplat import synth
from mlplat.cli import app
from mlplat.cost import idle as idle_mod
from mlplat.cost.actual import request
from mlplat.cost.estimate import estimate

RECORDED = Path(__file__).parent / "fixtures" / "cost_explorer"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_ce = botocore.session.get_session().get_service_model("ce").operation_model("GetCostAndUsage")


def recorded(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((RECORDED / f"{name}.json").read_text())
    return doc


@pytest.mark.parametrize("name", ["prod-by-component", "prod-by-team"])
def test_the_recorded_responses_have_the_real_calls_shape(name: str) -> None:
    report = ParamValidator().validate(recorded(name), _ce.output_shape)
    assert not report.has_errors(), report.generate_report()


def test_the_request_is_a_valid_get_cost_and_usage_call() -> None:
    from datetime import date

    params = request("prod", date(2026, 11, 1), date(2026, 12, 1), "mlplat:team")
    report = ParamValidator().validate(params, _ce.input_shape)
    assert not report.has_errors(), report.generate_report()


BUCKET = "mlplat-prod-artifacts-bucket"
EXPORT_FILE = Path(__file__).parent / "fixtures" / "cur2" / "split-cost-2026-11.csv"
DELIVERY = "billing/mlplat-prod-split-cost/data/BILLING_PERIOD=2026-11/20261130T020000Z-8c1e/"


def prod_outputs(path: Path) -> Path:
    """What `pulumi stack output --json` gives for prod, as far as `cost --actual` reads it."""
    path.write_text(
        json.dumps(
            {
                "environment": "prod",
                "region": "us-east-1",
                "vpcId": "vpc-1",
                "privateSubnetIds": ["subnet-1"],
                "bucketName": BUCKET,
                "bucketArn": f"arn:aws:s3:::{BUCKET}",
                "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k",
                "trackingServerArn": "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/t",
                "trackingServerUrl": "https://t.example",
                "trainingRoleArn": "arn:aws:iam::123456789012:role/t",
                "servingRoleArn": "arn:aws:iam::123456789012:role/s",
                "workloadSecurityGroupId": "sg-1",
                "endpointNames": ["abalone-prod"],
                "budgetName": "b",
            }
        )
    )
    return path


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """moto with Cost Explorer's recorded answers, and prod's bucket holding its split cost export for November."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("MLPLAT_TODAY", "2026-12-01")
    monkeypatch.setenv("MLPLAT_OUTPUTS", str(prod_outputs(tmp_path / "prod-outputs.json")))
    with mock_aws():
        queue = {"results": [recorded("prod-by-component"), recorded("prod-by-team")]}
        answer = requests.post("http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results", json=queue)
        assert answer.status_code == 201
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        data = gzip.compress(EXPORT_FILE.read_bytes())
        s3.put_object(Bucket=BUCKET, Key=f"{DELIVERY}mlplat-prod-split-cost-00001.csv.gz", Body=data)
        yield s3


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["cost", *args], catch_exceptions=False, env={"COLUMNS": "200"})


def test_actual_json_has_per_component_and_per_team_rows(aws: None) -> None:
    result = invoke("--actual", "--stack", "prod", "--since", "30d", "--json")
    assert result.exit_code == 0, result.output
    actual = json.loads(result.stdout)["actual"]
    assert (actual["start"], actual["end"], actual["days"]) == ("2026-11-01", "2026-12-01", 30)
    components = {r["name"]: r["actualUsd"] for r in actual["components"]}
    assert {k: v for k, v in components.items() if v} == {
        "compute": 4210.55,
        "tracking": 902.33,
        "endpoint": 402.12,
        "network": 381.01,
        "(untagged)": 12.44,
    }
    # Components the estimate prices but Cost Explorer saw no spend for are listed at $0, not dropped.
    estimated = {c for c, _, _ in estimate(synth.synthesize_stack("prod")).components()}
    assert estimated <= set(components)
    assert {r["name"]: r["actualUsd"] for r in actual["teams"]} == {"ml-platform": 5895.99, "(untagged)": 12.46}
    assert actual["actualTotalUsd"] == 5908.45


def test_actual_sets_the_estimate_scaled_to_the_window_beside_each_row(aws: None) -> None:
    result = invoke("--actual", "--stack", "prod", "--since", "30d", "--json")
    rows = {r["name"]: r for r in json.loads(result.stdout)["actual"]["components"]}
    monthly = {c: (i, p) for c, i, p in estimate(synth.synthesize_stack("prod")).components()}
    share = 30 * 24 / 730
    assert rows["endpoint"]["estimateIdleUsd"] == round(monthly["endpoint"][0] * share, 2)
    assert rows["endpoint"]["estimatePeakUsd"] == round(monthly["endpoint"][1] * share, 2)


def test_actual_prints_a_component_table_and_a_team_table(aws: None) -> None:
    result = invoke("--actual", "--stack", "prod", "--since", "30d")
    assert result.exit_code == 0, result.output
    assert "prod: estimate vs actual per component" in result.output
    assert "prod: estimate vs actual per team" in result.output
    assert result.output.count("2026-11-01 to 2026-12-01 (30 days)") == 2
    assert "│ ml-platform │" in result.output


def test_actual_writes_a_chart(aws: None, tmp_path: Path) -> None:
    chart = tmp_path / "actual.png"
    result = invoke("--actual", "--stack", "prod", "--chart", str(chart))
    assert result.exit_code == 0, result.output
    assert chart.read_bytes()[:8] == PNG_MAGIC


def test_actual_json_has_pod_cost_per_namespace_from_the_split_cost_export(aws: None) -> None:
    result = invoke("--actual", "--stack", "prod", "--since", "30d", "--json")
    assert result.exit_code == 0, result.output
    actual = json.loads(result.stdout)["actual"]
    assert actual["pods"] == [
        {"namespace": "research", "team": "research", "splitCostUsd": 14.5, "unusedCostUsd": 2.0, "totalUsd": 16.5},
        {"namespace": "applied", "team": "applied", "splitCostUsd": 3.05, "unusedCostUsd": 0.95, "totalUsd": 4.0},
    ]
    assert actual["podTotalUsd"] == 20.5


def test_actual_prints_a_pod_table_beside_the_cost_explorer_tables(aws: None) -> None:
    result = invoke("--actual", "--stack", "prod", "--since", "30d")
    assert result.exit_code == 0, result.output
    assert "prod: pods per team" in result.output
    assert "EKS split cost, 30 days" in result.output
    assert "│ research  │     $14.50 │       $2.00 │ $16.50 │" in result.output


def test_actual_charts_the_pods_beside_the_components_and_teams(aws: None, tmp_path: Path) -> None:
    chart = tmp_path / "actual.png"
    result = invoke("--actual", "--stack", "prod", "--chart", str(chart))
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(chart) as image:
        # Three 7-inch panels at 100 dpi: components, teams, pods (two panels without the export).
        assert image.size[0] == 2100


def test_an_export_without_split_columns_fails_in_one_line(aws: Any) -> None:
    aws.put_object(
        Bucket=BUCKET,
        Key=f"{DELIVERY}mlplat-prod-split-cost-00001.csv.gz",
        Body=gzip.compress(b"identity_line_item_id,line_item_resource_id\nli-1,i-1\n"),
    )
    result = invoke("--actual", "--stack", "prod", "--since", "30d")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: {DELIVERY}mlplat-prod-split-cost-00001.csv.gz lacks line_item_usage_start_date, "
        "split_line_item_parent_resource_id, split_line_item_split_cost, split_line_item_unused_cost: the export "
        "must select them with INCLUDE_SPLIT_COST_ALLOCATION_DATA"
    )


def test_a_stack_without_the_export_reads_no_pods(aws: None) -> None:
    result = invoke("--actual", "--stack", "staging", "--since", "30d", "--json")
    assert result.exit_code == 0, result.output
    assert "pods" not in json.loads(result.stdout)["actual"]


def test_a_bad_window_is_one_line_naming_the_option(aws: None) -> None:
    result = invoke("--actual", "--stack", "prod", "--since", "thirty")
    assert result.exit_code == 2
    assert result.output.strip() == "error: --since must be a number of days from 1d to 365d (got 'thirty')"


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def test_an_endpoint_without_invocations_is_idle_with_its_monthly_floor(cloudwatch: Any) -> None:
    config = load_stack("prod")
    result = estimate(synth.synthesize_stack("prod"))
    start, end = idle_mod.idle_window(7)
    (item,) = idle_mod.idle_endpoints(cloudwatch, config, result, start, end)
    assert (item.kind, item.name, item.detail) == ("endpoint", "mlplat-prod-abalone-prod", "0 invocations in 7d")
    assert round(item.monthly_usd, 2) == round(2 * 0.204 * 730, 2)


def test_an_invoked_endpoint_is_not_idle(cloudwatch: Any) -> None:
    config = load_stack("prod")
    now = datetime.now(UTC)
    cloudwatch.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": "mlplat-prod-abalone-prod"},
                    {"Name": "VariantName", "Value": "primary"},
                ],
                "Timestamp": now - timedelta(hours=1),
                "Value": 12,
            }
        ],
    )
    start, end = idle_mod.idle_window(7, now)
    assert idle_mod.idle_endpoints(cloudwatch, config, estimate(synth.synthesize_stack("prod")), start, end) == []


def test_a_gpu_node_under_the_utilisation_threshold_is_idle_with_its_instance_price(cloudwatch: Any) -> None:
    from mlplat.cost.prices import default_table

    now = datetime.now(UTC)
    for instance, kind, value in (("i-0idle", "g5.xlarge", 3.0), ("i-0busy", "g5.xlarge", 71.0)):
        cloudwatch.put_metric_data(
            Namespace="ContainerInsights",
            MetricData=[
                {
                    "MetricName": "node_gpu_utilization",
                    "Dimensions": [
                        {"Name": "ClusterName", "Value": "mlplat-prod-compute-cluster"},
                        {"Name": "InstanceId", "Value": instance},
                        {"Name": "InstanceType", "Value": kind},
                    ],
                    "Timestamp": now - timedelta(hours=2),
                    "Value": value,
                }
            ],
        )
    start, end = idle_mod.idle_window(7, now)
    items = idle_mod.idle_gpu_nodes(cloudwatch, "mlplat-prod-compute-cluster", default_table(), "us-east-1", start, end)
    assert [(i.kind, i.name, i.detail) for i in items] == [("gpu-node", "i-0idle", "g5.xlarge, GPU 3.0% on average")]
    assert round(items[0].monthly_usd, 2) == round(1.006 * 730, 2)


def test_without_gpu_telemetry_no_node_is_listed(cloudwatch: Any) -> None:
    from mlplat.cost.prices import default_table

    start, end = idle_mod.idle_window(7)
    assert (
        idle_mod.idle_gpu_nodes(cloudwatch, "mlplat-prod-compute-cluster", default_table(), "us-east-1", start, end)
        == []
    )
