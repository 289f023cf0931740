"""The synthesis engine (`mlplat.synth`): what the offline plan of each shipped stack records."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlplat import synth
from mlplat.synth import PlanRecord

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "mlplat" / "plan.schema.json").read_text())
STACKS = ["dev", "staging", "prod"]

NAT = "aws:ec2/natGateway:NatGateway"
SUBNET = "aws:ec2/subnet:Subnet"
ENDPOINTS = "aws:ec2/vpcEndpoint:VpcEndpoint"
APP = "aws:sagemaker/mlflowApp:MlflowApp"
SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
IGW = "aws:ec2/internetGateway:InternetGateway"

# Exact counts of the types the foundation owns, per stack.
KEY_COUNTS = {
    "dev": {NAT: 0, "aws:ec2/eip:Eip": 0, IGW: 0, SUBNET: 2, ENDPOINTS: 7, APP: 1, SERVER: 0},
    "staging": {NAT: 1, "aws:ec2/eip:Eip": 1, IGW: 1, SUBNET: 6, ENDPOINTS: 7, APP: 1, SERVER: 0},
    "prod": {NAT: 3, "aws:ec2/eip:Eip": 3, IGW: 1, SUBNET: 6, ENDPOINTS: 7, APP: 0, SERVER: 1},
}
ONE_EACH = [
    "mlplat:platform:MlPlatform",
    "mlplat:network:Network",
    "mlplat:artifacts:ArtifactStore",
    "mlplat:tracking:TrackingServer",
    "mlplat:identity:Identity",
    "mlplat:budget:BudgetAlerts",
    "mlplat:endpoint:InferenceEndpoint",
    "aws:ec2/vpc:Vpc",
    "aws:ec2/flowLog:FlowLog",
    "aws:s3/bucket:Bucket",
    "aws:budgets/budget:Budget",
    "aws:sagemaker/model:Model",
    "aws:sagemaker/endpoint:Endpoint",
    "aws:appautoscaling/target:Target",
]


@pytest.fixture(scope="module")
def plans() -> dict[str, PlanRecord]:
    """Each shipped stack, synthesized one after another in this process."""
    return {stack: synth.synthesize_stack(stack) for stack in STACKS}


@pytest.mark.parametrize("stack", STACKS)
def test_key_resource_counts_per_stack(plans: dict[str, PlanRecord], stack: str) -> None:
    counts = plans[stack].counts
    assert {t: counts.get(t, 0) for t in KEY_COUNTS[stack]} == KEY_COUNTS[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_the_foundation_is_built_once_per_stack(plans: dict[str, PlanRecord], stack: str) -> None:
    counts = plans[stack].counts
    assert {t: counts.get(t, 0) for t in ONE_EACH} == dict.fromkeys(ONE_EACH, 1)


@pytest.mark.parametrize("stack", STACKS)
def test_the_record_validates_against_the_plan_schema(plans: dict[str, PlanRecord], stack: str) -> None:
    jsonschema.validate(plans[stack].to_json(), SCHEMA)


@pytest.mark.parametrize("stack", STACKS)
def test_counts_add_up_to_the_recorded_resources(plans: dict[str, PlanRecord], stack: str) -> None:
    record = plans[stack].to_json()
    assert sum(record["counts"].values()) == len(record["resources"])
    assert list(record["counts"]) == sorted(record["counts"])


@pytest.mark.parametrize("stack", STACKS)
def test_every_parent_is_recorded_before_its_children(plans: dict[str, PlanRecord], stack: str) -> None:
    seen = {plans[stack].stack_urn}
    for resource in plans[stack].resources:
        assert resource.parent in seen, resource.urn
        seen.add(resource.urn)


def test_component_and_custom_resources_are_told_apart(plans: dict[str, PlanRecord]) -> None:
    kinds = {(r.type.startswith("mlplat:"), r.custom) for r in plans["dev"].resources}
    assert kinds == {(True, False), (False, True)}


def test_the_record_names_its_stack_file_and_carries_the_validated_config(plans: dict[str, PlanRecord]) -> None:
    record = plans["prod"].to_json()
    assert (record["schemaVersion"], record["project"], record["stack"]) == (1, "mlplat", "prod")
    assert record["stackFile"] == "stacks/Pulumi.prod.yaml"
    assert record["config"]["network"] == {
        "cidr": "10.40.0.0/16",
        "azCount": 3,
        "nat": "per-az",
        "flowLogRetentionDays": 365,
    }
    assert record["config"]["artifacts"]["abortMultipartDays"] == 7


def test_inputs_use_the_engines_camel_case_keys_with_outputs_resolved(plans: dict[str, PlanRecord]) -> None:
    (vpc,) = plans["dev"].of_type("aws:ec2/vpc:Vpc")
    (subnet, _) = plans["dev"].of_type(SUBNET)
    assert vpc.inputs["cidrBlock"] == "10.20.0.0/16"
    assert subnet.inputs["vpcId"] == plans["dev"].outputs["vpcId"]


def test_the_records_are_the_same_every_time(plans: dict[str, PlanRecord]) -> None:
    assert synth.synthesize_stack("dev").to_json() == plans["dev"].to_json()


def test_stacks_synthesized_in_one_process_do_not_leak_into_each_other(plans: dict[str, PlanRecord]) -> None:
    assert all(r.urn.startswith("urn:pulumi:dev::") for r in plans["dev"].resources)
    assert {r.inputs["tags"]["mlplat:environment"] for r in plans["staging"].resources if "tags" in r.inputs} == {
        "staging"
    }


def test_any_stack_file_can_be_planned_under_any_stack_name(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.dev.yaml").read_text())
    changed = copy.deepcopy(document)
    changed["config"]["mlplat:network"] |= {"cidr": "10.99.0.0/20", "azCount": 3, "nat": "single"}
    path = tmp_path / "Pulumi.sandbox.yaml"
    path.write_text(yaml.safe_dump(changed))
    record = synth.synthesize(path, "sandbox")
    assert record.stack_file == str(path)
    assert record.counts[NAT] == 1
    assert record.of_type("aws:ec2/vpc:Vpc")[0].inputs["cidrBlock"] == "10.99.0.0/20"
    assert record.resources[0].urn == "urn:pulumi:sandbox::mlplat::mlplat:platform:MlPlatform::mlplat-dev"


def test_resource_options_that_matter_are_recorded(plans: dict[str, PlanRecord]) -> None:
    (server,) = plans["prod"].of_type(SERVER)
    (lifecycle,) = plans["prod"].of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    versioning = plans["prod"].get("aws:s3/bucketVersioning:BucketVersioning", "mlplat-prod-artifacts-versioning")
    assert server.options["customTimeouts"] == {"create": "90m", "update": "90m"}
    assert versioning.urn in lifecycle.options["dependsOn"]


def test_a_program_failure_is_a_synthesis_error_naming_the_stack() -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    with pytest.raises(synth.SynthesisError, match=r"^sandbox: the program failed under mocks: boom$"):
        synth.run(broken, stack="sandbox")


def test_an_invoke_without_an_offline_answer_is_named() -> None:
    import pulumi_aws as aws

    def program() -> None:
        aws.ec2.get_vpc_output(default=True).id.apply(str)

    with pytest.raises(synth.SynthesisError, match=r"aws:ec2/getVpc:getVpc"):
        synth.run(program)
