"""`mlplat monitor --retrain`: a training run on the newest data set version once drift crosses the threshold.

Locally it is the training entrypoint as a subprocess against the local platform's store and tracking server (as
`mlplat up --local` trains), registering and promoting a new version; the serving server picks the moved
`champion` alias up on its next registry poll. On a stack it is the SageMaker training launcher (`mlplat.cloud_train`).
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mlplat.monitor.run import Target

DATASETS_PREFIX = "datasets"
_VERSION = re.compile(r"^v?(\d+)$")


class RetrainError(RuntimeError):
    """The retraining run could not be started or failed; the message says why and where the log is."""

    exit_status = 1  # in the command line's error path (mlplat.clikit)


def newest_dataset_version(client: Any, bucket: str, dataset: str) -> str:
    """The highest `datasets/<dataset>/<vN or N>/` prefix in the bucket, as written (`v3` or `3`)."""
    prefix = f"{DATASETS_PREFIX}/{dataset}/"
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
    versions: list[tuple[int, str]] = []
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            name = common["Prefix"][len(prefix) :].rstrip("/")
            match = _VERSION.match(name)
            if match:
                versions.append((int(match[1]), name))
    if not versions:
        raise RetrainError(f"no data set versions under s3://{bucket}/{prefix} to retrain on")
    return max(versions)[1]


def retrain_local(
    target: Target, model: str, log: Path, epochs: int | None = None, timeout: float = 900
) -> dict[str, Any]:
    """Train on the newest local data set version; returns the training job's result (run id, version, ...)."""
    import boto3

    from mlplat.local import platform

    if target.bucket is None or target.tracking_uri is None:
        raise RetrainError("the local platform's bucket or tracking server is unknown")
    env = {**os.environ, **target.env, "MLFLOW_TRACKING_URI": target.tracking_uri}
    s3 = boto3.client("s3", endpoint_url=env.get("AWS_ENDPOINT_URL"))
    version = newest_dataset_version(s3, target.bucket, model)
    data = f"s3://{target.bucket}/{DATASETS_PREFIX}/{model}/{version}/"
    job = f"{model}-retrain-{time.strftime('%Y%m%d-%H%M%S')}"
    work = log.parent / job
    dirs = {name: work / name for name in ("model", "output", "checkpoints")}
    for directory in dirs.values():
        directory.mkdir(parents=True, exist_ok=True)
    # An empty SageMaker hyperparameters file: the flags say everything, a stray /opt/ml one on this machine must not.
    hyperparameters = work / "hyperparameters.json"
    hyperparameters.write_text("{}\n")
    argv = [
        sys.executable, "-m", "training",
        "--data", data,
        "--model-dir", str(dirs["model"]),
        "--output-data-dir", str(dirs["output"]),
        "--checkpoint-dir", str(dirs["checkpoints"]),
        "--hyperparameters", str(hyperparameters),
        "--registered-model-name", model,
        "--promote",
        "--experiment-name", f"mlplat-local-{target.stack or 'local'}",
        "--job-name", job,
    ]  # fmt: skip
    if epochs is not None:
        argv += ["--epochs", str(epochs)]
    # The run's temporary files (MLflow stages the model there) stay under the home and go when it ends.
    scratch = work / "tmp"
    scratch.mkdir(exist_ok=True)
    env.update(TMPDIR=str(scratch), TMP=str(scratch), TEMP=str(scratch))
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        offset = out.tell()
        try:
            code = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            raise RetrainError(f"the retraining run did not finish within {timeout:.0f} s; see {log}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    if code != 0:
        reason = platform.last_error_line(log, offset) or "no output"
        raise RetrainError(f"the retraining run exited with status {code}: {reason}; see {log}")
    result = platform.parse_result(log, offset)
    if result is None or "version" not in result:
        raise RetrainError(f"the retraining run printed no result line; see {log}")
    return {"where": "local", "job": job, "dataset": data, "log": str(log), **result}


def retrain_stack(target: Target, model: str, outputs_file: Path | None) -> dict[str, Any]:
    """A SageMaker training job on the newest data set version of the stack's bucket, followed to registration."""
    try:
        from mlplat import cloud_train
    except ImportError:
        raise RetrainError(
            "this install has no SageMaker training launcher (mlplat.cloud_train); run `mlplat train --stack` instead"
        ) from None
    import boto3

    from components.config import load_stack
    from mlplat.outputs import CloudError, load_outputs

    assert target.stack is not None
    try:
        outputs = load_outputs(target.stack, outputs_file)
        cfg = load_stack(target.stack)
        session = boto3.Session(region_name=outputs.region)
        version = newest_dataset_version(session.client("s3"), outputs.bucket_name, model)
        job = cloud_train.plan_sagemaker_job(
            outputs,
            cfg,
            model=model,
            dataset=model,
            dataset_version=version,
            job_name=cloud_train.default_job_name(f"mlplat-{cfg.environment}-retrain", model),
            tracking_uri=outputs.tracking_server_arn,
        )
        done = cloud_train.run_sagemaker(
            job,
            outputs,
            outputs.tracking_server_arn,
            cloud_train.DEFAULT_EXPERIMENT,
            model,
            timeout=6 * 3600,
            poll_interval=30,
        )
    except CloudError as error:
        raise RetrainError(str(error)) from None
    return {
        "where": "sagemaker",
        "job": done.job_name,
        "dataset": job.data_uri,
        "run_id": done.run_id,
        "version": str(done.version),
    }
