"""`mlplat train --on sagemaker|eks`: launch the bundled training container in the cloud, wired to a deployed stack.

Everything comes from the stack's outputs (role, private subnets, security group, bucket, KMS key, tracking server)
and its stack file (the training image, the GPU pools and teams): nothing is typed twice.

SageMaker. The job is a `CreateTrainingJob` request built here as one plain dict (`training_job_request`), so what is
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

Network isolation means the container has no network and no AWS credentials at all, so it cannot reach the tracking
server. With isolation on (the default) the job trains offline into `/opt/ml/model`, and this command logs the run and
registers the version in the tracking server from the job's model artifact once the job has completed. With
`--no-network-isolation` the environment points the job at the tracking server (`MLFLOW_TRACKING_URI`), the job logs
and registers itself, and this command finds its run by the job's name. Either way it prints the run and the version.

EKS. `--on eks` renders the torchrun `TrainingJob` manifests of `components.training_job` for the stack (ranks, GPU
pool, team namespace, image) and applies them with the Kubernetes client when a kubeconfig is present; `--dry-run`
prints them.
"""

import contextlib
import json
import os
import re
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from components import config as stack_config
from mlplat import clikit
from mlplat.outputs import CloudError, StackOutputs, check_tracking_uri, load_outputs

CHANNEL = "train"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
OUTPUT_PREFIX = "training-jobs"
DEFAULT_EXPERIMENT = "mlplat-training"
ISOLATED_TRACKING_URI = "sqlite:////tmp/mlflow.db"  # the isolated container's own throwaway store
TERMINAL = ("Completed", "Failed", "Stopped")
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class TrainError(CloudError):
    """A training launch that cannot go ahead, or a job that did not complete."""


class Target(StrEnum):
    sagemaker = "sagemaker"
    eks = "eks"


class Client(StrEnum):
    auto = "auto"
    sdk = "sdk"
    boto3 = "boto3"


@dataclass(frozen=True)
class SageMakerJob:
    """Every setting of one SageMaker training job, as plain values."""

    name: str
    image: str
    role_arn: str
    subnets: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    kms_key_arn: str
    data_uri: str
    output_uri: str
    checkpoint_uri: str
    instance_type: str
    instance_count: int
    volume_gb: int
    spot: bool
    max_runtime_seconds: int
    max_wait_seconds: int | None
    network_isolation: bool
    hyperparameters: Mapping[str, str]
    environment: Mapping[str, str]
    tags: Mapping[str, str]


def default_job_name(prefix: str, model: str, max_length: int = 63, now: datetime | None = None) -> str:
    """`<prefix>-<model>-<UTC time>`, unique per second: a valid SageMaker job name and Kubernetes DNS label."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    head = f"{prefix}-{model}" if prefix else model
    return f"{head[: max_length - len(stamp) - 1].rstrip('-')}-{stamp}"


def resolve_image(image: str, outputs: StackOutputs) -> str:
    """A short image name (`mlplat/training:0.1.0`) lives in the stack account's ECR, as the platform resolves it."""
    from components.images import parse

    ref = parse(image)
    if ref.registry is not None:
        return image
    account = outputs.training_role_arn.split(":")[4]
    return f"{account}.dkr.ecr.{outputs.region}.amazonaws.com/{ref.repository}{ref.separator}{ref.reference}"


