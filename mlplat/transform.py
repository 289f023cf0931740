"""`mlplat transform`: score files in S3 with a released model version, as a SageMaker Batch Transform job.

The job runs the serving image on the artifact `mlplat release` put in the stack's bucket
(`models/<name>/<version>/model.tar.gz`), with SplitType=Line and BatchStrategy=MultiRecord: CSV or JSON Lines in,
one output line per input line, in order. Both requests (CreateModel, CreateTransformJob) are checked against
botocore's SageMaker service model before anything is sent; `--dry-run` prints them and sends nothing.

With `--local` the same contract runs on the local platform instead (`mlplat.local.transform`): a serving process
for the registered version `--model NAME[/VERSION|@ALIAS]` names, over the local S3 store.
"""

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from components import config as stack_config
from mlplat import clikit
from mlplat.cloud.common import resolve_image
from mlplat.local.cli import HomeOption, LocalFlag
from mlplat.outputs import CloudError, StackOutputs, load_outputs
from mlplat.release import artifact_key

CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/jsonlines"}
_NAME = re.compile(r"[^a-zA-Z0-9-]+")


class TransformError(CloudError):
    """The transform cannot be started; the message says why."""


@dataclass(frozen=True)
class TransformPlan:
    """The two SageMaker requests of one transform."""

    create_model: dict[str, Any]
    create_transform_job: dict[str, Any]


def _name(*parts: str) -> str:
    """A SageMaker resource name: letters, digits and hyphens, at most 63 characters."""
    return _NAME.sub("-", "-".join(parts)).strip("-")[:63].rstrip("-")


def serving_image(image: str, outputs: StackOutputs) -> str:
    """The image URI SageMaker pulls: a short name resolves to the stack account's ECR in its region."""
    return resolve_image(image, outputs, outputs.serving_role_arn)


def _s3_uri(uri: str, option: str) -> str:
    if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?", uri):
        raise TransformError(f"{option} must be an s3://bucket/prefix URI (got {uri!r})")
    return uri


def plan_transform(
    outputs: StackOutputs,
    image: str,
    model: str,
    version: int,
    input_uri: str,
    output_uri: str,
    data_format: str = "csv",
    instance_type: str = "ml.m5.large",
    instance_count: int = 1,
    job_name: str | None = None,
) -> TransformPlan:
    """The CreateModel and CreateTransformJob requests, validated against botocore's service model."""
    if data_format not in CONTENT_TYPES:
        raise TransformError(f"--format must be one of {', '.join(CONTENT_TYPES)} (got {data_format!r})")
    content_type = CONTENT_TYPES[data_format]
    model_name = _name(outputs.environment, model, f"v{version}")
    create_model = {
        "ModelName": model_name,
        "ExecutionRoleArn": outputs.serving_role_arn,
        "PrimaryContainer": {
            "Image": serving_image(image, outputs),
            "ModelDataUrl": f"s3://{outputs.bucket_name}/{artifact_key(model, version)}",
            "Environment": {"MLPLAT_MODEL_NAME": model, "MLPLAT_MODEL_VERSION": str(version)},
        },
        "VpcConfig": {
            "SecurityGroupIds": [outputs.workload_security_group_id],
            "Subnets": list(outputs.private_subnet_ids),
        },
        "EnableNetworkIsolation": False,
    }
    create_job = {
        "TransformJobName": job_name or _name(model_name, time.strftime("%Y%m%d-%H%M%S", time.gmtime())),
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": _s3_uri(input_uri, "--input")}},
            "ContentType": content_type,
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": _s3_uri(output_uri, "--output"),
            "Accept": content_type,
            "AssembleWith": "Line",
            "KmsKeyId": outputs.kms_key_arn,
        },
        "TransformResources": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeKmsKeyId": outputs.kms_key_arn,
        },
        "Tags": [{"Key": "mlplat:model", "Value": f"{model}/{version}"}],
    }
    validate_request("CreateModel", create_model)
    validate_request("CreateTransformJob", create_job)
    return TransformPlan(create_model, create_job)


def validate_request(operation: str, params: dict[str, Any]) -> None:
    """Raise TransformError naming every problem botocore's SageMaker model finds in `params` (types, enums, lengths,
    patterns checked by botocore's validator; values it does not check are SageMaker's to refuse)."""
    import botocore.session
    from botocore.validate import ParamValidator

    service = botocore.session.get_session().get_service_model("sagemaker")
    shape = service.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        problems = "; ".join(line.strip() for line in report.generate_report().splitlines() if line.strip())
        raise TransformError(f"{operation} request is invalid: {problems}")
    for field in ("InstanceType",):
        value = params.get("TransformResources", {}).get(field)
        if value is not None:
            allowed = shape.members["TransformResources"].members[field].enum
            if allowed and value not in allowed:
                raise TransformError(f"--instance-type {value!r} is not a Batch Transform instance type")


