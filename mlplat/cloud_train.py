"""`mlplat train --on sagemaker|eks`: launch the bundled training container in the cloud, wired to a deployed stack.

Everything comes from the stack's outputs (role, private subnets, security group, bucket, KMS key, tracking server)
and its stack file (the training image, the GPU pools and teams): nothing is typed twice.

The launchers live in `mlplat.cloud`: `sagemaker` (the job request, submission, following), `registration`
(the run and the model version a finished job leaves), `eks` (the torchrun manifests); this module is the command.
`--on eks` creates the job and follows it to its end (`mlplat.jobs`: state changes, whole-gang restarts, the schedule
watchdog and its diagnosis) unless `--detach`.
"""

import dataclasses
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml

from components import config as stack_config
from contracts import bucket as layout
from mlplat import clikit
from mlplat.cloud.common import (
    DEFAULT_EXPERIMENT,
    SageMakerJob,
    TrainError,
    TrainingRun,
    default_job_name,
    parse_hyperparameters,
)
from mlplat.cloud.eks import default_kubeconfig, eks_manifests
from mlplat.cloud.sagemaker import (
    ISOLATED_TRACKING_URI,
    TrainResult,
    plan_sagemaker_job,
    run_sagemaker,
    sdk_available,
    training_job_request,
)
from mlplat.outputs import CloudError, check_tracking_uri, load_outputs

__all__ = [
    "DEFAULT_EXPERIMENT",
    "ISOLATED_TRACKING_URI",
    "default_job_name",
    "plan_sagemaker_job",
    "register",
    "run_sagemaker",
    "sdk_available",
    "train_command",
]


class Target(StrEnum):
    sagemaker = "sagemaker"
    eks = "eks"


class Client(StrEnum):
    auto = "auto"
    sdk = "sdk"
    boto3 = "boto3"


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
    detach: Annotated[
        bool, typer.Option("--detach", help="EKS: create the job and return without following it")
    ] = False,
    schedule_timeout: Annotated[
        float | None,
        typer.Option(
            "--schedule-timeout",
            help="EKS: seconds a rank may wait to start before the job fails with the reason "
            "[default: the stack's training.scheduleTimeoutSeconds, 900]",
        ),
    ] = None,
    max_retries: Annotated[
        int, typer.Option("--max-retries", help="EKS: failures retried (disruptions and bad input do not count)")
    ] = 2,
    last_attempt_on_demand: Annotated[
        bool, typer.Option("--last-attempt-on-demand", help="EKS: run the final attempt on on-demand capacity")
    ] = False,
    entry_point: Annotated[
        str | None, typer.Option("--entry-point", help="script mode: your script in --source-dir")
    ] = None,
    source_dir: Annotated[Path | None, typer.Option("--source-dir", help="script mode: your project")] = None,
) -> None:
    """Launch the training container in the cloud with everything the stack provides, and follow it to the end."""
    if schedule_timeout is not None and schedule_timeout <= 0:
        bad_input(f"--schedule-timeout must be > 0 seconds (got {schedule_timeout:g})")
    if max_retries < 0:
        bad_input(f"--max-retries must be >= 0 (got {max_retries})")
    try:
        stack, path = clikit.resolve_stack(stack, stack_file)
        cfg = stack_config.load_stack_file(path)
        stack_outputs = load_outputs(stack, outputs)
        model_name = model or (cfg.endpoints[0].model if cfg.endpoints else None)
        if model_name is None:
            raise TrainError(f"stack {stack!r} has no endpoint to take the model name from; pass --model")
        uri = tracking_uri or stack_outputs.tracking_server_arn
        extra = parse_hyperparameters(hp or [])
        source = _script_source(entry_point, source_dir, stack_outputs.bucket_name)
        # A pod's hostname carries the Job's name, so EKS names are shorter and unprefixed.
        default_name = (
            default_job_name("", model_name, max_length=50)
            if on is Target.eks
            else default_job_name(f"mlplat-{cfg.environment}", model_name)
        )
        training = TrainingRun(
            stack_outputs, cfg, model_name, dataset or model_name, dataset_version, job_name or default_name, uri
        )
        if on is Target.eks:
            follow = EksFollow(
                detach, schedule_timeout or cfg.training.schedule_timeout_seconds, max_retries,
                last_attempt_on_demand, poll_interval, timeout, experiment,
            )  # fmt: skip
            _train_on_eks(
                training,
                instances, pool, team, gpus_per_rank, image, epochs, extra, dry_run, kubeconfig, context, as_json,
                follow, source,
            )  # fmt: skip
            return
        if source is not None:
            # What the SageMaker SDK's estimators send: the program and the archive's URI, JSON-encoded.
            extra["sagemaker_program"] = json.dumps(source.entry_point)
            extra["sagemaker_submit_directory"] = json.dumps(source.uri)
        job = plan_sagemaker_job(
            training,
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
        if source is not None:
            # Script mode: the script takes only its own hyperparameters; the runtime reads ours from the environment.
            script_params = {k: v for k, v in job.hyperparameters.items() if k in extra or k == "epochs"}
            environment = {**job.environment, "MLPLAT_REGISTERED_MODEL_NAME": model_name}
            environment["MLFLOW_EXPERIMENT_NAME"] = experiment
            job = dataclasses.replace(job, hyperparameters=script_params, environment=environment)
        if dry_run:
            typer.echo(json.dumps(training_job_request(job), indent=2))
            return
        if source is not None:
            source.upload()
        check_tracking_uri(uri)  # this command logs or looks up the run itself
        if client is Client.sdk and not sdk_available():
            raise TrainError("--client sdk needs the SageMaker Python SDK: pip install 'mlplat[cloud]'")
        use_sdk = None if client is Client.auto else client is Client.sdk
        result = _run_with_progress(job, training, experiment, timeout, poll_interval, as_json, use_sdk)
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


@dataclass(frozen=True)
class ScriptSource:
    """Script mode's entry point and source archive, and where it goes in the stack's bucket."""

    entry_point: str
    archive: bytes
    uri: str

    def upload(self) -> None:
        """Put the archive at its content-addressed key (the same bytes always land on the same key)."""
        import boto3

        bucket, key = layout.split_s3_uri(self.uri)
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=self.archive)


