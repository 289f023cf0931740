"""`mlplat up|status|down --local`: the local platform's commands; the work is in `mlplat.local.platform`."""

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlplat import clikit
from mlplat.local import state as st
from mlplat.local.platform import (
    DEFAULT_EPOCHS,
    STEPS,
    LocalPlatform,
    PartStatus,
    StopResult,
    UpOptions,
    UpReport,
    UserProject,
    cost_estimate,
    display,
)

CLOUD_HINT = "only the local platform is handled here: add --local (cloud stacks deploy with `pulumi up`)"


class Db(StrEnum):
    sqlite = "sqlite"
    postgres = "postgres"


def _opt(*flags: str, help: str, envvar: str, **kwargs: Any) -> Any:
    return typer.Option(*flags, help=help, envvar=envvar, **kwargs)


LocalFlag = Annotated[
    bool, _opt("--local", help="Act on the local platform (127.0.0.1), not a cloud stack.", envvar="MLPLAT_LOCAL")
]
HomeOption = Annotated[
    Path | None,
    _opt(
        "--home",
        help="Where the local platform keeps its state, logs and data (default: .mlplat/ at the project root).",
        envvar=st.HOME_ENV,
        file_okay=False,
    ),
]
JsonFlag = Annotated[bool, _opt("--json", help="Print the report as JSON on stdout.", envvar="MLPLAT_JSON")]
StackOption = Annotated[
    str,
    _opt("--stack", "-s", help="The stack the local platform mirrors (bucket, model, cost).", envvar="MLPLAT_STACK"),
]
DbOption = Annotated[
    Db,
    _opt("--db", help="MLflow's backend store: SQLite, or PostgreSQL from this machine.", envvar="MLPLAT_LOCAL_DB"),
]
SmokeFlag = Annotated[
    bool, _opt("--smoke", help="Stop everything again after the first prediction.", envvar="MLPLAT_SMOKE")
]
EpochsOption = Annotated[
    int | None,
    _opt(
        "--epochs",
        min=1,
        help=f"Epochs of the training job [default: {DEFAULT_EPOCHS}; with --entry-point, your script's own].",
        envvar="MLPLAT_LOCAL_EPOCHS",
    ),
]
EntryPointOption = Annotated[
    str | None,
    _opt(
        "--entry-point",
        help="Your training script in --source-dir, run instead of the built-in trainer (script mode).",
        envvar="MLPLAT_ENTRY_POINT",
    ),
]
SourceDirOption = Annotated[
    Path | None,
    _opt(
        "--source-dir",
        help="Your project's directory; its model is registered and served under the directory's name.",
        envvar="MLPLAT_SOURCE_DIR",
    ),
]
PortOption = Annotated[
    int | None,
    _opt(
        "--port",
        min=1,
        max=65535,
        help="Serving port (default: 8080, or a free port when 8080 is busy).",
        envvar="MLPLAT_SERVING_PORT",
    ),
]
RetrainFlag = Annotated[
    bool, _opt("--retrain", help="Train and promote again even when a champion exists.", envvar="MLPLAT_RETRAIN")
]
PurgeFlag = Annotated[
    bool, _opt("--purge", help="Also delete the home (database, bucket snapshot, logs).", envvar="MLPLAT_PURGE")
]