def parse_hyperparameters(pairs: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` pairs from `--hp`; SageMaker passes every hyperparameter as a string."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise TrainError(f"--hp must be KEY=VALUE (got {pair!r})")
        values[key.strip()] = value
    return values


def plan_sagemaker_job(
    outputs: StackOutputs,
    cfg: stack_config.StackConfig,
    *,
    model: str,
    dataset: str,
    dataset_version: str,
    job_name: str,
    tracking_uri: str,
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
        environment["MLFLOW_TRACKING_URI"] = tracking_uri
    return SageMakerJob(
        name=job_name,
        image=training_image,
        role_arn=outputs.training_role_arn,
        subnets=tuple(outputs.private_subnet_ids),
        security_group_ids=(outputs.workload_security_group_id,),
        kms_key_arn=outputs.kms_key_arn,
        data_uri=f"s3://{bucket}/datasets/{dataset}/{dataset_version}/",
        output_uri=f"s3://{bucket}/{OUTPUT_PREFIX}/",
        checkpoint_uri=f"s3://{bucket}/checkpoints/{job_name}/",
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


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _extract_model(s3: Any, artifact: str, dest: Path) -> Path:
    from botocore.exceptions import ClientError

    bucket, key = _split_s3(artifact)
    archive = dest / "model.tar.gz"
    try:
        s3.download_file(bucket, key, str(archive))
    except ClientError:
        raise TrainError(f"the job completed but its model artifact {artifact} cannot be read") from None
    model_dir = dest / "model"
    with tarfile.open(archive) as tar:
        tar.extractall(model_dir, filter="data")
    if not (model_dir / "MLmodel").is_file():
        raise TrainError(f"the job's model artifact {artifact} holds no MLflow model (no MLmodel at its root)")
    return model_dir


def _final_metrics(s3: Any, artifact: str, dest: Path) -> dict[str, float]:
    """The `final` block of the container's `metrics.json` in the job's `output.tar.gz`; {} when absent."""
    from botocore.exceptions import ClientError

    bucket, key = _split_s3(artifact.rsplit("/", 1)[0] + "/output.tar.gz")
    archive = dest / "output.tar.gz"
    try:
        s3.download_file(bucket, key, str(archive))
        with tarfile.open(archive) as tar:
            member = tar.extractfile("metrics.json")
            document = json.loads(member.read()) if member is not None else {}
    except (ClientError, KeyError, tarfile.TarError, json.JSONDecodeError):
        return {}
    final = document.get("final") if isinstance(document, dict) else None
    if not isinstance(final, dict):
        return {}
    return {str(k): float(v) for k, v in final.items() if isinstance(v, int | float)}


def register_from_artifact(
    tracking_uri: str, s3: Any, described: Mapping[str, Any], job: SageMakerJob, experiment: str, model: str
) -> tuple[str, int]:
    """Log a run for an isolated job and register its model version from the job's artifact; (run id, version)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    artifact = described.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if not artifact:
        raise TrainError(f"training job {job.name!r} completed without a model artifact")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    with tempfile.TemporaryDirectory(prefix="mlplat-train-") as tmp:
        model_dir = _extract_model(s3, artifact, Path(tmp))
        run = client.create_run(
            experiment_id,
            run_name=job.name,
            tags={
                "mlplat.training_job": job.name,
                "mlplat.training_job_arn": str(described.get("TrainingJobArn", "")),
                "mlplat.image": job.image,
                "mlplat.environment": job.environment.get("MLPLAT_ENVIRONMENT", ""),
                "mlplat.model_artifact": artifact,
            },
        )
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        values = {str(m["MetricName"]): float(m["Value"]) for m in described.get("FinalMetricDataList", [])}
        values.update(_final_metrics(s3, artifact, Path(tmp)))
        metrics = [Metric(key, value, now, 0) for key, value in values.items()]
        client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in job.hyperparameters.items()])
        client.log_artifacts(run_id, str(model_dir), "model")
        with contextlib.redirect_stdout(sys.stderr):  # MLflow prints the run's URL; stdout is the report
            client.set_terminated(run_id, "FINISHED")
    try:
        client.create_registered_model(model)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        model, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags={"mlplat.training_job": job.name}
    )
    return run_id, int(version.version)


def find_run(tracking_uri: str, job_name: str, experiment: str, model: str) -> tuple[str, int]:
    """The run the job logged itself (named after the job) and the version registered from it."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    runs = (
        client.search_runs([found.experiment_id], filter_string=f"attributes.run_name = '{job_name}'", max_results=1)
        if found
        else []
    )
    if not runs:
        raise TrainError(f"training job {job_name!r} completed but logged no MLflow run in experiment {experiment!r}")
    run_id = runs[0].info.run_id
    versions = client.search_model_versions(f"name = '{model}' and run_id = '{run_id}'")
    if not versions:
        raise TrainError(f"training job {job_name!r} completed but registered no version of model {model!r}")
    return run_id, max(int(v.version) for v in versions)


def check_dataset(s3: Any, data_uri: str) -> None:
    """TrainError unless the dataset prefix holds at least one object."""
    bucket, prefix = _split_s3(data_uri)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    if not listed.get("KeyCount"):
        raise TrainError(f"no data at {data_uri}: upload the dataset there first")


def run_sagemaker(
    job: SageMakerJob,
    outputs: StackOutputs,
    tracking_uri: str,
    experiment: str,
    model: str,
    timeout: float,
    poll_interval: float,
    on_change: Callable[[dict[str, Any]], None] = lambda _d: None,
    use_sdk: bool | None = None,
    on_submitted: Callable[[str], None] = lambda _backend: None,
) -> TrainResult:
    """Check the data, create the job, follow it to the end, and find or register its model version."""
    import boto3

    session = boto3.Session(region_name=outputs.region)
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


# --- EKS ----------------------------------------------------------------------------------------------------------


def eks_manifests(
    outputs: StackOutputs,
    cfg: stack_config.StackConfig,
    *,
    model: str,
    dataset: str,
    dataset_version: str,
    job_name: str,
    tracking_uri: str,
    ranks: int,
    pool: str | None,
    team: str | None,
    gpus_per_rank: int,
    image: str | None,
    extra_args: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The torchrun Job and its rendezvous Service for this stack, from `components.training_job`."""
    from components.training_job import TrainingJobSpec, render_training_job

    if cfg.cluster is None:
        raise TrainError(f"stack {cfg.environment!r} has no EKS cluster (mlplat:cluster); use --on sagemaker")
    pools = [p.name for p in cfg.gpu_pools]
    chosen_pool = pool or next((p.name for p in cfg.gpu_pools if "spot" in p.capacity_types), None) or pools[0]
    if chosen_pool not in pools:
        raise TrainError(f"--pool {chosen_pool!r} is not a GPU pool of stack {cfg.environment!r} ({', '.join(pools)})")
    teams = [t.name for t in cfg.teams]
    if not teams:
        raise TrainError(f"stack {cfg.environment!r} has no team namespace (mlplat:teams) to run the job in")
    namespace = team or teams[0]
    if namespace not in teams:
        raise TrainError(f"--team {namespace!r} is not a team of stack {cfg.environment!r} ({', '.join(teams)})")
    spec = TrainingJobSpec(
        name=job_name,
        namespace=namespace,
        image=resolve_image(image or cfg.images.training, outputs),
        data_uri=f"s3://{outputs.bucket_name}/datasets/{dataset}/{dataset_version}/",
        checkpoint_s3_uri=f"s3://{outputs.bucket_name}/checkpoints/{job_name}/",
        tracking_uri=tracking_uri,
        registered_model_name=model,
        ranks=ranks,
        gpus_per_rank=gpus_per_rank,
        pool=chosen_pool,
        extra_args=tuple(extra_args),
        env={"MLPLAT_JOB_NAME": job_name, "MLPLAT_ENVIRONMENT": cfg.environment},
    )
    try:
        return render_training_job(spec)
    except ValueError as exc:
        raise TrainError(str(exc)) from None


def default_kubeconfig() -> Path:
    """`$KUBECONFIG` (its first entry) or `~/.kube/config`."""
    env = os.environ.get("KUBECONFIG", "")
    return Path(env.split(os.pathsep)[0]) if env else Path.home() / ".kube" / "config"


def apply_manifests(manifests: Sequence[Mapping[str, Any]], kubeconfig: Path, context: str | None) -> list[str]:
    """Create the objects with the Kubernetes client; returns `Kind namespace/name` of each."""
    from kubernetes import config, utils

    api = config.new_client_from_config(config_file=str(kubeconfig), context=context)
    created = []
    for manifest in manifests:
        try:
            utils.create_from_dict(api, dict(manifest))
        except utils.FailToCreateError as exc:
            reasons = "; ".join(getattr(e, "reason", str(e)) for e in exc.api_exceptions)
            raise TrainError(f"the cluster refused {_describe(manifest)}: {reasons}") from None
        created.append(_describe(manifest))
    return created


def _describe(manifest: Mapping[str, Any]) -> str:
    meta = manifest.get("metadata") or {}
    return f"{manifest.get('kind')} {meta.get('namespace')}/{meta.get('name')}"


# --- command line -------------------------------------------------------------------------------------------------


def _status_line(described: Mapping[str, Any], started: float) -> str:
    transitions = described.get("SecondaryStatusTransitions") or []
    message = transitions[-1].get("StatusMessage", "") if transitions else ""
    elapsed = time.monotonic() - started
    text = f"[{elapsed:6.0f}s] {described.get('TrainingJobStatus')} / {described.get('SecondaryStatus', '-')}"
    return f"{text}: {message}" if message else text


def train_command(
    stack: clikit.StackOption = None,
    on: Annotated[Target, typer.Option("--on", help="where the job runs")] = Target.sagemaker,
    model: Annotated[
        str | None, typer.Option("--model", help="registry name [default: the model of the stack's first endpoint]")
    ] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="dataset name [default: the model]")] = None,
    dataset_version: Annotated[str, typer.Option("--dataset-version", help="datasets/<name>/<version>/")] = "v1",
    spot: Annotated[bool, typer.Option("--spot/--on-demand", help="managed spot capacity (SageMaker)")] = False,
    instance_type: Annotated[str, typer.Option("--instance-type", help="SageMaker instance type")] = "ml.m5.xlarge",
    instances: Annotated[int, typer.Option("--instances", min=1, help="instances (SageMaker) or ranks (EKS)")] = 1,
    max_runtime: Annotated[int, typer.Option("--max-runtime", min=60, help="seconds of training at most")] = 4 * 3600,
    max_wait: Annotated[
        int | None, typer.Option("--max-wait", min=60, help="spot: seconds to wait for capacity and train [2x runtime]")
    ] = None,
    network_isolation: Annotated[
        bool, typer.Option("--network-isolation/--no-network-isolation", help="run the container without network")
    ] = True,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="training epochs")] = None,
    hp: Annotated[list[str] | None, typer.Option("--hp", help="more hyperparameters, KEY=VALUE (repeatable)")] = None,
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment")] = DEFAULT_EXPERIMENT,
    job_name: Annotated[
        str | None, typer.Option("--job-name", help="the training job's name [default: mlplat-<env>-<model>-<time>]")
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="training image [default: stack images.training]")
    ] = None,
    pool: Annotated[str | None, typer.Option("--pool", help="EKS: GPU pool [default: the first spot pool]")] = None,
    team: Annotated[str | None, typer.Option("--team", help="EKS: team namespace [default: the first team]")] = None,
    gpus_per_rank: Annotated[int, typer.Option("--gpus-per-rank", min=1, help="EKS: GPUs per rank")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the request or manifests, create nothing")] = False,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig", help="EKS: the kubeconfig to apply the Job with [default: $KUBECONFIG or ~/.kube/config]"
        ),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="EKS: kubeconfig context")] = None,
    outputs: clikit.OutputsOption = None,
    stack_file: clikit.StackFileOption = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option("--tracking-uri", help="MLflow (URL or ARN) [default: the stack's]", envvar="MLFLOW_TRACKING_URI"),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="seconds to follow the job")] = 6 * 3600,
    poll_interval: Annotated[float, typer.Option("--poll-interval", min=0, help="seconds between polls")] = 30,
    client: Annotated[
        Client, typer.Option("--client", help="SageMaker: submit with the SDK (`cloud` extra), boto3, or auto")
    ] = Client.auto,
    as_json: clikit.JsonFlag = False,
) -> None:
    """Launch the training container in the cloud with everything the stack provides, and follow it to the end."""
    try:
        stack, path = clikit.resolve_stack(stack, stack_file)
        cfg = stack_config.load_stack_file(path)
        stack_outputs = load_outputs(stack, outputs)
        model_name = model or (cfg.endpoints[0].model if cfg.endpoints else None)
        if model_name is None:
            raise TrainError(f"stack {stack!r} has no endpoint to take the model name from; pass --model")
        uri = tracking_uri or stack_outputs.tracking_server_arn
        extra = parse_hyperparameters(hp or [])
        if on is Target.eks:
            _train_on_eks(
                stack_outputs, cfg, model_name, dataset or model_name, dataset_version, job_name, uri,
                instances, pool, team, gpus_per_rank, image, epochs, extra, dry_run, kubeconfig, context, as_json,
            )  # fmt: skip
            return
        job = plan_sagemaker_job(
            stack_outputs,
            cfg,
            model=model_name,
            dataset=dataset or model_name,
            dataset_version=dataset_version,
            job_name=job_name or default_job_name(f"mlplat-{cfg.environment}", model_name),
            tracking_uri=uri,
            instance_type=instance_type,
            instances=instances,
            spot=spot,
            max_runtime_seconds=max_runtime,
            max_wait_seconds=max_wait,
            network_isolation=network_isolation,
            experiment=experiment,
            epochs=epochs,
            hyperparameters=extra,
            image=image,
        )
        if dry_run:
            typer.echo(json.dumps(training_job_request(job), indent=2))
            return
        check_tracking_uri(uri)  # this command logs or looks up the run itself
        if client is Client.sdk and not sdk_available():
            raise TrainError("--client sdk needs the SageMaker Python SDK: pip install 'mlplat[cloud]'")
        use_sdk = None if client is Client.auto else client is Client.sdk
        result = _run_with_progress(
            job, stack_outputs, uri, experiment, model_name, timeout, poll_interval, as_json, use_sdk
        )
    except (CloudError, stack_config.ConfigError) as exc:
        raise typer.Exit(clikit.report(exc)) from None
    if as_json:
        typer.echo(json.dumps(result.__dict__, indent=2))
        return
    typer.echo(f"training job {result.job_name} {result.status.lower()} (submitted with {result.submitted_with})")
    if result.billable_seconds is not None and result.training_seconds:
        saved = 100 * (1 - result.billable_seconds / result.training_seconds)
        typer.echo(f"  billed    {result.billable_seconds} s of {result.training_seconds} s ({saved:.0f}% saved)")
    typer.echo(f"  artifact  {result.model_artifact}")
    typer.echo(f"  run       {result.run_id} (experiment {result.experiment})")
    typer.echo(f"  model     {result.model} version {result.version}")
    typer.echo(f"next: mlplat release --stack {stack} --model {result.model} --version {result.version}")


def _run_with_progress(
    job: SageMakerJob,
    outputs: StackOutputs,
    tracking_uri: str,
    experiment: str,
    model: str,
    timeout: float,
    poll_interval: float,
    quiet: bool,
    use_sdk: bool | None,
) -> TrainResult:

    console = clikit.console(stderr=True)
    started = time.monotonic()

    def on_submitted(backend: str) -> None:
        if not quiet:
            console.print(f"created training job {job.name} on {job.instance_count} x {job.instance_type} ({backend})")

    with clikit.status(console, f"waiting for {job.name}") as status:

        def on_change(described: dict[str, Any]) -> None:
            line = _status_line(described, started)
            status.update(line)
            if not quiet:
                console.print(line)

        return run_sagemaker(
            job, outputs, tracking_uri, experiment, model, timeout, poll_interval, on_change, use_sdk, on_submitted
        )


def _train_on_eks(
    outputs: StackOutputs,
    cfg: stack_config.StackConfig,
    model: str,
    dataset: str,
    dataset_version: str,
    job_name: str | None,
    tracking_uri: str,
    ranks: int,
    pool: str | None,
    team: str | None,
    gpus_per_rank: int,
    image: str | None,
    epochs: int | None,
    extra: Mapping[str, str],
    dry_run: bool,
    kubeconfig: Path | None,
    context: str | None,
    as_json: bool,
) -> None:
    args = [f"--epochs={epochs}"] if epochs is not None else []
    args += [f"--{k.replace('_', '-')}={v}" for k, v in extra.items()]
    manifests = eks_manifests(
        outputs,
        cfg,
        model=model,
        dataset=dataset,
        dataset_version=dataset_version,
        job_name=job_name or default_job_name("", model, max_length=50),
        tracking_uri=tracking_uri,
        ranks=ranks,
        pool=pool,
        team=team,
        gpus_per_rank=gpus_per_rank,
        image=image,
        extra_args=args,
    )
    if dry_run:
        typer.echo(json.dumps(manifests, indent=2) if as_json else yaml.safe_dump_all(manifests, sort_keys=False))
        return
    config_path = kubeconfig or default_kubeconfig()
    if not config_path.is_file():
        cluster = outputs.cluster_name or "<clusterName>"
        raise TrainError(
            f"no kubeconfig at {config_path}: run `aws eks update-kubeconfig --name {cluster}` "
            "or pass --dry-run to print the manifests"
        )
    for created in apply_manifests(manifests, config_path, context):
        typer.echo(f"created {created}")


def register(app: typer.Typer) -> None:
    """Add `mlplat train` to the root app."""
    clikit.command(app, "train", train_command, panel=clikit.CLOUD)
