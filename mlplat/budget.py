"""`mlplat budget restore`: undo exactly what the budget enforcer recorded for a stack, or say there is nothing."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from components.budget import record_parameter
from components.config import ConfigError, load_stack_file, stack_file
from components.functions import budget_enforcer

EXIT_USAGE = 2
EXIT_FAILED = 1

app = typer.Typer(
    name="budget", help="The budget's enforcement: what it changed, and undoing it.", no_args_is_help=True
)


def _clients(region: str, endpoint_url: str | None) -> budget_enforcer.ClientFactory:
    import boto3

    def make(service: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=endpoint_url)

    return make


@app.command("restore")
def restore(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack to restore.", envvar="MLPLAT_STACK")],
    stack_file_path: Annotated[
        Path | None,
        typer.Option(
            "--stack-file", help="Stack file instead of stacks/Pulumi.<stack>.yaml.", envvar="MLPLAT_STACK_FILE"
        ),
    ] = None,
    topic_arn: Annotated[
        str | None, typer.Option("--topic-arn", help="Post what was restored to this topic (the budget topic).")
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", help="AWS endpoint override (an S3-compatible test server).", hidden=True),
    ] = None,
) -> None:
    """Put the stack's endpoints back as the enforcer found them, then delete its record."""
    console, errors = Console(), Console(stderr=True)
    try:
        config = load_stack_file(stack_file_path or stack_file(stack))
    except ConfigError as exc:
        for problem in exc.problems:
            errors.print(problem, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    parameter = record_parameter(config.environment)
    clients = _clients(config.region, endpoint_url)
    try:
        record = budget_enforcer.restore(clients, parameter, topic_arn or "")
    except budget_enforcer.NothingRecorded:
        console.print(f"{stack}: nothing recorded at {parameter}; nothing to restore, nothing changed", highlight=False)
        return
    except Exception as exc:  # botocore's ClientError and credential errors: one line, never a traceback
        errors.print(f"error: restore of {stack} failed: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    console.print(budget_enforcer.describe(record, "restored"), markup=False, highlight=False)


def register(root: typer.Typer) -> None:
    """Add `mlplat budget ...` to the root app."""
    root.add_typer(app)
