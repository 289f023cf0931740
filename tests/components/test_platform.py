"""The MlPlatform component, and what must hold across every shipped stack: tags, IAM, outputs."""

import importlib
import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest
from plan_helpers import COMPONENT_TAG, as_list, parent_type

from mlplat.synth import PlanRecord, ResourceRecord

STACKS = ["dev", "staging", "prod"]
PLATFORM = "mlplat:platform:MlPlatform"
FOUNDATION = {
    "mlplat:network:Network",
    "mlplat:artifacts:ArtifactStore",
    "mlplat:tracking:TrackingServer",
    "mlplat:identity:Identity",
    "mlplat:endpoint:InferenceEndpoint",
    "mlplat:budget:BudgetAlerts",
}
STACK_TAG_KEYS = ("mlplat:environment", "mlplat:team", "mlplat:cost-center")
OUTPUT_KEYS = {
    "vpcId",
    "privateSubnetIds",
    "bucketName",
    "bucketArn",
    "kmsKeyArn",
    "trackingServerArn",
    "trackingServerUrl",
    "trainingRoleArn",
    "servingRoleArn",
    "workloadSecurityGroupId",
    "endpointNames",
    "budgetName",
    "region",
    "environment",
}


def _class_takes_tags(type_token: str) -> bool:
    """Read from the pulumi-aws SDK itself: does this resource's Args class take `tags`?"""
    _, module, class_name = type_token.split(":")
    name = module.split("/")[0]
    # `lambda` is a Python keyword: pulumi-aws spells the module `lambda_`.
    python_module = importlib.import_module(f"pulumi_aws.{name}_" if name == "lambda" else f"pulumi_aws.{name}")
    args_class = getattr(python_module, f"{class_name}Args")
    return "tags" in inspect.signature(args_class.__init__).parameters


def _aws_resources(plan: PlanRecord) -> list[ResourceRecord]:
    return [r for r in plan.resources if r.custom and r.type.startswith("aws:")]


