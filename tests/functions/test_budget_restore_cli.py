"""`mlplat budget restore --stack dev` against moto: undoes the recorded enforcement, or says there is nothing."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kube_fake import FakeKubeApi, node_pool
from moto import mock_aws
from typer.testing import CliRunner

from mlplat.cli import app

REGION = "us-east-1"
PARAMETER = "/mlplat/dev/budget-enforcement"
ENDPOINT = "mlplat-dev-churn-dev"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield


def _enforced_variant_endpoint() -> str:
    """A variant endpoint left at 1 instance by the enforcer, which recorded 3 instances and scaling 1..5."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model(
        ModelName="churn",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/serving",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="churn-config",
        ProductionVariants=[
            {"VariantName": "primary", "ModelName": "churn", "InstanceType": "ml.c5.large", "InitialInstanceCount": 1}
        ],
    )
    arn = sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="churn-config")["EndpointArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "mlplat:budget-enforced", "Value": "2026-12-06T04:00:00Z"}])
    resource_id = f"endpoint/{ENDPOINT}/variant/primary"
    boto3.client("application-autoscaling", region_name=REGION).register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=1,
    )
    record = {
        "version": 1,
        "environment": "dev",
        "at": "2026-12-06T04:00:00Z",
        "budget": "mlplat-dev-budget",
        "thresholdPercent": 100,
        "changes": [
            {
                "kind": "variant",
                "name": ENDPOINT,
                "variant": "primary",
                "arn": arn,
                "instanceCount": 3,
                "resourceId": resource_id,
                "dimension": "sagemaker:variant:DesiredInstanceCount",
                "scaling": [1, 5],
                "target": 1,
            }
        ],
    }
    boto3.client("ssm", region_name=REGION).put_parameter(Name=PARAMETER, Value=json.dumps(record), Type="String")
    return arn


def test_restore_with_nothing_recorded_says_so_and_exits_zero(aws: None) -> None:
    result = CliRunner().invoke(app, ["budget", "restore", "--stack", "dev"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"dev: nothing recorded at {PARAMETER}; nothing to restore, nothing changed"


def test_restore_puts_the_recorded_capacity_back_and_deletes_the_record(aws: None) -> None:
    arn = _enforced_variant_endpoint()
    result = CliRunner().invoke(app, ["budget", "restore", "--stack", "dev"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"- variant {ENDPOINT}: 1 -> 3 instances"
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    variant = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"][0]
    assert variant["DesiredInstanceCount"] == 3
    (target,) = boto3.client("application-autoscaling", region_name=REGION).describe_scalable_targets(
        ServiceNamespace="sagemaker"
    )["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 5)
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == []
    ssm = boto3.client("ssm", region_name=REGION)
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=PARAMETER)


def _record_pool_enforcement(pool: str) -> dict[str, Any]:
    """The record the enforcer left after zeroing `pool`, whose GPU limit was 4."""
    record = {
        "version": 1,
        "environment": "dev",
        "at": "2026-12-06T04:00:00Z",
        "budget": "mlplat-dev-budget",
        "thresholdPercent": 100,
        "changes": [
            {
                "kind": "nodepool",
                "name": pool,
                "cluster": "mlplat-dev",
                "limits": {"nvidia.com/gpu": "4"},
                "target": "0",
            }
        ],
    }
    boto3.client("ssm", region_name=REGION).put_parameter(Name=PARAMETER, Value=json.dumps(record), Type="String")
    return record


def _restore_through(server: FakeKubeApi) -> Any:
    try:
        return CliRunner().invoke(
            app, ["budget", "restore", "--stack", "dev", "--cluster-endpoint-url", server.url], env={"COLUMNS": "200"}
        )
    finally:
        server.close()


def test_restore_puts_a_gpu_pools_recorded_limits_back_through_the_cluster_api(aws: None) -> None:
    server = FakeKubeApi({"train-spot": node_pool("train-spot", {"nvidia.com/gpu": "0"})})
    server.pools["train-spot"]["metadata"]["annotations"] = {"mlplat.io/budget-enforced": "2026-12-06T04:00:00Z"}
    _record_pool_enforcement("train-spot")
    result = _restore_through(server)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "- nodepool train-spot: nvidia.com/gpu limit 0 -> 4"
    assert server.pools["train-spot"] == node_pool("train-spot", {"nvidia.com/gpu": "4"})
    assert [r.authorization.startswith("Bearer k8s-aws-v1.") for r in server.requests] == [True]


def test_restore_that_the_cluster_refuses_fails_in_one_line_and_keeps_the_record(aws: None) -> None:
    record = _record_pool_enforcement("gone")
    result = _restore_through(FakeKubeApi({}))
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "restore of dev failed: PATCH /apis/karpenter.sh/v1/nodepools/gone: HTTP 404" in result.output
    ssm = boto3.client("ssm", region_name=REGION)
    assert json.loads(ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]) == record
