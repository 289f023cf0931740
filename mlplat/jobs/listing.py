"""`mlplat jobs --stack <env>`: the stack's training jobs on SageMaker and on EKS, each with its state, attempts,
interruptions, the reason of its last failure and its MLflow run.

SageMaker: `ListTrainingJobs` (names `mlplat-<env>-...`, as `mlplat train` names them) and `DescribeTrainingJob`; a
managed-spot interruption shows as an `Interrupted` secondary status, and each one is an attempt. EKS: the Jobs
labelled `mlplat.io/workload=training` in every team namespace; attempts and disruptions are the annotations the
follower writes (`mlplat.io/attempt`, `mlplat.io/disruptions`), the failure reason is the watchdog's
(`mlplat.io/failure-reason`) or the Job's `Failed` condition. The run is the MLflow run named after the job.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from components import config as stack_config
from mlplat import clikit
from mlplat.outputs import CloudError, StackOutputs, load_outputs

TRAINING_SELECTOR = "mlplat.io/workload=training"


@dataclass(frozen=True)
class JobRow:
    """One training job, as listed."""

    platform: str
    name: str
    state: str
    attempts: int
    interruptions: int
    last_failure: str
    run: str


def spot_history(described: Mapping[str, Any]) -> dict[str, str]:
    """MLflow tags for a SageMaker job's managed-spot interruptions, from its `SecondaryStatusTransitions`.

    Each `Interrupted` transition is one interruption and one more attempt; the time lost is from its start to the
    start of the next `Training` transition (or to its end when training never resumed).
    """
    transitions = list(described.get("SecondaryStatusTransitions") or [])
    lost = 0.0
    last: dict[str, Any] | None = None
    count = 0
    for i, transition in enumerate(transitions):
        if transition.get("Status") != "Interrupted":
            continue
        count += 1
        start = transition.get("StartTime")
        resumed = next((t.get("StartTime") for t in transitions[i + 1 :] if t.get("Status") == "Training"), None)
        end = resumed or transition.get("EndTime")
        if start is not None and end is not None:
            lost += max(0.0, (end - start).total_seconds())
        last = {"event": "interrupted", "time": start.isoformat() if start is not None else "", "kind": "spot",
                "capacity_type": "spot", "detail": transition.get("StatusMessage", "")}  # fmt: skip
    tags = {"mlplat.attempts": str(1 + count), "mlplat.interruptions": str(count)}
    if last is not None:
        tags["mlplat.last_interruption"] = json.dumps(last, sort_keys=True)
        tags["mlplat.time_lost_seconds"] = f"{lost:.1f}"
    return tags


def sagemaker_rows(sm: Any, environment: str, limit: int) -> list[JobRow]:
    """The stack's SageMaker training jobs, newest first."""
    listed = sm.list_training_jobs(
        NameContains=f"mlplat-{environment}-", SortBy="CreationTime", SortOrder="Descending", MaxResults=limit
    )
    rows = []
    for summary in listed.get("TrainingJobSummaries", []):
        described = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        interruptions = int(spot_history(described)["mlplat.interruptions"])
        rows.append(
            JobRow(
                platform="sagemaker",
                name=str(described["TrainingJobName"]),
                state=str(described.get("TrainingJobStatus", "?")),
                attempts=1 + interruptions,
                interruptions=interruptions,
                last_failure=str(described.get("FailureReason") or ""),
                run="",
            )
        )
    return rows


def eks_state(job: Mapping[str, Any]) -> str:
    """Queued, Pending, Running, Completed or Failed."""
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in conditions:
        return "Completed"
    if "Failed" in conditions:
        return "Failed"
    if (job.get("spec") or {}).get("suspend"):
        return "Queued"
    return "Running" if status.get("active") else "Pending"


