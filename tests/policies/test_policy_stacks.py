"""The pack over whole stacks: the shipped stacks pass, the bad fixture stack trips at least fifteen policies."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from components.config import ENVIRONMENTS
from components.serving_deployment import ServingSpec, render_serving_deployment
from mlplat import synth
from mlplat.cloud.eks_job import TrainingJobSpec, render_training_job
from mlplat.cost.estimate import estimate
from mlplat.policy import config_path, evaluate, load_pack_config
from policies import registry
from policies.kubernetes import WORKLOAD_TYPES

PlanOf = Callable[[str], synth.PlanRecord]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

CONFIG_EXPRESSIBLE = {
    "aws-stack-tags",
    "budget-covers-peak-cost",
    "eks-supported-version",
    "gpu-instance-types-allowed",
    "gpu-pool-max-gpus",
    "spot-nodepool-on-demand-fallback",
    "log-group-retention",
    "s3-no-force-destroy",
    "sagemaker-data-capture",
    "sagemaker-endpoint-min-instances",
}


def report_of(record: synth.PlanRecord, environment: str | None = None):  # type: ignore[no-untyped-def]
    env = environment or str(record.config["environment"])
    return evaluate(record, load_pack_config(config_path(env)), f"policies/config/{env}.json", estimate(record))


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_every_shipped_stack_has_no_mandatory_violation(stack: str, plan_of: PlanOf) -> None:
    report = report_of(plan_of(stack))
    assert [(f.policy, f.urn, f.message) for f in report.mandatory] == []
    assert report.notes == ()


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_budget_policy_compares_the_same_peak_that_mlplat_cost_reports(stack: str, plan_of: PlanOf) -> None:
    record = plan_of(stack)
    assert report_of(record).estimated_peak_usd == round(estimate(record).peak_total, 2)


def test_the_training_job_and_serving_deployment_the_platform_renders_pass_every_pod_policy() -> None:
    job = render_training_job(
        TrainingJobSpec(
            name="abalone",
            namespace="research",
            image="mlplat/training:0.1.0",
            data_uri="s3://art/datasets/abalone/1/",
            checkpoint_s3_uri="s3://art/checkpoints/run/",
            tracking_uri="arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/t",
            registered_model_name="abalone",
            ranks=2,
        )
    )
    serving = render_serving_deployment(
        ServingSpec(
            name="abalone",
            namespace="applied",
            image="mlplat/serving:0.1.0",
            model_uri="models:/abalone@champion",
            tracking_uri="http://mlflow",
        )
    )
    workloads = [o for o in [*job, *serving] if f"kubernetes:{o['apiVersion']}:{o['kind']}" in WORKLOAD_TYPES]
    assert {o["kind"] for o in workloads} == {"Job", "Deployment"}
    for obj in workloads:
        type_ = f"kubernetes:{obj['apiVersion']}:{obj['kind']}"
        for spec in registry.POLICIES:
            if spec.check is not None and type_ in spec.resource_types:
                assert spec.check(type_, obj, registry.defaults(spec)) == [], (spec.name, obj["kind"])


def test_the_bad_stack_is_valid_config_that_trips_ten_policies_by_config_alone(plan_of: PlanOf) -> None:
    report = report_of(plan_of("bad"))
    assert {f.policy for f in report.findings} == CONFIG_EXPRESSIBLE
    assert report.policy_config == "policies/config/prod.json"


def _with_extras(record: synth.PlanRecord) -> tuple[synth.PlanRecord, list[dict]]:
    extras = json.loads((FIXTURES / "bad-extra-resources.json").read_text())["resources"]
    added = [
        synth.ResourceRecord(e["urn"], e["type"], e["name"], e["parent"], e["custom"], e["inputs"]) for e in extras
    ]
    plan = synth.PlanRecord(
        stack=record.stack,
        stack_file=record.stack_file,
        config=record.config,
        resources=[*record.resources, *added],
        outputs=record.outputs,
        stack_urn=record.stack_urn,
    )
    return plan, extras


def test_the_bad_stack_with_hand_made_resources_trips_at_least_fifteen_distinct_policies(plan_of: PlanOf) -> None:
    # The config model (and the components behind it) cannot express open ingress, wildcard IAM, unrotated keys,
    # public subnets, root pods or floating charts; those resources are hand-made in bad-extra-resources.json.
    plan, extras = _with_extras(plan_of("bad"))
    report = report_of(plan)
    tripped = {f.policy for f in report.findings}
    by_extra = {f.urn: set() for f in report.findings}
    for finding in report.findings:
        by_extra[finding.urn].add(finding.policy)
    for extra in extras:
        assert by_extra.get(extra["urn"]) == set(extra["trips"]), extra["name"]
    assert tripped == CONFIG_EXPRESSIBLE | {p for e in extras for p in e["trips"]}
    assert len(tripped) >= 15


def test_a_value_unknown_at_preview_becomes_a_note_not_a_violation(plan_of: PlanOf) -> None:
    record = plan_of("dev")
    bucket = next(r for r in record.resources if r.type == "aws:s3/bucket:Bucket")
    unknown = synth.ResourceRecord(
        bucket.urn,
        bucket.type,
        bucket.name,
        bucket.parent,
        True,
        {**bucket.inputs, "forceDestroy": UNKNOWN_STRING_VALUE},
    )
    plan = synth.PlanRecord(
        stack="dev",
        stack_file=record.stack_file,
        config=record.config,
        resources=[unknown if r is bucket else r for r in record.resources],
        outputs={},
        stack_urn=record.stack_urn,
    )
    report = report_of(plan, environment="staging")
    assert report.notes == (
        f"s3-no-force-destroy: can't run on {bucket.urn} during preview: string value at .forceDestroy can't be known "
        "during preview",
    )
    assert "s3-no-force-destroy" not in {f.policy for f in report.findings}


def test_the_hand_made_mlflow_policy_is_reported_action_by_action_against_aws_reference(plan_of: PlanOf) -> None:
    plan, _ = _with_extras(plan_of("bad"))
    report = report_of(plan)
    urn = "urn:pulumi:bad::mlplat::mlplat:platform:MlPlatform$aws:iam/rolePolicy:RolePolicy::mlflow-by-hand"
    app = "arn:aws:sagemaker:us-east-1:444455556666:mlflow-app/app-0123456789ab"
    assert [(f.policy, f.message) for f in report.findings if f.urn == urn] == [
        (
            "iam-actions-exist",
            "statement 'LogModels': sagemaker-mlflow:CreateLoggedModel is not an action in AWS's authorization "
            "reference for sagemaker-mlflow.",
        ),
        (
            "iam-actions-exist",
            f"statement 'UseApp': sagemaker-mlflow:CreateRun is granted on {app}, but it applies to "
            "mlflow-tracking-server (arn:${Partition}:sagemaker:${Region}:${Account}:mlflow-tracking-server/"
            "${MlflowTrackingServerName}).",
        ),
        (
            "iam-arns-well-formed",
            "statement 'ReadData': Resource 'mlplat-prod-artifacts/datasets/*' is not an ARN "
            "(expected arn:<partition>:<service>:<region>:<account>:<resource>).",
        ),
    ]
