"""Stack outputs: read from a JSON file or the Pulumi CLI, validated with every missing key named."""

import json
from pathlib import Path

import pytest
from cloud_support import make_outputs

from mlplat.outputs import OutputsError, StackOutputs, load_outputs, parse_outputs

KMS = "arn:aws:kms:us-east-1:123456789012:key/1234"


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(data))
    return path


def test_outputs_file_is_parsed_into_typed_fields(tmp_path: Path) -> None:
    outputs = load_outputs("prod", write(tmp_path, make_outputs("prod", "bucket-a", KMS)))

    assert isinstance(outputs, StackOutputs)
    assert outputs.bucket_name == "bucket-a"
    assert outputs.private_subnet_ids == ["subnet-0aaa1111", "subnet-0bbb2222"]
    assert outputs.kms_key_arn == KMS
    assert outputs.cluster_name == "mlplat-prod"


def test_every_missing_output_is_named_in_one_message(tmp_path: Path) -> None:
    data = make_outputs("prod", "bucket-a", KMS)
    del data["kmsKeyArn"], data["trainingRoleArn"]
    data["privateSubnetIds"] = []
    path = write(tmp_path, data)

    with pytest.raises(OutputsError) as caught:
        load_outputs("prod", path)

    assert str(caught.value) == (
        f"stack 'prod' outputs ({path}) are missing privateSubnetIds, kmsKeyArn, trainingRoleArn"
    )


def test_cluster_name_is_optional_for_a_stack_without_a_cluster(tmp_path: Path) -> None:
    data = make_outputs("dev", "bucket-a", KMS)
    del data["clusterName"]

    assert load_outputs("dev", write(tmp_path, data)).cluster_name is None


def test_outputs_of_another_stack_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, make_outputs("staging", "bucket-a", KMS))

    with pytest.raises(OutputsError) as caught:
        load_outputs("prod", path)

    assert str(caught.value) == f"{path} holds the outputs of stack 'staging', not 'prod'; pass the outputs of 'prod'"


def test_a_missing_outputs_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(OutputsError) as caught:
        load_outputs("prod", tmp_path / "nope.json")

    assert str(caught.value) == f"no outputs for stack 'prod': {tmp_path / 'nope.json'} does not exist"


def test_an_outputs_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text("bucketName: x\n")

    with pytest.raises(OutputsError) as caught:
        load_outputs("prod", path)

    assert str(caught.value) == f"no outputs for stack 'prod': {path} is not JSON (Expecting value at line 1)"


def test_outputs_that_are_not_an_object_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, ["bucketName"])

    with pytest.raises(OutputsError) as caught:
        load_outputs("prod", path)

    assert str(caught.value) == (
        f"no outputs for stack 'prod': {path} must hold a JSON object of output names to values"
    )


def test_without_a_file_or_the_pulumi_cli_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` binary anywhere
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))

    with pytest.raises(OutputsError) as caught:
        load_outputs("prod", None, work_dir=tmp_path)

    assert str(caught.value) == "no outputs for stack 'prod': pass --outputs FILE or install the Pulumi CLI"


def test_outputs_with_a_wrongly_typed_value_name_the_key(tmp_path: Path) -> None:
    data = make_outputs("prod", "bucket-a", KMS)
    data["privateSubnetIds"] = "subnet-1"

    with pytest.raises(OutputsError) as caught:
        parse_outputs(data, "prod", "outputs.json")

    assert str(caught.value) == (
        "stack 'prod' outputs (outputs.json) have bad values: privateSubnetIds (Input should be a valid list)"
    )