def _script_source(entry_point: str | None, source_dir: Path | None, bucket: str) -> ScriptSource | None:
    """Script mode's archive and its content-addressed S3 URI, or None for the built-in trainer."""
    from mlplat import sourcedir

    if entry_point is None and source_dir is None:
        return None
    if entry_point is None or source_dir is None:
        raise TrainError("--entry-point and --source-dir go together")
    try:
        content, digest = sourcedir.pack(source_dir, entry_point)
    except sourcedir.SourceError as exc:
        raise TrainError(str(exc)) from None
    return ScriptSource(entry_point, content, layout.s3_uri(bucket, sourcedir.key(digest)))


def _run_with_progress(
    job: SageMakerJob,
    training: TrainingRun,
    experiment: str,
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

        return run_sagemaker(job, training, experiment, timeout, poll_interval, on_change, use_sdk, on_submitted)


@dataclass(frozen=True)
class EksFollow:
    """How `--on eks` follows the job it creates."""

    detach: bool
    schedule_timeout: float
    max_retries: int
    last_attempt_on_demand: bool
    poll_interval: float
    timeout: float
    experiment: str


def bad_input(message: str) -> NoReturn:
    """End the command with one line on stderr and exit status 2 (bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _train_on_eks(
    training: TrainingRun,
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
    follow: EksFollow,
    source: ScriptSource | None,
) -> None:
    from mlplat.jobs import diagnose, eks

    outputs, cfg, tracking_uri = training.outputs, training.cfg, training.tracking_uri

    if source is None:
        args = [f"--epochs={epochs}"] if epochs is not None else []
        args += [f"--{k.replace('_', '-')}={v}" for k, v in extra.items()]
        script_params: dict[str, str] = {}
    else:
        # Script mode: the script takes only its own hyperparameters (SM_HPS, and `--key value` from the runtime).
        args = []
        script_params = {**({"epochs": str(epochs)} if epochs is not None else {}), **extra}
    manifests = eks_manifests(
        training,
        ranks=ranks,
        pool=pool,
        team=team,
        gpus_per_rank=gpus_per_rank,
        image=image,
        extra_args=args,
        max_retries=follow.max_retries,
        schedule_timeout_seconds=max(1, math.ceil(follow.schedule_timeout)),
        script=(source.entry_point, source.uri) if source else None,
        hyperparameters=script_params,
        experiment=follow.experiment if source else None,
    )
    if dry_run:
        if as_json:
            typer.echo(json.dumps(manifests, indent=2))
            return
        typer.echo(
            f"# schedule timeout: {follow.schedule_timeout:g} s (a rank not running by then fails the job with the "
            f"reason); retries: {follow.max_retries} (disruptions and bad input do not count)"
        )
        if source is not None:
            typer.echo(
                f"# script mode: {source.entry_point} from {source.uri} (uploaded when the job is created); "
                f"hyperparameters {json.dumps(script_params, sort_keys=True)}"
            )
        typer.echo(yaml.safe_dump_all(manifests, sort_keys=False), nl=False)
        return
    config_path = kubeconfig or default_kubeconfig()
    if not config_path.is_file():
        cluster = outputs.cluster_name or "<clusterName>"
        raise TrainError(
            f"no kubeconfig at {config_path}: run `aws eks update-kubeconfig --name {cluster}` "
            "or pass --dry-run to print the manifests"
        )
    say = (lambda line: typer.echo(line, err=True)) if as_json else typer.echo
    kube = eks.kube_for(config_path, context)
    if source is not None:
        source.upload()
        say(f"uploaded {source.uri}")
    eks.create(kube, manifests, say)
    if follow.detach:
        say(f"detached: `mlplat jobs --stack {cfg.environment}` shows it")
        return
    run = eks.run_job(
        kube, manifests, tracking_uri=tracking_uri, experiment=follow.experiment,
        schedule_timeout=follow.schedule_timeout, poll_interval=follow.poll_interval, timeout=follow.timeout,
        max_retries=follow.max_retries, last_attempt_on_demand=follow.last_attempt_on_demand,
        pools=diagnose.pool_offers(cfg), quotas=diagnose.team_quotas(cfg), on_line=say,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(run.__dict__, indent=2))
        return
    typer.echo(f"training job {run.namespace}/{run.job_name} succeeded after {run.attempts} attempt(s)")
    typer.echo(f"  run       {run.run_link or 'not found in the job log'}")
    if run.result:
        shown = {
            k: run.result[k] for k in ("registered_model_name", "version", "test_rmse", "decision") if k in run.result
        }
        typer.echo("  result    " + ", ".join(f"{k}={v}" for k, v in shown.items()))


def register(app: typer.Typer) -> None:
    """Add `mlplat train` to the root app."""
    clikit.command(app, "train", train_command, panel=clikit.CLOUD)