def _documents(resource: ResourceRecord) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON policy document a resource carries, by input name."""
    for key in ("policy", "assumeRolePolicy"):
        value = resource.inputs.get(key)
        if isinstance(value, str) and value.lstrip().startswith("{"):
            yield key, json.loads(value)
    for inline in resource.inputs.get("inlinePolicies") or []:
        yield "inlinePolicies", json.loads(inline["policy"])


def _allow_statements(plan: PlanRecord) -> Iterator[tuple[str, dict[str, Any]]]:
    for resource in plan.resources:
        for key, document in _documents(resource):
            for statement in as_list(document["Statement"]):
                if statement["Effect"] == "Allow":
                    yield f"{resource.name}.{key}", statement


def test_platform_is_the_single_top_level_resource(dev: PlanRecord) -> None:
    assert [(r.type, r.name) for r in dev.children(dev.stack_urn)] == [(PLATFORM, "mlplat-dev")]


def test_platform_composes_the_foundation_components(dev: PlanRecord) -> None:
    children = dev.children(dev.get(PLATFORM, "mlplat-dev").urn)
    foundation = [(r.type, r.name) for r in children if r.type in FOUNDATION]
    assert sorted(foundation) == [
        ("mlplat:artifacts:ArtifactStore", "mlplat-dev-artifacts"),
        ("mlplat:budget:BudgetAlerts", "mlplat-dev-budget"),
        ("mlplat:endpoint:InferenceEndpoint", "mlplat-dev-abalone-dev"),
        ("mlplat:identity:Identity", "mlplat-dev-identity"),
        ("mlplat:network:Network", "mlplat-dev-network"),
        ("mlplat:tracking:TrackingServer", "mlplat-dev-tracking"),
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_stack_exports_the_documented_outputs(plans: dict[str, PlanRecord], stack: str) -> None:
    outputs = plans[stack].outputs
    assert set(outputs) >= OUTPUT_KEYS
    assert outputs["environment"] == stack
    assert all(value not in (None, "", []) for key, value in outputs.items() if key in OUTPUT_KEYS)


def test_resources_get_no_physical_names_except_where_a_name_must_be_known_early(dev: PlanRecord) -> None:
    named = sorted(
        r.type
        for r in _aws_resources(dev)
        if parent_type(r) in FOUNDATION
        and ("name" in r.inputs or (r.type == "aws:s3/bucket:Bucket" and "bucket" in r.inputs))
    )
    # Alias and log group names are referenced by policies before the resources exist (the budget enforcer's log
    # group by its key's policy); the endpoint's name by its alarms; managed MLflow is not auto-named by the
    # provider. Each is derived from its component's name.
    assert named == [
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:kms/alias:Alias",
        "aws:sagemaker/endpoint:Endpoint",
        "aws:sagemaker/mlflowApp:MlflowApp",
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_aws_resource_carries_the_stack_tags(plans: dict[str, PlanRecord], stack: str) -> None:
    plan = plans[stack]
    expected = {
        "mlplat:environment": stack,
        "mlplat:team": plan.config["team"],
        "mlplat:cost-center": plan.config["costCenter"],
    }
    taggable = [r for r in _aws_resources(plan) if _class_takes_tags(r.type)]
    wrong = [r.name for r in taggable if {k: (r.inputs.get("tags") or {}).get(k) for k in STACK_TAG_KEYS} != expected]
    assert taggable
    assert wrong == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_aws_resource_names_its_component(plans: dict[str, PlanRecord], stack: str) -> None:
    plan = plans[stack]
    untagged = [
        r.name
        for r in _aws_resources(plan)
        if _class_takes_tags(r.type) and COMPONENT_TAG not in (r.inputs.get("tags") or {})
    ]
    assert untagged == []


def test_component_tag_is_the_innermost_component(prod: PlanRecord) -> None:
    tags = {r.name: r.inputs["tags"][COMPONENT_TAG] for r in _aws_resources(prod) if "tags" in r.inputs}
    assert tags["mlplat-prod-network-vpc"] == "network"
    assert tags["mlplat-prod-artifacts-bucket"] == "artifacts"
    assert tags["mlplat-prod-tracking-server"] == "tracking"
    assert tags["mlplat-prod-identity-training-role"] == "identity"
    assert tags["mlplat-prod-abalone-prod-endpoint"] == "endpoint"
    assert tags["mlplat-prod-budget-budget"] == "budget"


def test_resources_that_take_no_tags_are_left_alone(dev: PlanRecord) -> None:
    untaggable = [r for r in _aws_resources(dev) if not _class_takes_tags(r.type)]
    assert {r.type for r in untaggable} >= {"aws:s3/bucketPolicy:BucketPolicy", "aws:iam/rolePolicy:RolePolicy"}
    assert all("tags" not in r.inputs for r in untaggable)


@pytest.mark.parametrize("stack", STACKS)
def test_no_allow_statement_grants_a_wildcard_action(plans: dict[str, PlanRecord], stack: str) -> None:
    wildcards = [
        (where, action)
        for where, statement in _allow_statements(plans[stack])
        for action in as_list(statement.get("Action", []))
        if action == "*" or action.endswith(":*")
    ]
    assert wildcards == []
    assert [where for where, statement in _allow_statements(plans[stack]) if "NotAction" in statement] == []


@pytest.mark.parametrize("stack", STACKS)
def test_no_statement_passes_every_role(plans: dict[str, PlanRecord], stack: str) -> None:
    passing = [
        where
        for where, statement in _allow_statements(plans[stack])
        if any(a.lower() in ("iam:passrole", "iam:*", "*") for a in as_list(statement.get("Action", [])))
        and "*" in as_list(statement.get("Resource", []))
    ]
    assert passing == []


@pytest.mark.parametrize("stack", STACKS)
def test_no_aws_full_access_managed_policy_is_attached(plans: dict[str, PlanRecord], stack: str) -> None:
    attached = [
        str(arn)
        for r in plans[stack].resources
        for arn in as_list(r.inputs.get("policyArn") or []) + as_list(r.inputs.get("managedPolicyArns") or [])
    ]
    assert [arn for arn in attached if arn.startswith("arn:aws:iam::aws:policy/") and "FullAccess" in arn] == []


@pytest.mark.parametrize("stack", STACKS)
def test_no_role_trusts_anything_but_an_aws_service(plans: dict[str, PlanRecord], stack: str) -> None:
    # Roles on the cluster trust its OIDC provider for one service account; their components' tests cover them.
    roles = [r for r in plans[stack].of_type("aws:iam/role:Role") if parent_type(r) in FOUNDATION]
    principals = {
        kind
        for role in roles
        for statement in as_list(json.loads(role.inputs["assumeRolePolicy"])["Statement"])
        for kind in statement["Principal"]
    }
    assert roles
    assert principals == {"Service"}
