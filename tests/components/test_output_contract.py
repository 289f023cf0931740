"""Each shipped stack's exported outputs against the model `mlplat` reads them with (mlplat/outputs.py)."""

from typing import Any

import pytest

from mlplat.outputs import StackOutputs, parse_outputs
from policies.iam_reference import arn_problem

STACKS = ("dev", "staging", "prod")
# Dev runs no cluster, so it exports none of the cluster's outputs.
CLUSTER_KEYS = {"clusterName", "clusterEndpoint", "oidcProviderArn", "teamNamespaces"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_exported_outputs_validate_into_the_model_mlplat_reads(plans: Any, stack: str) -> None:
    record = plans[stack]
    outputs = parse_outputs(record.outputs, stack, f"plan of {stack}")
    assert outputs.environment == stack
    assert outputs.endpoint_names == [f"mlplat-{stack}-abalone-{stack}"]
    assert (outputs.cluster_name is None) == (stack == "dev")


@pytest.mark.parametrize("stack", STACKS)
def test_every_key_of_the_model_is_exported_by_the_stack(plans: Any, stack: str) -> None:
    exported = set(plans[stack].outputs)
    keys = {field.alias or name for name, field in StackOutputs.model_fields.items()}
    missing = keys - exported
    assert missing == (set() if stack != "dev" else CLUSTER_KEYS)


@pytest.mark.parametrize("stack", STACKS)
def test_every_arn_output_is_well_formed_for_its_service(plans: Any, stack: str) -> None:
    outputs = parse_outputs(plans[stack].outputs, stack, f"plan of {stack}")
    arns = {
        "bucketArn": outputs.bucket_arn,
        "kmsKeyArn": outputs.kms_key_arn,
        "trackingServerArn": outputs.tracking_server_arn,
        "trainingRoleArn": outputs.training_role_arn,
        "servingRoleArn": outputs.serving_role_arn,
    }
    assert {key: arn_problem(arn) for key, arn in arns.items()} == dict.fromkeys(arns)
