"""`mlplat monitor`: compare what an endpoint saw with what its model was trained on, and act on drift.

Exit status: 0 no drift, 3 drift over the environment's threshold, 2 bad input (no capture in the window, no
reference profile, unknown endpoint or stack), 1 a retraining run that failed.
"""

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mlplat import clikit
from mlplat.monitor import report as render
from mlplat.monitor.capture import parse_duration
from mlplat.monitor.drift import Thresholds
from mlplat.monitor.run import MonitorInputError, MonitorResult, Target, explicit_target, monitor
from mlplat.monitor_cmd import table, targets
from mlplat.monitor_cmd.retrain import RetrainError, retrain_local, retrain_stack

EXIT_OK = clikit.EXIT_OK
EXIT_RETRAIN_FAILED = clikit.EXIT_FAILED
EXIT_BAD_INPUT = clikit.EXIT_BAD_INPUT
EXIT_DRIFT = clikit.EXIT_DRIFT


def _output_dir(target: Target, explicit: Path | None, home: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    from mlplat.local.state import default_home

    home = home or default_home()
    return home / "monitor" / target.endpoint / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _target(
    local: bool,
    home: Path | None,
    stack: str | None,
    capture: str | None,
    endpoint: str | None,
    outputs: Path | None,
    tracking_uri: str | None,
    psi_threshold: float | None,
    p_value: float | None,
    model: str | None,
    model_version: str | None,
    alarm_topic: str | None,
    min_records: int | None = None,
    stack_file: Path | None = None,
) -> Target:
    if stack_file is not None:
        stack, stack_file = clikit.resolve_stack(stack, stack_file)
    chosen = [flag for flag, given in (("--local", local), ("--stack", stack), ("--capture", capture)) if given]
    if len(chosen) != 1:
        raise MonitorInputError("give exactly one of --local, --stack <env> or --capture <dir|s3://...>")
    if local:
        target = targets.local_target(endpoint, home)
    elif stack:
        if stack_file is None:
            clikit.resolve_stack(stack, None)
        target = targets.stack_target(stack, endpoint, outputs, stack_file)
    else:
        assert capture is not None
        target = explicit_target(capture, endpoint, tracking_uri, Thresholds())
    return replace(
        target,
        thresholds=targets.override(target.thresholds, psi_threshold, p_value, min_records),
        model_name=model or target.model_name,
        model_version=model_version or target.model_version,
        alarm_topic_arn=alarm_topic,
    )


def monitor_command(
    local: Annotated[bool, typer.Option("--local", help="monitor the local platform (`mlplat up --local`)")] = False,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="the local platform's state directory", envvar="MLPLAT_HOME", file_okay=False),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option("--stack", "-s", help="monitor a deployed stack (dev, staging, prod)", envvar="MLPLAT_STACK"),
    ] = None,
    stack_file: clikit.StackFileOption = None,
    capture: Annotated[
        str | None,
        typer.Option("--capture", help="capture location outright: a directory or s3://bucket/data-capture/<ep>/"),
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="endpoint name [default: the platform's or stack's first]")
    ] = None,
    since: Annotated[str, typer.Option("--since", help="capture window, e.g. 30m, 24h, 7d")] = "24h",
    profile: Annotated[
        Path | None, typer.Option("--profile", help="reference profile JSON instead of the model version's")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="registered model, when the capture does not say")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="model version, when the capture does not say")
    ] = None,
    outputs: clikit.OutputsOption = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option("--tracking-uri", help="MLflow URL or ARN (with --capture)", envvar="MLFLOW_TRACKING_URI"),
    ] = None,
    psi_threshold: Annotated[
        float | None,
        typer.Option(
            "--psi-threshold", min=0, help="PSI at or over this counts as a shift [default: monitoring.psiThreshold]"
        ),
    ] = None,
    p_value: Annotated[
        float | None,
        typer.Option(
            "--p-value",
            min=0,
            max=1,
            help="a test p-value under this counts as significant [default: monitoring.pValue]",
        ),
    ] = None,
    min_records: Annotated[
        int | None,
        typer.Option(
            "--min-records",
            min=1,
            help="fewer captured rows than this give 'not enough data' and exit 0 [default: monitoring.minRecords, 50]",
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            help="where report.json and the plots go [default: .mlplat/monitor/<endpoint>/<time>]",
            envvar="MLPLAT_MONITOR_OUTPUT",
        ),
    ] = None,
    log_to_mlflow: Annotated[
        bool, typer.Option("--log/--no-log", help="log the drift run to MLflow (experiment mlplat-monitoring)")
    ] = True,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="on drift, train on the newest data set version and register it")
    ] = False,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="epochs of the retraining run")] = None,
    alarm_topic: Annotated[
        str | None, typer.Option("--alarm-topic", help="SNS topic ARN to publish drift to", envvar="MLPLAT_DRIFT_TOPIC")
    ] = None,
    json_output: clikit.JsonFlag = False,
) -> None:
    """Compare the endpoint's captured traffic with its model's training profile; exit 3 on drift, 2 on bad input."""
    console = clikit.console(stderr=json_output)
    try:
        window = parse_duration(since)
    except ValueError as error:
        raise clikit.BadInput(f"--since {error}") from None
    target = _target(
        local, home, stack, capture, endpoint, outputs, tracking_uri, psi_threshold, p_value, model, model_version,
        alarm_topic, min_records, stack_file,
    )  # fmt: skip
    result = monitor(target, window, since, _output_dir(target, output_dir, home), profile, log_to_mlflow)
    status = EXIT_DRIFT if result.report.drifted else EXIT_OK
    if retrain and result.report.drifted:
        status = _retrain(result, outputs, epochs, console)
    if json_output:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print(console, result)
    raise typer.Exit(status)


