"""The Identity component: one SageMaker role per duty, trusted by SageMaker alone, scoped to named resources."""

from typing import Any

import pytest
from plan_helpers import as_list, parent_type, statements

from mlplat.synth import PlanRecord

ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
IDENTITY = "mlplat:identity:Identity"
ACCOUNT = "123456789012"


def _policy(plan: PlanRecord, duty: str) -> list[dict[str, Any]]:
    return statements(plan.get(POLICY, f"mlplat-{plan.stack}-identity-{duty}-policy"))


def _resources_for(policy: list[dict[str, Any]], action: str) -> set[str]:
    return {r for s in policy if action in as_list(s["Action"]) for r in as_list(s["Resource"])}


@pytest.mark.parametrize("duty", ["training", "serving"])
def test_role_is_a_child_of_identity_and_trusted_by_sagemaker_of_this_account(prod: PlanRecord, duty: str) -> None:
    role = prod.get(ROLE, f"mlplat-prod-identity-{duty}-role")
    (trust,) = statements(role, "assumeRolePolicy")
    assert parent_type(role) == IDENTITY
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_roles_attach_no_managed_policy(prod: PlanRecord) -> None:
    identity = prod.get(IDENTITY, "mlplat-prod-identity")
    children = prod.children(identity.urn)
    assert {r.type for r in children} == {ROLE, POLICY}
    assert all("managedPolicyArns" not in r.inputs for r in children if r.type == ROLE)


def test_training_reads_datasets_checkpoints_mlflow_and_source_archives_only(prod: PlanRecord) -> None:
    bucket = prod.outputs["bucketArn"]
    assert _resources_for(_policy(prod, "training"), "s3:GetObject") == {
        f"{bucket}/datasets/*",
        f"{bucket}/checkpoints/*",
        f"{bucket}/mlflow/*",
        f"{bucket}/code/*",
    }


def test_training_writes_checkpoints_mlflow_and_models_only(prod: PlanRecord) -> None:
    bucket = prod.outputs["bucketArn"]
    assert _resources_for(_policy(prod, "training"), "s3:PutObject") == {
        f"{bucket}/checkpoints/*",
        f"{bucket}/mlflow/*",
        f"{bucket}/models/*",
    }


def test_serving_reads_models_and_writes_data_capture_only(prod: PlanRecord) -> None:
    bucket = prod.outputs["bucketArn"]
    policy = _policy(prod, "serving")
    assert _resources_for(policy, "s3:GetObject") == {f"{bucket}/models/*"}
    assert _resources_for(policy, "s3:PutObject") == {f"{bucket}/data-capture/*"}


@pytest.mark.parametrize("duty", ["training", "serving"])
def test_role_uses_the_bucket_key_only(prod: PlanRecord, duty: str) -> None:
    assert _resources_for(_policy(prod, duty), "kms:Decrypt") == {prod.outputs["kmsKeyArn"]}
    assert _resources_for(_policy(prod, duty), "kms:GenerateDataKey") == {prod.outputs["kmsKeyArn"]}


@pytest.mark.parametrize(
    ("duty", "group"), [("training", "/aws/sagemaker/TrainingJobs"), ("serving", "/aws/sagemaker/Endpoints/*")]
)
def test_role_writes_logs_to_its_sagemaker_log_group_only(prod: PlanRecord, duty: str, group: str) -> None:
    arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}"
    assert _resources_for(_policy(prod, duty), "logs:PutLogEvents") == {arn, f"{arn}:log-stream:*"}


@pytest.mark.parametrize(("duty", "repository"), [("training", "mlplat/training"), ("serving", "mlplat/serving")])
def test_role_pulls_its_own_image_repository_only(prod: PlanRecord, duty: str, repository: str) -> None:
    assert _resources_for(_policy(prod, duty), "ecr:BatchGetImage") == {
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{repository}"
    }


@pytest.mark.parametrize("duty", ["training", "serving"])
def test_network_interfaces_are_managed_only_inside_the_platform_vpc(prod: PlanRecord, duty: str) -> None:
    (statement,) = [s for s in _policy(prod, duty) if "ec2:CreateNetworkInterface" in as_list(s["Action"])]
    assert statement["Condition"] == {
        "ArnEquals": {"ec2:Vpc": f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/{prod.outputs['vpcId']}"}
    }


@pytest.mark.parametrize("duty", ["training", "serving"])
def test_wildcard_resources_only_for_actions_without_resource_level_permissions(prod: PlanRecord, duty: str) -> None:
    unscoped = {
        action
        for s in _policy(prod, duty)
        if "*" in as_list(s["Resource"]) and "Condition" not in s
        for action in as_list(s["Action"])
    }
    assert unscoped <= {
        "ecr:GetAuthorizationToken",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
    }


def test_metrics_are_put_only_into_the_sagemaker_and_mlplat_namespaces(prod: PlanRecord) -> None:
    (statement,) = [s for s in _policy(prod, "training") if s["Action"] == ["cloudwatch:PutMetricData"]]
    assert statement["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": ["/aws/sagemaker/TrainingJobs", "mlplat/training"]}
    }


def test_role_arns_are_exported(dev: PlanRecord) -> None:
    assert dev.outputs["trainingRoleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/mlplat-dev-identity-training-role-")
    assert dev.outputs["servingRoleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/mlplat-dev-identity-serving-role-")


def test_models_wait_for_the_serving_policy_not_only_the_role(dev: PlanRecord) -> None:
    (model,) = dev.of_type("aws:sagemaker/model:Model")
    policy = dev.get(POLICY, "mlplat-dev-identity-serving-policy")
    assert policy.urn in model.options["propertyDependencies"]["executionRoleArn"]
