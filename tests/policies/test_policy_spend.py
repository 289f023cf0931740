"""The spend policies: prod keeps endpoints warm (no scale to zero), and a budget enforcer touches only its stack."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from policy_support import changed, resource, run, run_stack
from typer.testing import CliRunner

from mlplat.cli import app

REPO = Path(__file__).resolve().parents[2]

CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
TARGET = "aws:appautoscaling/target:Target"
CLOUDCONTROL = "aws:cloudcontrol/resource:Resource"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IC_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
SM = "arn:aws:sagemaker:us-east-1:123456789012"
REMEDY = "set mlplat:endpoints[].minCapacity >= 1 and drop serverless in this environment."

WARM_TARGET = {
    "serviceNamespace": "sagemaker",
    "resourceId": "inference-component/shop-prod-abalone",
    "scalableDimension": IC_DIMENSION,
    "minCapacity": 1,
    "maxCapacity": 4,
}
WARM_CONFIG = {
    "productionVariants": [
        {
            "variantName": "primary",
            "instanceType": "ml.c5.large",
            "initialInstanceCount": 1,
            "managedInstanceScaling": {"status": "ENABLED", "minInstanceCount": 1, "maxInstanceCount": 4},
        }
    ]
}


def test_warm_inference_components_pass() -> None:
    assert run("sagemaker-no-scale-to-zero", TARGET, WARM_TARGET) == []
    assert run("sagemaker-no-scale-to-zero", CONFIG, WARM_CONFIG) == []


def test_copies_that_scale_to_zero_are_reported() -> None:
    assert run("sagemaker-no-scale-to-zero", TARGET, changed(WARM_TARGET, "minCapacity", 0)) == [
        f"the inference component scales in to 0 copies (scale to zero); {REMEDY}"
    ]


def test_instances_that_scale_to_zero_are_reported() -> None:
    props = changed(WARM_CONFIG, "productionVariants.0.managedInstanceScaling.minInstanceCount", 0)
    assert run("sagemaker-no-scale-to-zero", CONFIG, props) == [
        f"variant primary may scale to 0 instances (managedInstanceScaling); {REMEDY}"
    ]


def test_a_serverless_variant_is_reported() -> None:
    props = {"productionVariants": [{"variantName": "primary", "serverlessConfig": {"memorySizeInMb": 1024}}]}
    assert run("sagemaker-no-scale-to-zero", CONFIG, props) == [
        f"variant primary is serverless, which scales to zero; {REMEDY}"
    ]


def test_the_instance_floor_policy_leaves_copy_counts_to_the_scale_to_zero_policy() -> None:
    assert run("sagemaker-endpoint-min-instances", TARGET, changed(WARM_TARGET, "minCapacity", 0), minInstances=2) == []


def test_a_prod_endpoint_that_scales_to_zero_fails_prods_policy_check(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.prod.yaml").read_text())
    document["config"]["mlplat:endpoints"][0].update({"minCapacity": 0, "instanceType": "ml.c5.xlarge"})
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(
        app, ["policy", "--stack", "prod", "--stack-file", str(stack_file)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 1, result.output
    assert "sagemaker-no-scale-to-zero [mandatory]" in result.output
    assert f"the inference component scales in to 0 copies (scale to zero); {REMEDY}" in result.output


def test_dev_scales_to_zero_freely_and_staging_is_warned() -> None:
    for env, level in (("dev", "disabled"), ("staging", "advisory")):
        config = json.loads((REPO / "policies" / "config" / f"{env}.json").read_text())
        assert config["sagemaker-no-scale-to-zero"]["enforcementLevel"] == level


def _ic(name: str, endpoint: str) -> Any:
    state = json.dumps({"EndpointName": endpoint, "InferenceComponentName": name})
    return resource(
        CLOUDCONTROL, f"{name}-ic", {"typeName": "AWS::SageMaker::InferenceComponent", "desiredState": state}
    )


def test_an_inference_component_target_counts_as_the_endpoints_autoscaling() -> None:
    resources = [
        resource(ENDPOINT, "shop", {"name": "shop-prod", "endpointConfigName": "cfg"}),
        _ic("shop-prod-abalone", "shop-prod"),
        resource(TARGET, "shop-target", {**WARM_TARGET, "resourceId": "inference-component/shop-prod-abalone"}),
    ]
    assert run_stack("sagemaker-endpoint-autoscaling", resources) == []


def test_a_target_on_another_endpoints_component_does_not_count() -> None:
    resources = [
        resource(ENDPOINT, "shop", {"name": "shop-prod", "endpointConfigName": "cfg"}),
        _ic("other-prod-abalone", "other-prod"),
        resource(TARGET, "other-target", {**WARM_TARGET, "resourceId": "inference-component/other-prod-abalone"}),
    ]
    assert [v.urn for v in run_stack("sagemaker-endpoint-autoscaling", resources)] == [resources[0].urn]


STATEMENTS = [
    {
        "Sid": "ScaleThisStacksEndpoints",
        "Effect": "Allow",
        "Action": ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
        "Resource": [f"{SM}:endpoint/shop-dev"],
    },
    {
        "Sid": "ScaleThisStacksInferenceComponents",
        "Effect": "Allow",
        "Action": ["sagemaker:UpdateInferenceComponentRuntimeConfig"],
        "Resource": [f"{SM}:inference-component/shop-dev-abalone"],
    },
    {
        "Sid": "PinThisStacksScalingTargets",
        "Effect": "Allow",
        "Action": ["application-autoscaling:RegisterScalableTarget"],
        "Resource": "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/mlplat:environment": "dev"}},
    },
    {
        "Sid": "ReadScalingTargets",
        "Effect": "Allow",
        "Action": ["application-autoscaling:DescribeScalableTargets"],
        "Resource": "*",
    },
    {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:PutLogEvents"],
        "Resource": [
            "arn:aws:logs:us-east-1:123456789012:log-group:/mlplat/shop-dev/enforcer",
            "arn:aws:logs:us-east-1:123456789012:log-group:/mlplat/shop-dev/enforcer:log-stream:*",
        ],
    },
]


def _stack(statements: list[dict[str, Any]]) -> list[Any]:
    role = resource(
        ROLE, "enforcer-role", {"tags": {"mlplat:duty": "budget-enforcement", "mlplat:environment": "dev"}}, id="enf"
    )
    policy = resource(ROLE_POLICY, "enforcer-policy", {"role": "enf", "policy": json.dumps({"Statement": statements})})
    return [
        resource(ENDPOINT, "shop", {"name": "shop-dev"}),
        _ic("shop-dev-abalone", "shop-dev"),
        role,
        policy,
    ]


def test_an_enforcer_scoped_to_its_own_stack_passes() -> None:
    assert run_stack("budget-enforcer-scoped", _stack(STATEMENTS)) == []


def test_an_enforcer_that_can_scale_another_stacks_endpoint_is_reported() -> None:
    statements = copy.deepcopy(STATEMENTS)
    statements[0]["Resource"] = [f"{SM}:endpoint/shop-prod"]
    (violation,) = run_stack("budget-enforcer-scoped", _stack(statements))
    assert violation.message == (
        "enforcement role statement 'ScaleThisStacksEndpoints' lets sagemaker:UpdateEndpointWeightsAndCapacities "
        f"act on {SM}:endpoint/shop-prod, which is not one of this stack's endpoints or inference components."
    )


def test_an_enforcer_on_every_inference_component_is_reported() -> None:
    statements = copy.deepcopy(STATEMENTS)
    statements[1]["Resource"] = [f"{SM}:inference-component/*"]
    (violation,) = run_stack("budget-enforcer-scoped", _stack(statements))
    assert violation.message == (
        "enforcement role statement 'ScaleThisStacksInferenceComponents' lets "
        f"sagemaker:UpdateInferenceComponentRuntimeConfig act on {SM}:inference-component/*, which is not one of "
        "this stack's endpoints or inference components."
    )


def test_an_enforcer_pinning_scaling_targets_without_the_environment_condition_is_reported() -> None:
    statements = copy.deepcopy(STATEMENTS)
    del statements[2]["Condition"]
    (violation,) = run_stack("budget-enforcer-scoped", _stack(statements))
    assert violation.message == (
        "enforcement role statement 'PinThisStacksScalingTargets' lets application-autoscaling:RegisterScalableTarget "
        "act on arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/* without a StringEquals "
        "aws:ResourceTag/mlplat:environment condition for this stack (dev)."
    )


def test_an_enforcer_conditioned_on_another_environment_is_reported() -> None:
    statements = copy.deepcopy(STATEMENTS)
    statements[2]["Condition"] = {"StringEquals": {"aws:ResourceTag/mlplat:environment": "prod"}}
    assert len(run_stack("budget-enforcer-scoped", _stack(statements))) == 1


def test_an_enforcer_writing_logs_anywhere_is_reported() -> None:
    statements = copy.deepcopy(STATEMENTS)
    statements[4]["Resource"] = "arn:aws:logs:us-east-1:123456789012:log-group:*"
    (violation,) = run_stack("budget-enforcer-scoped", _stack(statements))
    assert violation.message.startswith("enforcement role statement 'WriteOwnLogs' lets logs:PutLogEvents act on")


def test_roles_without_the_enforcement_duty_are_not_this_policys_business() -> None:
    resources = _stack([{**STATEMENTS[0], "Resource": "*"}])
    resources[2] = resource(ROLE, "enforcer-role", {"tags": {"mlplat:environment": "dev"}}, id="enf")
    assert run_stack("budget-enforcer-scoped", resources) == []


VPC_TYPE = "aws:ec2/vpc:Vpc"
ENI_STATEMENT = {
    "Sid": "AttachToThisStacksVpc",
    "Effect": "Allow",
    "Action": ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
    "Resource": "*",
    "Condition": {"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0a1b2c3d"}},
}


def _with_vpc(statement: dict[str, Any], vpc_id: str = "vpc-0a1b2c3d") -> list[Any]:
    return [*_stack([*STATEMENTS, statement]), resource(VPC_TYPE, "net", {"cidrBlock": "10.0.0.0/16"}, id=vpc_id)]


def test_an_enforcer_placing_network_interfaces_in_its_own_vpc_passes() -> None:
    assert run_stack("budget-enforcer-scoped", _with_vpc(ENI_STATEMENT)) == []


def test_an_enforcer_placing_network_interfaces_in_another_vpc_is_reported() -> None:
    violations = run_stack("budget-enforcer-scoped", _with_vpc(ENI_STATEMENT, vpc_id="vpc-99999999"))
    assert [v.message for v in violations] == [
        f"enforcement role statement 'AttachToThisStacksVpc' lets {action} act on * without an ArnEquals ec2:Vpc "
        "condition naming this stack's VPC."
        for action in ("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface")
    ]


def test_an_enforcer_placing_network_interfaces_anywhere_is_reported_per_action() -> None:
    statement = {k: v for k, v in ENI_STATEMENT.items() if k != "Condition"}
    violations = run_stack("budget-enforcer-scoped", _with_vpc(statement))
    assert [v.message.split(" lets ")[1].split(" ")[0] for v in violations] == [
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
    ]


def test_a_vpc_condition_with_a_wildcard_arn_is_reported() -> None:
    statement = {**ENI_STATEMENT, "Condition": {"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:us-east-1:123456789012:vpc/*"}}}
    assert len(run_stack("budget-enforcer-scoped", _with_vpc(statement))) == 2


# One bad fixture per condition budget-enforcer-scoped checks; each case is named after its condition.
LOGS = "arn:aws:logs:us-east-1:123456789012:log-group:"
UNSCOPED = (
    "enforcement role statement 1 lets {} act on {} without a StringEquals aws:ResourceTag/mlplat:environment "
    "condition for this stack (dev)."
)


@pytest.mark.parametrize(
    ("statement", "messages"),
    [
        pytest.param({"Action": "sagemaker:ListEndpoints", "Resource": "*"}, [], id="a sagemaker read on star"),
        pytest.param({"Action": "sagemaker:UpdateEndpoint", "Resource": "*", "Effect": "Deny"}, [], id="a Deny"),
        pytest.param(
            {"Action": "logs:PutLogEvents", "Resource": f"{LOGS}/mlplat/shop-dev/enforcer:*"},
            [],
            id="one named log group with its :* suffix",
        ),
        pytest.param(
            {"Action": "logs:PutLogEvents", "Resource": f"{LOGS}/mlplat/*"},
            [UNSCOPED.format("logs:PutLogEvents", f"{LOGS}/mlplat/*")],
            id="a log group pattern",
        ),
        pytest.param(
            {"Action": "logs:PutLogEvents", "Resource": f"{LOGS}:log-stream:*"},
            [UNSCOPED.format("logs:PutLogEvents", f"{LOGS}:log-stream:*")],
            id="an empty log group name",
        ),
        pytest.param(
            {"Action": "sns:Publish", "Resource": "arn:aws:sns:us-east-1:123456789012:alerts"},
            [],
            id="a write on one exact ARN needs no condition",
        ),
        pytest.param(
            {"Action": "sns:Publish", "Resource": "*", "Condition": "dev"},
            [UNSCOPED.format("sns:Publish", "*")],
            id="a Condition that is not a mapping",
        ),
        pytest.param(
            {
                "Action": "sns:Publish",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:ResourceTag/mlplat:environment": "dev"}},
            },
            [UNSCOPED.format("sns:Publish", "*")],
            id="StringLike instead of StringEquals",
        ),
        pytest.param(
            {
                "Action": "sns:Publish",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/mlplat:team": "dev"}},
            },
            [UNSCOPED.format("sns:Publish", "*")],
            id="a condition on another tag",
        ),
        pytest.param(
            {
                "Action": ["sagemaker:UpdateInferenceComponentRuntimeConfig"],
                "Resource": f"{SM}:inference-component/shop-dev-abalone",
            },
            [],
            id="this stack's inference component",
        ),
    ],
)
def test_budget_enforcer_scoped_checks_each_condition(statement: dict[str, Any], messages: list[str]) -> None:
    resources = _stack([{"Effect": "Allow", **statement}])
    assert [v.message for v in run_stack("budget-enforcer-scoped", resources)] == messages
    assert all(v.urn == resources[3].urn for v in run_stack("budget-enforcer-scoped", resources))


def test_budget_enforcer_scoped_needs_the_roles_environment_tag_for_a_tag_condition() -> None:
    resources = _stack([STATEMENTS[2]])
    resources[2] = resource(ROLE, "enforcer-role", {"tags": {"mlplat:duty": "budget-enforcement"}}, id="enf")
    assert [v.message for v in run_stack("budget-enforcer-scoped", resources)] == [
        "enforcement role statement 'PinThisStacksScalingTargets' lets application-autoscaling:RegisterScalableTarget "
        "act on arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/* without a StringEquals "
        "aws:ResourceTag/mlplat:environment condition for this stack (None)."
    ]


def test_budget_enforcer_scoped_ignores_a_policy_of_another_role() -> None:
    resources = _stack([{**STATEMENTS[0], "Resource": "*"}])
    resources[3] = resource(
        ROLE_POLICY,
        "other-policy",
        {"role": "other", "policy": json.dumps({"Statement": [{**STATEMENTS[0], "Resource": "*"}]})},
    )
    resources.append(resource(ROLE, "other-role", {}, id="other"))
    assert run_stack("budget-enforcer-scoped", resources) == []