class RichReporter:
    """Draws `up`'s six steps as a Rich progress display on stderr."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[int, TaskID] = {}

    def begin(self, index: int, key: str, title: str) -> None:
        self.tasks[index] = self.progress.add_task(f"{index}/{len(STEPS)} {title}", total=1)

    def end(self, index: int, detail: str) -> None:
        task = self.tasks[index]
        title = STEPS[index - 1][1]
        self.progress.update(task, completed=1, description=f"{index}/{len(STEPS)} {title}: [green]{detail}")

    def note(self, message: str) -> None:
        self.progress.console.print(f"[yellow]note:[/] {message}")


class PlainReporter:
    """`up`'s steps as plain lines, for logs and pipes: no spinner frames, nothing redrawn."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def begin(self, index: int, key: str, title: str) -> None:
        self.console.print(f"{index}/{len(STEPS)} {title} ...", markup=False, highlight=False)

    def end(self, index: int, detail: str) -> None:
        title = STEPS[index - 1][1]
        self.console.print(f"{index}/{len(STEPS)} {title}: {detail}", markup=False, highlight=False)

    def note(self, message: str) -> None:
        self.console.print(f"note: {message}", markup=False, highlight=False)


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(finished_text="[green]✓"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _require_local(local: bool) -> None:
    if not local:
        raise clikit.BadInput(CLOUD_HINT)


def up(
    local: LocalFlag = False,
    stack: StackOption = "dev",
    db: DbOption = Db.sqlite,
    smoke: SmokeFlag = False,
    epochs: EpochsOption = None,
    port: PortOption = None,
    retrain: RetrainFlag = False,
    home: HomeOption = None,
    as_json: JsonFlag = False,
    entry_point: EntryPointOption = None,
    source_dir: SourceDirOption = None,
) -> None:
    """Bring the platform up on 127.0.0.1: S3 store, MLflow, training, registry, endpoint, and a real prediction."""
    _require_local(local)
    clikit.resolve_stack(stack, None)
    project = _project(entry_point, source_dir, epochs)
    console = clikit.console(stderr=True)
    options = UpOptions(
        stack=stack, db=db.value, epochs=epochs or DEFAULT_EPOCHS, port=port, retrain=retrain, project=project
    )
    if console.is_terminal:
        with _progress(console) as progress:
            platform = LocalPlatform(home, reporter=RichReporter(progress))
            report = platform.up(options)
            task = progress.add_task(f"cost estimate of the {stack} stack", total=1)
            report.cost = cost_estimate(stack)
            progress.update(task, completed=1)
    else:
        platform = LocalPlatform(home, reporter=PlainReporter(console))
        report = platform.up(options)
        report.cost = cost_estimate(stack)
        console.print(f"cost estimate of the {stack} stack: done", highlight=False)
    stopped: list[StopResult] = []
    if smoke:
        stopped = platform.down()
    if as_json:
        data = report.to_json()
        if smoke:
            data["stopped"] = [_stop_json(r) for r in stopped]
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    out = _stdout()
    _print_report(out, report)
    if smoke:
        out.print(f"smoke: stopped {len([r for r in stopped if r.outcome == 'stopped'])} processes")
    else:
        out.print("stop it with: mlplat down --local" + _home_flag(platform))


def _project(entry_point: str | None, source_dir: Path | None, epochs: int | None) -> UserProject | None:
    """The user's project of `--entry-point/--source-dir`, checked before anything starts; None without them."""
    from mlplat import sourcedir

    if entry_point is None and source_dir is None:
        return None
    if entry_point is None or source_dir is None:
        raise clikit.BadInput("--entry-point and --source-dir go together")
    try:
        _, digest = sourcedir.pack(source_dir, entry_point)
    except sourcedir.SourceError as exc:
        raise clikit.BadInput(str(exc)) from None
    model = re.sub(r"[^a-z0-9]+", "-", source_dir.resolve().name.lower()).strip("-") or "model"
    return UserProject(entry_point, source_dir.resolve(), model, digest, epochs)


def _stdout() -> Console:
    """stdout; whole cells and lines when it is not a terminal (a pipe, a log, CliRunner)."""
    return clikit.console()


def _print_report(out: Console, report: UpReport) -> None:
    prediction = report.prediction
    if prediction["actual"] is None:
        out.print(
            f"prediction: {_fmt(prediction['prediction'])} for the model's {prediction['input']['example']}",
            highlight=False,
        )
    else:
        inputs = ", ".join(f"{k}={v}" for k, v in prediction["input"].items())
        out.print(
            f"prediction: {_fmt(prediction['prediction'])} for {inputs} (actual {_fmt(prediction['actual'])})",
            highlight=False,
        )
    model = report.model
    metrics = model.get("metrics") or {}
    table = Table(title=f"local platform ({report.stack} stack)", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("S3 store", f"{report.urls['s3']}  s3://{report.bucket}/")
    if "postgres" in report.urls:
        table.add_row("PostgreSQL", report.urls["postgres"])
    table.add_row("MLflow", report.urls["mlflow"])
    table.add_row("endpoint", f"{report.urls['serving']}/invocations")
    table.add_row("run id", str(model.get("run_id")))
    table.add_row("model", f"{model['uri']} = version {model['version']}")
    test_rmse = model.get("test_rmse", metrics.get("test_rmse"))
    ratio = model.get("rmse_ratio_to_mean", metrics.get("rmse_ratio_to_mean"))
    if test_rmse is None and metrics:
        table.add_row("metrics", ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(metrics.items())))
    else:
        table.add_row("test RMSE", _fmt(test_rmse) + (f" ({_fmt(ratio)} of the mean)" if ratio is not None else ""))
    if model.get("decision"):
        table.add_row("promotion", str(model["decision"]))
    job = model.get("last_job")
    if isinstance(job, dict):
        table.add_row(
            "last training job",
            f"version {job.get('version')}: {job.get('decision')} (test RMSE {_fmt(job.get('test_rmse'))}), "
            f"version {model['version']} stays champion",
        )
    table.add_row("first prediction", f"{report.seconds_to_first_prediction:.1f} s after start")
    table.add_row(f"cloud cost ({report.stack})", _cost_text(report.cost))
    table.add_row("state", display(report.home))
    out.print(table)


def _cost_text(cost: dict[str, Any] | None) -> str:
    if not cost or not cost.get("available"):
        return "not available" + (f" ({cost['reason']})" if cost and cost.get("reason") else "")
    text = f"${cost['idle_monthly_usd']:,.2f}/month idle, ${cost['peak_monthly_usd']:,.2f} at peak"
    if cost.get("budget_usd") is not None:
        text += f" (budget ${cost['budget_usd']:,.0f})"
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, list) and len(value) == 1:
        return _fmt(value[0])
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(item) for item in value) + "]"
    return "n/a" if value is None else str(value)