def start_transform(plan: TransformPlan, outputs: StackOutputs, sagemaker: Any, s3: Any) -> str:
    """Create the model (once per version) and start the job; its name."""
    key = plan.create_model["PrimaryContainer"]["ModelDataUrl"].split("/", 3)[3]
    try:
        s3.head_object(Bucket=outputs.bucket_name, Key=key)
    except Exception as exc:
        raise TransformError(
            f"s3://{outputs.bucket_name}/{key} is not in the bucket: run `mlplat release` for this version first"
        ) from exc
    try:
        sagemaker.describe_model(ModelName=plan.create_model["ModelName"])
    except Exception:
        sagemaker.create_model(**plan.create_model)
    sagemaker.create_transform_job(**plan.create_transform_job)
    return str(plan.create_transform_job["TransformJobName"])


def transform_command(
    model: Annotated[
        str, typer.Option("--model", help="the registered model: NAME, or with --local NAME/VERSION or NAME@ALIAS")
    ],
    input_uri: Annotated[str, typer.Option("--input", help="s3:// prefix of the input files")],
    output_uri: Annotated[str, typer.Option("--output", help="s3:// prefix for the outputs")],
    version: Annotated[int | None, typer.Option("--version", min=1, help="the released version to run (cloud)")] = None,
    stack: clikit.StackOption = None,
    data_format: Annotated[str, typer.Option("--format", help="csv or jsonl (one record a line)")] = "csv",
    instance_type: Annotated[
        str, typer.Option("--instance-type", help="Batch Transform instance type")
    ] = "ml.m5.large",
    instance_count: Annotated[int, typer.Option("--instance-count", min=1, help="instances")] = 1,
    outputs: clikit.OutputsOption = None,
    stack_file: clikit.StackFileOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the validated requests; send nothing")] = False,
    local: LocalFlag = False,
    home: HomeOption = None,
    as_json: clikit.JsonFlag = False,
) -> None:
    """Score every line of the files under --input with a registered model version; results go under --output."""
    if local:
        _transform_local(model, input_uri, output_uri, data_format, home, as_json)
        return
    try:
        model, version = _released_version(model, version)
        stack, path = clikit.resolve_stack(stack, stack_file)
        config = stack_config.load_stack_file(path)
        stack_outputs = load_outputs(stack, outputs)
        plan = plan_transform(
            stack_outputs,
            config.images.serving,
            model,
            version,
            input_uri,
            output_uri,
            data_format,
            instance_type,
            instance_count,
        )
        if dry_run:
            typer.echo(
                json.dumps(
                    {"CreateModel": plan.create_model, "CreateTransformJob": plan.create_transform_job}, indent=2
                )
            )
            return
        import boto3

        session = boto3.session.Session(region_name=stack_outputs.region)
        job = start_transform(plan, stack_outputs, session.client("sagemaker"), session.client("s3"))
    except (CloudError, stack_config.ConfigError, clikit.CliError) as exc:
        raise typer.Exit(clikit.report(exc)) from None
    if as_json:
        clikit.emit_json({"job": job, "input": input_uri, "output": output_uri}, True)
        return
    typer.echo(f"started transform job {job}: {input_uri} -> {output_uri}")


def _released_version(model: str, version: int | None) -> tuple[str, int]:
    """The model name and released version of a cloud transform: `--version`, or `--model NAME/VERSION`."""
    from mlplat.local.transform import parse_model

    ref = parse_model(model)
    if ref.alias is not None:
        raise clikit.BadInput(f"--model {model}: aliases resolve only with --local; name the released version")
    if ref.version is not None and version is not None and int(ref.version) != version:
        raise clikit.BadInput(f"--model {model} and --version {version} name different versions")
    if ref.version is None and version is None:
        raise clikit.BadInput("--version is required without --local (the released version to run)")
    return ref.name, version if version is not None else int(str(ref.version))


def _transform_local(
    model: str, input_uri: str, output_uri: str, data_format: str, home: Path | None, as_json: bool
) -> None:
    """The transform on the local platform, waited for: one line per output object, or the report as JSON."""
    from mlplat.local import state
    from mlplat.local.transform import run_transform

    err = clikit.console(stderr=True)
    endpoints = state.discover(home)
    report = run_transform(endpoints, model, input_uri, output_uri, data_format, on_step=lambda s: err.print(s))
    if as_json:
        clikit.emit_json(report.to_json(), True)
        return
    typer.echo(
        f"transformed {report.records} records with {report.model}/{report.version} in {report.requests} "
        f"request(s), {report.seconds:.1f} s: {input_uri} -> {output_uri}"
    )
    for uri in report.outputs:
        typer.echo(uri)


def register(app: typer.Typer) -> None:
    """Add `mlplat transform` to the root app."""
    clikit.command(app, "transform", transform_command, panel=clikit.CLOUD)
