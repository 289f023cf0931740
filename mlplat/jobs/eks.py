"""`mlplat train --on eks` after the manifests are rendered: create them, follow the job, and settle its MLflow run.

The exit status is the job's: 0 when it completed, 1 when it failed or the watchdog failed it. When it failed, the
MLflow run named after the job is marked FAILED with the reason (tag `mlplat.failure_reason`); a job that never
started has no run yet, so one is created for it, and the failure is on record where the user looks for runs.
"""

import contextlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.result import result_object
from mlplat.jobs import diagnose as dg
from mlplat.jobs import restarts
from mlplat.jobs.follow import FollowResult, follow_job
from mlplat.jobs.kube import Kube
from mlplat.outputs import CloudError

FAILURE_TAG = "mlplat.failure_reason"
JOB_TAG = "mlplat.job_name"


class JobFailed(CloudError):
    """The followed job failed; the message is its reason."""


@dataclass(frozen=True)
class EksRun:
    """How one EKS job ended, as printed and as `--json`."""

    job_name: str
    namespace: str
    status: str
    attempts: int
    disruptions: int
    run_id: str | None
    run_link: str | None
    result: dict[str, Any] | None
    reason: str = ""


def create(kube: Kube, manifests: Sequence[Mapping[str, Any]], on_line: Callable[[str], None]) -> None:
    """Create the Service and the Job, in order."""
    for manifest in manifests:
        kube.create(manifest)
        meta = manifest["metadata"]
        on_line(f"created {manifest['kind']} {meta['namespace']}/{meta['name']}")


def run_job(
    kube: Kube,
    manifests: Sequence[Mapping[str, Any]],
    *,
    tracking_uri: str,
    experiment: str,
    schedule_timeout: float,
    poll_interval: float,
    timeout: float,
    max_retries: int,
    last_attempt_on_demand: bool,
    pools: Sequence[dg.PoolOffer],
    quotas: Mapping[str, int],
    on_line: Callable[[str], None],
) -> EksRun:
    """Follow the created job to its end; JobFailed with the reason when it did not complete."""
    job = next(m for m in manifests if m["kind"] == "Job")
    namespace, name = str(job["metadata"]["namespace"]), str(job["metadata"]["name"])
    budget = restarts.Budget(max_retries, last_attempt_on_demand, dict(job))
    followed = follow_job(
        kube, namespace, name, schedule_timeout=schedule_timeout, poll_interval=poll_interval, timeout=timeout,
        pools=pools, quotas=quotas, budget=budget, on_line=on_line,
    )  # fmt: skip
    if followed.status != "succeeded":
        run_id = mark_run_failed(tracking_uri, experiment, name, followed.reason)
        where = f" (MLflow run {run_id} marked FAILED)" if run_id else ""
        raise JobFailed(f"training job {namespace}/{name} {_ended(followed)}: {followed.reason}{where}")
    result = _result(kube, namespace, name)
    run_id = str(result["run_id"]) if result and result.get("run_id") else None
    return EksRun(
        job_name=name,
        namespace=namespace,
        status="succeeded",
        attempts=followed.attempts,
        disruptions=followed.disruptions,
        run_id=run_id,
        run_link=run_link(tracking_uri, experiment, run_id) if run_id else None,
        result=result,
    )


def _ended(followed: FollowResult) -> str:
    return "is still running" if followed.status == "timeout" else "failed"


def _result(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    """The `MLPLAT_RESULT` line of rank 0's log."""
    for pod in kube.pods(namespace, name):
        serialized = dg.plain(pod)
        annotations = (serialized.get("metadata") or {}).get("annotations") or {}
        phase = (serialized.get("status") or {}).get("phase")
        if annotations.get("batch.kubernetes.io/job-completion-index") != "0" or phase != "Succeeded":
            continue
        return result_object(kube.log(namespace, serialized["metadata"]["name"]))
    return None


def run_link(tracking_uri: str, experiment: str, run_id: str) -> str:
    """The run's page in the MLflow UI for an http(s) tracking server; `runs:/<id>` otherwise."""
    if not tracking_uri.startswith(("http://", "https://")):
        return f"runs:/{run_id}"
    from mlflow import MlflowClient

    try:
        experiment_id = MlflowClient(tracking_uri=tracking_uri).get_run(run_id).info.experiment_id
    except Exception:
        return f"runs:/{run_id}"
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def mark_run_failed(tracking_uri: str, experiment: str, job_name: str, reason: str) -> str | None:
    """Mark the job's run FAILED with the reason (creating the run if the job never started); its id, or None."""
    from mlflow import MlflowClient

    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        runs = client.search_runs([experiment_id], filter_string=f"attributes.run_name = '{job_name}'", max_results=1)
        if runs:
            run_id = runs[0].info.run_id
        else:
            run_id = client.create_run(experiment_id, run_name=job_name, tags={JOB_TAG: job_name}).info.run_id
        client.set_tag(run_id, FAILURE_TAG, reason[:5000])
        with contextlib.redirect_stdout(sys.stderr):  # MLflow prints the run's URL; stdout is the report
            client.set_terminated(run_id, "FAILED")
    except Exception as exc:
        print(f"warning: could not mark the MLflow run of {job_name} FAILED: {exc}", file=sys.stderr)
        return None
    return str(run_id)


def kube_for(kubeconfig: Path, context: str | None) -> Kube:
    """A client for the kubeconfig."""
    return Kube.from_kubeconfig(kubeconfig, context)