def _home_flag(platform: LocalPlatform) -> str:
    return "" if platform.home == st.default_home() else f" --home {display(platform.home)}"


def status(local: LocalFlag = False, home: HomeOption = None, as_json: JsonFlag = False) -> None:
    """Each part of the local platform: pid, port, healthy or not. Exits 1 when a part is down or nothing runs."""
    _require_local(local)
    platform = LocalPlatform(home)
    current = platform.state()
    parts = platform.status()
    healthy = bool(parts) and all(p.healthy for p in parts)
    if as_json:
        data = {
            "home": str(platform.home),
            "running": bool(parts),
            "healthy": healthy,
            "stack": current.stack if current else None,
            "db": current.db if current else None,
            "model": current.model if current else {},
            "parts": [p.to_json() for p in parts],
        }
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    elif not parts:
        typer.echo(f"the local platform is not running under {display(platform.home)}")
    else:
        _print_status(_stdout(), parts)
    if not healthy:
        raise typer.Exit(1)


def _print_status(out: Console, parts: list[PartStatus]) -> None:
    table = Table(title="local platform", title_justify="left")
    for column in ("part", "pid", "port", "url", "state", "log"):
        table.add_column(column, overflow="fold")
    for part in parts:
        state = "[green]healthy" if part.healthy else ("[red]unhealthy" if part.alive else "[red]dead")
        table.add_row(part.name, str(part.pid), str(part.port), part.url, state, display(Path(part.log)))
    out.print(table)


def down(
    local: LocalFlag = False, purge: PurgeFlag = False, home: HomeOption = None, as_json: JsonFlag = False
) -> None:
    """Stop exactly the processes `up` started (recorded by pid); keep the data unless --purge. Idempotent."""
    _require_local(local)
    platform = LocalPlatform(home)
    results = platform.down(purge=purge)
    if as_json:
        data = {"home": str(platform.home), "purged": purge, "parts": [_stop_json(r) for r in results]}
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    if not results:
        typer.echo(f"nothing to stop under {display(platform.home)}" + ("; purged" if purge else ""))
        return
    for result in results:
        typer.echo(f"{result.name}: {result.outcome} (pid {result.pid})")
    if purge:
        typer.echo(f"purged {display(platform.home)}")


def _stop_json(result: StopResult) -> dict[str, Any]:
    return {"name": result.name, "pid": result.pid, "outcome": result.outcome, "signalled": result.signalled}


def register(app: typer.Typer) -> None:
    """Add `up`, `status` and `down` to the root command line."""
    clikit.command(app, "up", up, panel=clikit.LOCAL)
    clikit.command(app, "status", status, panel=clikit.LOCAL)
    clikit.command(app, "down", down, panel=clikit.LOCAL)
