"""What a finished SageMaker training job leaves in the tracking server: its run and its registered model version.

Network isolation means the container has no network and no AWS credentials at all, so it cannot reach the tracking
server. With isolation on (the default) the job trains offline into `/opt/ml/model`, and this command logs the run and
registers the version in the tracking server from the job's model artifact once the job has completed. With
`--no-network-isolation` the environment points the job at the tracking server (`MLFLOW_TRACKING_URI`), the job logs
and registers itself, and this command finds its run by the job's name. Either way it prints the run and the version.
"""

import contextlib
import json
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contracts.bucket import MODEL_ARCHIVE, split_s3_uri
from contracts.registry import TAG_TRAINING_JOB
from mlplat.cloud.common import SageMakerJob, TrainError


def _extract_model(s3: Any, artifact: str, dest: Path) -> Path:
    from botocore.exceptions import ClientError

    bucket, key = split_s3_uri(artifact)
    archive = dest / MODEL_ARCHIVE
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

    bucket, key = split_s3_uri(artifact.rsplit("/", 1)[0] + "/output.tar.gz")
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

    from mlplat.jobs.listing import spot_history

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
                TAG_TRAINING_JOB: job.name,
                "mlplat.training_job_arn": str(described.get("TrainingJobArn", "")),
                "mlplat.image": job.image,
                "mlplat.environment": job.environment.get("MLPLAT_ENVIRONMENT", ""),
                "mlplat.model_artifact": artifact,
                **spot_history(described),
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
        model, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags={TAG_TRAINING_JOB: job.name}
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
