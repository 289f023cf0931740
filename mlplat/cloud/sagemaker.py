"""The SageMaker training launcher: one `CreateTrainingJob` request as plain data, submitted and followed.

The job is a `CreateTrainingJob` request built here as one plain dict (`training_job_request`), so what is
sent is reviewable and testable. It is submitted through the SageMaker Python SDK v3 when the `cloud` extra is
installed, and through boto3 otherwise; both send the same request. Of the SDK we use its resource layer,
`sagemaker.core.resources.TrainingJob.create` with the typed shapes of `sagemaker.core.shapes` (package
`sagemaker-core`), which expresses every setting below. Not `sagemaker.train.ModelTrainer`: it always appends its own
timestamp to the job name (so the checkpoint prefix, which names the job, cannot be set before the call), validates
the role with `iam:SimulatePrincipalPolicy` (the stack scoped that role already, and a CI deployer has no IAM read
rights), and sends usage telemetry to an AWS endpoint on every call. Not the `sagemaker` meta-package either: it
resolves only by backtracking to a 2020 `s3fs`, and its `sagemaker-mlflow` plugin logs a warning on every MLflow
request to an http tracking server. The extra stays optional because boto3 expresses the same request, and
`sagemaker-core` downgrades `rich` and `importlib-metadata` of the base install.

The request sets: the stack's training image and role; the private subnets and workload security group; network
isolation and inter-container traffic encryption; the stack's KMS key for the volume and the output; the input channel
`train` from `datasets/<name>/<version>/`; output under `training-jobs/` and checkpoints under `checkpoints/<job>/`
(SageMaker syncs `/opt/ml/checkpoints` there, so a spot job resumes after an interruption); managed spot with a max
wait; the hyperparameters; and the stack's cost tags.
"""

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contracts import bucket as layout
from mlplat.cloud.common import (
    DEFAULT_EXPERIMENT,
    SageMakerJob,
    TrainError,
    TrainingRun,
    check_dataset,
    resolve_image,
)
from mlplat.cloud.registration import find_run, register_from_artifact

CHANNEL = "train"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
ISOLATED_TRACKING_URI = "sqlite:////tmp/mlflow.db"  # the isolated container's own throwaway store
TERMINAL = ("Completed", "Failed", "Stopped")
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def plan_sagemaker_job(
    run: TrainingRun,
    *,
    instance_type: str = "ml.m5.xlarge",
    instances: int = 1,
    spot: bool = False,
    max_runtime_seconds: int = 4 * 3600,
    max_wait_seconds: int | None = None,
    volume_gb: int = 30,
    network_isolation: bool = True,
    experiment: str = DEFAULT_EXPERIMENT,
    epochs: int | None = None,
    hyperparameters: Mapping[str, str] | None = None,
    image: str | None = None,
) -> SageMakerJob:
    """The job for this stack; raises TrainError naming the bad setting."""
    outputs, cfg, model, job_name = run.outputs, run.cfg, run.model, run.job_name
    if not _JOB_NAME.match(job_name):
        raise TrainError(f"--job-name must be 1-63 letters, digits and hyphens (got {job_name!r})")
    if instances < 1:
        raise TrainError(f"--instances must be >= 1 (got {instances})")
    if spot:
        max_wait_seconds = max_wait_seconds if max_wait_seconds is not None else 2 * max_runtime_seconds
        if max_wait_seconds < max_runtime_seconds:
            raise TrainError(
                f"--max-wait must be >= --max-runtime (got {max_wait_seconds} < {max_runtime_seconds} seconds)"
            )
    elif max_wait_seconds is not None:
        raise TrainError("--max-wait applies to spot capacity only; add --spot or drop --max-wait")
    bucket = outputs.bucket_name
    params = {"registered_model_name": model, "experiment_name": experiment}
    if epochs is not None:
        params["epochs"] = str(epochs)
    params.update(hyperparameters or {})
    training_image = resolve_image(image or cfg.images.training, outputs)
    environment = {"MLPLAT_IMAGE": training_image, "MLPLAT_ENVIRONMENT": cfg.environment}
    if network_isolation:
        environment["MLFLOW_TRACKING_URI"] = ISOLATED_TRACKING_URI
    else:
        environment["MLFLOW_TRACKING_URI"] = run.tracking_uri
    return SageMakerJob(
        name=job_name,
        image=training_image,
        role_arn=outputs.training_role_arn,
        subnets=tuple(outputs.private_subnet_ids),
        security_group_ids=(outputs.workload_security_group_id,),
        kms_key_arn=outputs.kms_key_arn,
        data_uri=layout.s3_uri(bucket, layout.dataset_prefix(run.dataset, run.dataset_version)),
        output_uri=layout.s3_uri(bucket, layout.TRAINING_OUTPUT_PREFIX),
        checkpoint_uri=layout.s3_uri(bucket, layout.checkpoint_prefix(job_name)),
        instance_type=instance_type,
        instance_count=instances,
        volume_gb=volume_gb,
        spot=spot,
        max_runtime_seconds=max_runtime_seconds,
        max_wait_seconds=max_wait_seconds if spot else None,
        network_isolation=network_isolation,
        hyperparameters=params,
        environment=environment,
        tags={**cfg.tags, "mlplat:component": "training"},
    )


