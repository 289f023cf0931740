"""The enforcer the BudgetAlerts component packages: a Lambda on the budget topic, scoped to the stack's endpoints."""

import json
from typing import Any

import pytest
from plan_helpers import owned, statements

from components.budget import COST_ALLOCATION_TAGS, ENFORCER_SOURCE
from mlplat.synth import PlanRecord

COMPONENT = "mlplat:budget:BudgetAlerts"
FUNCTION = "aws:lambda/function:Function"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ARN = "arn:aws:{service}:us-east-1:123456789012:{resource}"


def _variables(plan: PlanRecord) -> dict[str, str]:
    (function,) = owned(plan, FUNCTION, COMPONENT)
    variables: dict[str, str] = function.inputs["environment"]["variables"]
    return variables


def _policy(plan: PlanRecord) -> dict[str, dict[str, Any]]:
    (policy,) = owned(plan, ROLE_POLICY, COMPONENT)
    return {s["Sid"]: s for s in statements(policy)}


def test_the_enforcer_needs_nothing_the_lambda_runtime_lacks() -> None:
    source = ENFORCER_SOURCE.read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"json", "os", "re", "collections", "datetime", "typing", "boto3"}


def test_the_function_runs_the_handler_with_the_stacks_endpoints(dev: PlanRecord) -> None:
    (function,) = owned(dev, FUNCTION, COMPONENT)
    assert (function.inputs["handler"], function.inputs["runtime"]) == ("budget_enforcer.handler", "python3.12")
    assert json.loads(_variables(dev)["MLPLAT_ENDPOINTS"]) == [
        {
            "endpoint": "mlplat-dev-abalone-dev",
            "inferenceComponent": "mlplat-dev-abalone-dev-abalone",
            "minimum": 0,
            "variant": "primary",
        }
    ]


@pytest.mark.parametrize(("stack", "enforce"), [("dev", "true"), ("staging", "true"), ("prod", "false")])
def test_prod_notifies_only_and_the_others_enforce(plans: dict[str, PlanRecord], stack: str, enforce: str) -> None:
    variables = _variables(plans[stack])
    assert variables["MLPLAT_ENFORCE"] == enforce
    assert variables["MLPLAT_LAST_THRESHOLD"] == "100"
    assert variables["MLPLAT_RECORD_PARAMETER"] == f"/mlplat/{stack}/budget-enforcement"


def test_the_function_listens_on_the_budget_topic(dev: PlanRecord) -> None:
    subscriptions = owned(dev, "aws:sns/topicSubscription:TopicSubscription", COMPONENT)
    (lambda_sub,) = [s for s in subscriptions if s.inputs["protocol"] == "lambda"]
    (permission,) = owned(dev, "aws:lambda/permission:Permission", COMPONENT)
    (budget,) = owned(dev, "aws:budgets/budget:Budget", COMPONENT)
    budget_topics = {t for n in budget.inputs["notifications"] for t in n["subscriberSnsTopicArns"]}
    assert budget_topics == {lambda_sub.inputs["topic"]} == {permission.inputs["sourceArn"]}
    assert (permission.inputs["principal"], permission.inputs["action"]) == (
        "sns.amazonaws.com",
        "lambda:InvokeFunction",
    )


def test_the_role_scales_only_this_stacks_endpoint_and_component(dev: PlanRecord) -> None:
    policy = _policy(dev)
    assert policy["ScaleThisStacksEndpoints"]["Resource"] == [
        ARN.format(service="sagemaker", resource="endpoint/mlplat-dev-abalone-dev")
    ]
    assert policy["ScaleThisStacksInferenceComponents"]["Resource"] == [
        ARN.format(service="sagemaker", resource="inference-component/mlplat-dev-abalone-dev-abalone")
    ]
    assert policy["ScaleThisStacksInferenceComponents"]["Action"] == [
        "sagemaker:AddTags",
        "sagemaker:DeleteTags",
        "sagemaker:DescribeInferenceComponent",
        "sagemaker:UpdateInferenceComponentRuntimeConfig",
    ]


def test_the_role_pins_only_scaling_targets_tagged_with_this_environment(dev: PlanRecord) -> None:
    pin = _policy(dev)["PinThisStacksScalingTargets"]
    assert pin["Action"] == ["application-autoscaling:RegisterScalableTarget"]
    assert pin["Condition"] == {"StringEquals": {"aws:ResourceTag/mlplat:environment": "dev"}}


def test_the_role_keeps_only_its_own_record(dev: PlanRecord) -> None:
    record = _policy(dev)["KeepTheRecord"]
    assert record["Resource"] == ARN.format(service="ssm", resource="parameter/mlplat/dev/budget-enforcement")


def test_the_stack_activates_the_cost_allocation_tags_it_groups_by(dev: PlanRecord) -> None:
    tags = owned(dev, "aws:costexplorer/costAllocationTag:CostAllocationTag", COMPONENT)
    assert sorted((t.inputs["tagKey"], t.inputs["status"]) for t in tags) == sorted(
        (tag, "Active") for tag in COST_ALLOCATION_TAGS
    )
