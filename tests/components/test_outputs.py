"""What each shipped stack exports is exactly what the tools' outputs model reads."""

import pytest

from components.outputs import StackOutputs
from mlplat import synth

STACKS = ["dev", "staging", "prod"]
REQUIRED = [field for field, info in StackOutputs.model_fields.items() if info.is_required()]


@pytest.mark.parametrize("stack", STACKS)
def test_every_export_of_the_stack_is_a_field_of_the_outputs_model(stack: str, plans: object) -> None:
    record: synth.PlanRecord = plans[stack]  # type: ignore[index]
    names = {StackOutputs.output_name(field) for field in StackOutputs.model_fields}

    assert sorted(set(record.outputs) - names) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_exports_validate_against_the_outputs_model(stack: str, plans: object) -> None:
    record: synth.PlanRecord = plans[stack]  # type: ignore[index]

    outputs = StackOutputs.model_validate(record.outputs)

    assert outputs.environment == stack
    assert outputs.bucket_name == record.outputs["bucketName"]
    assert len(outputs.endpoint_names) == len(record.outputs["endpointNames"]) >= 1


def test_exports_refuse_a_stack_without_a_required_output() -> None:
    with pytest.raises(TypeError, match=r"missing \['bucket_name'\]"):
        StackOutputs.exports(**{f: "x" for f in REQUIRED if f != "bucket_name"})


def test_exports_refuse_a_name_the_model_does_not_know() -> None:
    values = dict.fromkeys(REQUIRED, "x")

    with pytest.raises(TypeError, match=r"unknown \['bucket'\]"):
        StackOutputs.exports(**values, bucket="b")