def eks_rows(jobs: Sequence[Mapping[str, Any]]) -> list[JobRow]:
    """Rows for the training Jobs of the team namespaces."""
    from mlplat.jobs.follow import FAILURE_REASON_ANNOTATION
    from mlplat.jobs.restarts import ATTEMPT_ANNOTATION, DISRUPTIONS_ANNOTATION

    rows = []
    for job in jobs:
        meta = job.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        failed = next((c for c in (job.get("status") or {}).get("conditions") or [] if c.get("type") == "Failed"), None)
        reason = annotations.get(FAILURE_REASON_ANNOTATION) or (
            f"{failed.get('reason')}: {failed.get('message', '')}" if failed else ""
        )
        rows.append(
            JobRow(
                platform="eks",
                name=f"{meta.get('namespace')}/{meta.get('name')}",
                state=eks_state(job),
                attempts=int(annotations.get(ATTEMPT_ANNOTATION, "1")),
                interruptions=int(annotations.get(DISRUPTIONS_ANNOTATION, "0")),
                last_failure=reason,
                run="",
            )
        )
    return rows


def with_runs(rows: list[JobRow], tracking_uri: str | None, experiment: str) -> list[JobRow]:
    """Fill in each row's MLflow run link (an http(s) tracking server only)."""
    if not tracking_uri or not tracking_uri.startswith(("http://", "https://")):
        return rows
    from dataclasses import replace

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return rows
    linked = []
    for row in rows:
        name = row.name.split("/")[-1]
        runs = client.search_runs([found.experiment_id], filter_string=f"attributes.run_name = '{name}'", max_results=1)
        link = (
            f"{tracking_uri.rstrip('/')}/#/experiments/{found.experiment_id}/runs/{runs[0].info.run_id}" if runs else ""
        )
        linked.append(replace(row, run=link))
    return linked


def collect(
    outputs: StackOutputs,
    cfg: stack_config.StackConfig,
    kubeconfig: Path | None,
    context: str | None,
    limit: int,
    warn: Any,
) -> list[JobRow]:
    """Every training job of the stack: SageMaker's, then each team namespace's."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        rows = sagemaker_rows(boto3.Session(region_name=outputs.region).client("sagemaker"), cfg.environment, limit)
    except (BotoCoreError, ClientError) as exc:
        raise CloudError(f"cannot list SageMaker training jobs: {exc}") from None
    if cfg.cluster is None:
        return rows
    from mlplat.cloud_train import default_kubeconfig
    from mlplat.jobs.kube import Kube

    path = kubeconfig or default_kubeconfig()
    if not path.is_file():
        warn(f"eks: no kubeconfig at {path}; run `aws eks update-kubeconfig --name {outputs.cluster_name}`")
        return rows
    kube = Kube.from_kubeconfig(path, context)
    for team in cfg.teams:
        rows += eks_rows(kube.jobs(team.name, TRAINING_SELECTOR))
    return rows


def jobs_command(
    stack: clikit.StackOption = None,
    outputs: clikit.OutputsOption = None,
    stack_file: clikit.StackFileOption = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option("--kubeconfig", help="EKS: the kubeconfig to read the jobs with [default: $KUBECONFIG]"),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="EKS: kubeconfig context")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="MLflow server to link runs from", envvar="MLFLOW_TRACKING_URI")
    ] = None,
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment")] = "mlplat-training",
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="SageMaker jobs listed at most")] = 20,
    as_json: clikit.JsonFlag = False,
) -> None:
    """List the stack's training jobs on SageMaker and EKS: state, attempts, interruptions, last failure, run."""
    try:
        stack, path = clikit.resolve_stack(stack, stack_file)
        cfg = stack_config.load_stack_file(path)
        stack_outputs = load_outputs(stack, outputs)
        rows = collect(stack_outputs, cfg, kubeconfig, context, limit, lambda m: typer.echo(m, err=True))
        rows = with_runs(rows, tracking_uri, experiment)
    except (CloudError, stack_config.ConfigError) as exc:
        raise typer.Exit(clikit.report(exc)) from None
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    if not rows:
        typer.echo(f"no training jobs in stack {stack}")
        return
    header = ("PLATFORM", "JOB", "STATE", "ATTEMPTS", "INTERRUPTIONS", "LAST FAILURE", "RUN")
    table = [header] + [
        (r.platform, r.name, r.state, str(r.attempts), str(r.interruptions), r.last_failure or "-", r.run or "-")
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 2)]
    for line in table:
        typer.echo(
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + "  ".join(line[-2:])
        )


def register(app: typer.Typer) -> None:
    """Add `mlplat jobs` to the root app."""
    clikit.command(app, "jobs", jobs_command, panel=clikit.CLOUD)