def _retrain(result: MonitorResult, outputs: Path | None, epochs: int | None, console: Console) -> int:
    target = result.target
    model = result.model_name or target.model_name
    if not model:
        result.notes.append("retraining skipped: the registered model name is unknown (pass --model)")
        return EXIT_DRIFT
    console.print(f"drift over threshold: retraining {model} on the newest data set version ...", highlight=False)
    try:
        if target.label.startswith("local"):
            result.retrain = retrain_local(target, model, result.output_dir / "retrain.log", epochs)
        elif target.stack:
            result.retrain = retrain_stack(target, model, outputs)
        else:
            result.notes.append("retraining needs --local or --stack (where to train is unknown with --capture)")
            return EXIT_DRIFT
    except RetrainError as error:
        result.retrain = {"error": str(error)}
        clikit.report(error)
        return EXIT_RETRAIN_FAILED
    render.write_json(result.output_dir / render.REPORT_FILE, result.to_dict())
    return EXIT_DRIFT


def _print(console: Console, result: MonitorResult) -> None:
    title = (
        f"{result.target.endpoint} ({result.target.label}): {result.model_name} v{result.model_version}, "
        f"last {result.window}, {result.records} capture records"
    )
    table.print_report(console, result.report, title, result.notes)
    if not result.report.enough_data:
        console.print(f"records: {result.records} capture records in the window", highlight=False)
    console.print(f"report: {result.output_dir / render.REPORT_FILE}", highlight=False, soft_wrap=True)
    for plot in result.plots:
        console.print(f"plot:   {plot}", highlight=False, soft_wrap=True)
    if result.mlflow_run_id:
        console.print(f"mlflow: run {result.mlflow_run_id} in experiment mlplat-monitoring", highlight=False)
    if result.alarm_message_id:
        console.print(f"alarm:  published to {result.target.alarm_topic_arn}", highlight=False)
    if result.retrain and "version" in result.retrain:
        console.print(
            f"retrained: {result.model_name} version {result.retrain['version']} "
            f"(run {result.retrain.get('run_id')}, data {result.retrain.get('dataset')})",
            style="bold",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add `mlplat monitor` to the root app."""
    clikit.command(app, "monitor", monitor_command, panel=clikit.LOCAL, no_args_is_help=True)
