"""`mlplat transform` against moto: the CreateModel and CreateTransformJob requests of a released version, checked
against botocore's SageMaker service model, SplitType=Line with MultiRecord, and nothing sent on --dry-run."""

import json
from collections.abc import Callable

import boto3
import pytest
from cloud_support import FakeStack
from typer.testing import CliRunner

from mlplat.cli import app
from mlplat.release import artifact_key
from mlplat.transform import TransformError, validate_request

runner = CliRunner()


def transform(stack: FakeStack, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["transform", "--stack", stack.name, "--model", stack.model, "--version", "3",
         "--input", "s3://inputs-bucket/batch/", "--output", "s3://outputs-bucket/scored/",
         "--outputs", str(stack.outputs_file), "--stack-file", str(stack.stack_file), *args],
    )  # fmt: skip
    return result.exit_code, result.output


def test_a_dry_run_prints_line_split_multi_record_requests_for_the_released_artifact(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = make_stack("dev")
    code, output = transform(stack, "--dry-run")
    assert code == 0, output
    requests = json.loads(output)
    container = requests["CreateModel"]["PrimaryContainer"]
    job = requests["CreateTransformJob"]
    assert container["ModelDataUrl"] == f"s3://{stack.bucket}/models/{stack.model}/3/model.tar.gz"
    assert requests["CreateModel"]["ExecutionRoleArn"] == stack.outputs["servingRoleArn"]
    assert (job["BatchStrategy"], job["TransformInput"]["SplitType"], job["TransformOutput"]["AssembleWith"]) == (
        "MultiRecord",
        "Line",
        "Line",
    )
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://inputs-bucket/batch/"
    assert (job["TransformInput"]["ContentType"], job["TransformOutput"]["Accept"]) == ("text/csv", "text/csv")
    assert job["TransformOutput"]["KmsKeyId"] == stack.outputs["kmsKeyArn"]
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    assert job["ModelName"] not in [m["ModelName"] for m in sagemaker.list_models()["Models"]]


def test_a_transform_of_a_released_version_creates_its_model_and_starts_the_job(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = make_stack("dev")
    stack.s3().put_object(Bucket=stack.bucket, Key=artifact_key(stack.model, 3), Body=b"archive")
    code, output = transform(stack, "--format", "jsonl")
    assert code == 0, output
    job_name = output.split()[3].rstrip(":")
    described = boto3.client("sagemaker", region_name="us-east-1").describe_transform_job(TransformJobName=job_name)
    assert described["ModelName"] == f"dev-{stack.model}-v3"
    assert described["TransformInput"]["ContentType"] == "application/jsonlines"


def test_with_json_the_started_job_is_reported_as_json(make_stack: Callable[..., FakeStack]) -> None:
    stack = make_stack("dev")
    stack.s3().put_object(Bucket=stack.bucket, Key=artifact_key(stack.model, 3), Body=b"archive")
    code, output = transform(stack, "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report == {
        "job": report["job"],
        "input": "s3://inputs-bucket/batch/",
        "output": "s3://outputs-bucket/scored/",
    }
    assert report["job"].startswith(f"dev-{stack.model}-v3-")


def test_a_version_that_was_never_released_is_refused_before_anything_is_created(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = make_stack("dev")
    code, output = transform(stack)
    assert code == 1
    key = artifact_key(stack.model, 3)
    assert output.strip() == (
        f"error: s3://{stack.bucket}/{key} is not in the bucket: run `mlplat release` for this version first"
    )


def test_an_instance_type_batch_transform_does_not_offer_is_refused_naming_it(
    make_stack: Callable[..., FakeStack],
) -> None:
    code, output = transform(make_stack("dev"), "--instance-type", "ml.fake.huge", "--dry-run")
    assert (code, output.strip()) == (1, "error: --instance-type 'ml.fake.huge' is not a Batch Transform instance type")


def test_botocores_service_model_refuses_a_request_of_the_wrong_shape() -> None:
    with pytest.raises(TransformError) as raised:
        validate_request("CreateTransformJob", {"TransformJobName": "x", "ModelName": "m"})
    assert str(raised.value) == (
        'CreateTransformJob request is invalid: Missing required parameter in input: "TransformInput"; '
        'Missing required parameter in input: "TransformOutput"; '
        'Missing required parameter in input: "TransformResources"'
    )


def _dry_run(stack: FakeStack, model: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["transform", "--stack", stack.name, "--model", model, "--dry-run",
         "--input", "s3://inputs-bucket/batch/", "--output", "s3://outputs-bucket/scored/",
         "--outputs", str(stack.outputs_file), "--stack-file", str(stack.stack_file), *args],
    )  # fmt: skip
    return result.exit_code, result.output


def test_the_model_may_name_its_released_version_as_name_slash_version(make_stack: Callable[..., FakeStack]) -> None:
    stack = make_stack("dev")
    code, output = _dry_run(stack, f"{stack.model}/3")
    assert code == 0, output
    assert json.loads(output)["CreateModel"]["ModelName"] == f"dev-{stack.model}-v3"


def test_an_alias_is_refused_without_local(make_stack: Callable[..., FakeStack]) -> None:
    stack = make_stack("dev")
    assert _dry_run(stack, f"{stack.model}@champion") == (
        2,
        f"error: --model {stack.model}@champion: aliases resolve only with --local; name the released version\n",
    )


def test_a_model_version_and_a_different_version_option_are_refused(make_stack: Callable[..., FakeStack]) -> None:
    stack = make_stack("dev")
    assert _dry_run(stack, f"{stack.model}/3", "--version", "4") == (
        2,
        f"error: --model {stack.model}/3 and --version 4 name different versions\n",
    )
