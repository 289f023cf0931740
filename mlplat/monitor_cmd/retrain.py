"""`mlplat monitor --retrain`: a training run on the newest data set version once drift crosses the threshold.

Locally it is the training entrypoint as a subprocess against the local platform's store and tracking server (as
`mlplat up --local` trains), registering and promoting a new version; the serving server picks the moved
`champion` alias up on its next registry poll. On a stack it is the SageMaker training launcher (`mlplat.cloud_train`).
"""

import os
import re
import time
from pathlib import Path
from typing import Any

from contracts import bucket as layout
from mlplat.monitor.run import Target

_VERSION = re.compile(r"^v?(\d+)$")


class RetrainError(RuntimeError):
    """The retraining run could not be started or failed; the message says why and where the log is."""

    exit_status = 1  # in the command line's error path (mlplat.clikit)


def newest_dataset_version(client: Any, bucket: str, dataset: str) -> str:
    """The highest `datasets/<dataset>/<vN or N>/` prefix in the bucket, as written (`v3` or `3`)."""
    prefix = layout.dataset_root(dataset)
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

    # Imported here: this module ships in the training image for the drift job, which never retrains locally.
    from mlplat.local import launcher

    if target.bucket is None or target.tracking_uri is None:
        raise RetrainError("the local platform's bucket or tracking server is unknown")
    s3_url = target.env.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or ""
    s3 = boto3.client("s3", endpoint_url=s3_url or None)
    version = newest_dataset_version(s3, target.bucket, model)
    name = f"{model}-retrain-{time.strftime('%Y%m%d-%H%M%S')}"
    job = launcher.LocalTrainingJob(
        bucket=target.bucket,
        dataset=model,
        dataset_version=version,
        model_name=model,
        experiment=f"mlplat-local-{target.stack or 'local'}",
        job_name=name,
        tracking_uri=target.tracking_uri,
        s3_url=s3_url,
        work=log.parent / name,
        log=log,
        epochs=epochs,
        timeout=timeout,
        env=target.env,
    )
    try:
        result = launcher.run(job, what="the retraining run")
    except launcher.LaunchError as error:
        raise RetrainError(f"{error.reason}; see {log}") from None
    return {"where": "local", "job": name, "dataset": job.data_uri, "log": str(log), **result.to_json()}


def retrain_stack(target: Target, model: str, outputs_file: Path | None) -> dict[str, Any]:
    """A SageMaker training job on the newest data set version of the stack's bucket, followed to registration."""
    import boto3

    from components.config import load_stack
    from mlplat.cloud import common, sagemaker
    from mlplat.outputs import CloudError, load_outputs

    assert target.stack is not None
    try:
        outputs = load_outputs(target.stack, outputs_file)
        cfg = load_stack(target.stack)
        session = boto3.Session(region_name=outputs.region)
        version = newest_dataset_version(session.client("s3"), outputs.bucket_name, model)
        job_name = common.default_job_name(f"mlplat-{cfg.environment}-retrain", model)
        run = common.TrainingRun(outputs, cfg, model, model, version, job_name, outputs.tracking_server_arn)
        job = sagemaker.plan_sagemaker_job(run)
        done = sagemaker.run_sagemaker(job, run, common.DEFAULT_EXPERIMENT, timeout=6 * 3600, poll_interval=30)
    except CloudError as error:
        raise RetrainError(str(error)) from None
    return {
        "where": "sagemaker",
        "job": done.job_name,
        "dataset": job.data_uri,
        "run_id": done.run_id,
        "version": str(done.version),
    }