def training_job_request(job: SageMakerJob) -> dict[str, Any]:
    """The `CreateTrainingJob` request (boto3 shape) for a planned job."""
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": job.max_runtime_seconds}
    if job.spot and job.max_wait_seconds is not None:
        stopping["MaxWaitTimeInSeconds"] = job.max_wait_seconds
    return {
        "TrainingJobName": job.name,
        "AlgorithmSpecification": {"TrainingImage": job.image, "TrainingInputMode": "File"},
        "RoleArn": job.role_arn,
        "HyperParameters": dict(job.hyperparameters),
        "InputDataConfig": [
            {
                "ChannelName": CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": job.data_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
                "InputMode": "File",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": job.output_uri, "KmsKeyId": job.kms_key_arn},
        "ResourceConfig": {
            "InstanceType": job.instance_type,
            "InstanceCount": job.instance_count,
            "VolumeSizeInGB": job.volume_gb,
            "VolumeKmsKeyId": job.kms_key_arn,
        },
        "VpcConfig": {"SecurityGroupIds": list(job.security_group_ids), "Subnets": list(job.subnets)},
        "StoppingCondition": stopping,
        "EnableNetworkIsolation": job.network_isolation,
        "EnableInterContainerTrafficEncryption": True,
        "EnableManagedSpotTraining": job.spot,
        "CheckpointConfig": {"S3Uri": job.checkpoint_uri, "LocalPath": CHECKPOINT_LOCAL_PATH},
        "Environment": dict(job.environment),
        "Tags": [{"Key": k, "Value": v} for k, v in job.tags.items()],
    }


# --- submission ---------------------------------------------------------------------------------------------------


def sdk_available() -> bool:
    """True when the SageMaker Python SDK (the `cloud` extra) is installed."""
    try:
        import sagemaker.core.resources  # noqa: F401
    except ImportError:
        return False
    return True


def _submit_with_sdk(request: Mapping[str, Any], boto_session: Any) -> None:
    from sagemaker.core import shapes
    from sagemaker.core.resources import TrainingJob

    TrainingJob.create(
        training_job_name=request["TrainingJobName"],
        role_arn=request["RoleArn"],
        algorithm_specification=shapes.AlgorithmSpecification(
            training_image=request["AlgorithmSpecification"]["TrainingImage"],
            training_input_mode=request["AlgorithmSpecification"]["TrainingInputMode"],
        ),
        hyper_parameters=request["HyperParameters"],
        input_data_config=[
            shapes.Channel(
                channel_name=channel["ChannelName"],
                data_source=shapes.DataSource(
                    s3_data_source=shapes.S3DataSource(
                        s3_data_type=channel["DataSource"]["S3DataSource"]["S3DataType"],
                        s3_uri=channel["DataSource"]["S3DataSource"]["S3Uri"],
                        s3_data_distribution_type=channel["DataSource"]["S3DataSource"]["S3DataDistributionType"],
                    )
                ),
                content_type=channel["ContentType"],
                input_mode=channel["InputMode"],
            )
            for channel in request["InputDataConfig"]
        ],
        output_data_config=shapes.OutputDataConfig(
            s3_output_path=request["OutputDataConfig"]["S3OutputPath"],
            kms_key_id=request["OutputDataConfig"]["KmsKeyId"],
        ),
        resource_config=shapes.ResourceConfig(
            instance_type=request["ResourceConfig"]["InstanceType"],
            instance_count=request["ResourceConfig"]["InstanceCount"],
            volume_size_in_gb=request["ResourceConfig"]["VolumeSizeInGB"],
            volume_kms_key_id=request["ResourceConfig"]["VolumeKmsKeyId"],
        ),
        vpc_config=shapes.VpcConfig(
            security_group_ids=request["VpcConfig"]["SecurityGroupIds"], subnets=request["VpcConfig"]["Subnets"]
        ),
        stopping_condition=shapes.StoppingCondition(
            max_runtime_in_seconds=request["StoppingCondition"]["MaxRuntimeInSeconds"],
            max_wait_time_in_seconds=request["StoppingCondition"].get("MaxWaitTimeInSeconds"),
        ),
        enable_network_isolation=request["EnableNetworkIsolation"],
        enable_inter_container_traffic_encryption=request["EnableInterContainerTrafficEncryption"],
        enable_managed_spot_training=request["EnableManagedSpotTraining"],
        checkpoint_config=shapes.CheckpointConfig(
            s3_uri=request["CheckpointConfig"]["S3Uri"], local_path=request["CheckpointConfig"]["LocalPath"]
        ),
        environment=request["Environment"],
        # Plain dicts: `create` validates them into its own Tag model (a `shapes.Tag` is refused as another class).
        tags=[{"key": tag["Key"], "value": tag["Value"]} for tag in request["Tags"]],
        session=boto_session,
        region=boto_session.region_name,
    )


def submit(request: Mapping[str, Any], boto_session: Any, use_sdk: bool | None = None) -> str:
    """Create the training job (SDK when installed, else boto3); returns the backend used."""
    from botocore.exceptions import ClientError

    if use_sdk is None:
        use_sdk = sdk_available()
    try:
        if use_sdk:
            _submit_with_sdk(request, boto_session)
            return "sagemaker-sdk"
        boto_session.client("sagemaker").create_training_job(**request)
        return "boto3"
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise TrainError(
            f"SageMaker refused training job {request['TrainingJobName']!r}: "
            f"{error.get('Code', 'error')}: {error.get('Message', exc)}"
        ) from None


# --- following a job ----------------------------------------------------------------------------------------------


def follow(
    sm: Any,
    job_name: str,
    timeout: float,
    poll_interval: float,
    on_change: Callable[[dict[str, Any]], None] = lambda _d: None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll DescribeTrainingJob until the job ends; calls `on_change` on every status change. TrainError on timeout."""
    deadline = time.monotonic() + timeout
    last: tuple[str, str] | None = None
    while True:
        described = dict(sm.describe_training_job(TrainingJobName=job_name))
        state = (str(described.get("TrainingJobStatus")), str(described.get("SecondaryStatus", "")))
        if state != last:
            on_change(described)
            last = state
        if state[0] in TERMINAL:
            return described
        if time.monotonic() >= deadline:
            raise TrainError(
                f"training job {job_name!r} is still {state[0]} ({state[1]}) after {timeout:.0f} s; it keeps "
                f"running: follow it with `aws sagemaker describe-training-job --training-job-name {job_name}`"
            )
        sleep(poll_interval)


def check_completed(described: Mapping[str, Any]) -> None:
    """TrainError with the job's failure reason unless it completed."""
    name = described.get("TrainingJobName")
    status = described.get("TrainingJobStatus")
    if status == "Failed":
        raise TrainError(f"training job {name!r} failed: {described.get('FailureReason', 'no reason given')}")
    if status == "Stopped":
        raise TrainError(f"training job {name!r} was stopped ({described.get('SecondaryStatus', 'Stopped')})")


# --- the run and the registered version ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainResult:
    """What a finished job produced, as printed and as `--json`."""

    job_name: str
    status: str
    model_artifact: str | None
    run_id: str
    experiment: str
    model: str
    version: int
    submitted_with: str
    billable_seconds: int | None = None
    training_seconds: int | None = None


def run_sagemaker(
    job: SageMakerJob,
    run: TrainingRun,
    experiment: str,
    timeout: float,
    poll_interval: float,
    on_change: Callable[[dict[str, Any]], None] = lambda _d: None,
    use_sdk: bool | None = None,
    on_submitted: Callable[[str], None] = lambda _backend: None,
) -> TrainResult:
    """Check the data, create the job, follow it to the end, and find or register its model version."""
    import boto3

    tracking_uri, model = run.tracking_uri, run.model
    session = boto3.Session(region_name=run.outputs.region)
    s3 = session.client("s3")
    check_dataset(s3, job.data_uri)
    backend = submit(training_job_request(job), session, use_sdk)
    on_submitted(backend)
    described = follow(session.client("sagemaker"), job.name, timeout, poll_interval, on_change)
    check_completed(described)
    if job.network_isolation:
        run_id, version = register_from_artifact(tracking_uri, s3, described, job, experiment, model)
    else:
        run_id, version = find_run(tracking_uri, job.name, experiment, model)
    return TrainResult(
        job_name=job.name,
        status=str(described["TrainingJobStatus"]),
        model_artifact=described.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
        run_id=run_id,
        experiment=experiment,
        model=model,
        version=version,
        submitted_with=backend,
        billable_seconds=described.get("BillableTimeInSeconds"),
        training_seconds=described.get("TrainingTimeInSeconds"),
    )
