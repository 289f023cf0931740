"""The enforcer the BudgetAlerts component packages: a Lambda on the budget topic, scoped to the stack's endpoints."""

import json
from typing import Any

import pytest
from plan_helpers import owned, statements

from components.budget import COST_ALLOCATION_TAGS, ENFORCER_SOURCE
from mlplat.k8s_validate import validate_manifest
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
    assert imports <= {"base64", "json", "os", "re", "ssl", "urllib", "collections", "datetime", "typing", "boto3"}


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


CLUSTER_RBAC = "mlplat:budget-enforcer"


def _one(plan: PlanRecord, type_token: str) -> Any:
    (found,) = owned(plan, type_token, COMPONENT)
    return found


def test_an_enforcing_stack_hands_the_function_its_gpu_pools_and_the_clusters_api(staging: PlanRecord) -> None:
    (cluster,) = staging.of_type("aws:eks/cluster:Cluster")
    variables = _variables(staging)
    assert json.loads(variables["MLPLAT_NODEPOOLS"]) == ["train-spot", "eval"]
    assert variables["MLPLAT_CLUSTER_NAME"] == cluster.inputs["name"]
    assert variables["MLPLAT_CLUSTER_ENDPOINT"].startswith("https://")
    assert variables["MLPLAT_CLUSTER_CA"] != ""


def test_the_function_runs_in_the_private_subnets_behind_its_own_group(staging: PlanRecord) -> None:
    (function,) = owned(staging, FUNCTION, COMPONENT)
    (cluster,) = staging.of_type("aws:eks/cluster:Cluster")
    # The cluster's own subnets are the network's private ones.
    assert function.inputs["vpcConfig"]["subnetIds"] == cluster.inputs["vpcConfig"]["subnetIds"]
    group = _one(staging, "aws:ec2/securityGroup:SecurityGroup")
    assert group.inputs.get("ingress") in (None, [])
    assert [(e["protocol"], e["fromPort"], e["toPort"]) for e in group.inputs["egress"]] == [("tcp", 443, 443)]


def test_the_cluster_admits_the_function_on_443_only(staging: PlanRecord) -> None:
    rule = _one(staging, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 443, 443)
    assert "cidrIpv4" not in rule.inputs
    (function,) = owned(staging, FUNCTION, COMPONENT)
    assert [rule.inputs["referencedSecurityGroupId"]] == function.inputs["vpcConfig"]["securityGroupIds"]


def test_the_functions_role_enters_the_cluster_as_the_enforcer_group_only(staging: PlanRecord) -> None:
    entry = _one(staging, "aws:eks/accessEntry:AccessEntry")
    role = _one(staging, "aws:iam/role:Role")
    assert entry.inputs["principalArn"].startswith(f"arn:aws:iam::123456789012:role/{role.name}-")
    assert (entry.inputs["type"], entry.inputs["kubernetesGroups"]) == ("STANDARD", [CLUSTER_RBAC])
    assert owned(staging, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation", COMPONENT) == []


def test_rbac_lets_the_group_get_and_patch_exactly_the_gpu_pools(staging: PlanRecord) -> None:
    role = _one(staging, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    binding = _one(staging, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    assert role.inputs["rules"] == [
        {
            "apiGroups": ["karpenter.sh"],
            "resources": ["nodepools"],
            "resourceNames": ["train-spot", "eval"],
            "verbs": ["get", "patch"],
        }
    ]
    assert binding.inputs["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role.inputs["metadata"]["name"],
    }
    assert binding.inputs["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": CLUSTER_RBAC}
    ]


def test_the_rbac_objects_validate_against_the_kubernetes_schema(staging: PlanRecord) -> None:
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        obj = _one(staging, f"kubernetes:rbac.authorization.k8s.io/v1:{kind}")
        assert validate_manifest(obj.inputs, "1.35") == [], kind


def test_the_role_places_network_interfaces_only_in_the_stacks_vpc(staging: PlanRecord) -> None:
    policy = _policy(staging)
    attach = policy["AttachToThisStacksVpc"]
    assert attach["Action"] == [
        "ec2:AssignPrivateIpAddresses",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:UnassignPrivateIpAddresses",
    ]
    assert attach["Condition"]["ArnEquals"]["ec2:Vpc"].startswith("arn:aws:ec2:us-west-2:123456789012:vpc/vpc-")
    assert policy["ReadNetworkInterfaces"]["Action"] == ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_stack_without_pools_to_zero_keeps_the_function_out_of_the_cluster(
    plans: dict[str, PlanRecord], stack: str
) -> None:
    """dev has no cluster; prod's budget notifies only, so its function needs no way in."""
    plan = plans[stack]
    (function,) = owned(plan, FUNCTION, COMPONENT)
    assert function.inputs.get("vpcConfig") is None
    assert "MLPLAT_NODEPOOLS" not in _variables(plan)
    assert owned(plan, "aws:eks/accessEntry:AccessEntry", COMPONENT) == []
    assert "AttachToThisStacksVpc" not in _policy(plan)
