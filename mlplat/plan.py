"""`mlplat plan`: synthesize a stack offline and show what it would create, as a tree, as counts, and as JSON."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from components.config import ConfigError, stack_file
from mlplat import synth
from mlplat.plan_record import walk

EXIT_CONFIG_ERROR = 2
EXIT_SYNTHESIS_ERROR = 1


def plan(
    stack: Annotated[
        str, typer.Option("--stack", "-s", help="Stack to plan: dev, staging or prod.", envvar="MLPLAT_STACK")
    ],
    stack_file_path: Annotated[
        Path | None,
        typer.Option(
            "--stack-file",
            help="Stack file to read instead of stacks/Pulumi.<stack>.yaml.",
            envvar="MLPLAT_STACK_FILE",
            dir_okay=False,
        ),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Write the plan record (mlplat/plan.schema.json) to this file; '-' for stdout."),
    ] = None,
    tree: Annotated[bool, typer.Option("--tree/--no-tree", help="Print the resource tree.")] = True,
) -> None:
    """Run the stack's Pulumi program under mocks (no CLI, no credentials) and record every resource."""
    path = stack_file_path or stack_file(stack)
    to_stdout = json_path is not None and str(json_path) == "-"
    console = Console(stderr=to_stdout)
    errors = Console(stderr=True)
    try:
        with console.status(f"Synthesizing {stack}..."):
            record = synth.synthesize(path, stack)
    except ConfigError as exc:
        for problem in exc.problems:
            errors.print(problem, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG_ERROR) from None
    except synth.SynthesisError as exc:
        errors.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_SYNTHESIS_ERROR) from None

    if tree:
        console.print(_tree(record))
    console.print(_counts(record))
    console.print(f"{len(record.resources)} resources in {record.stack} ({record.stack_file})", highlight=False)

    if json_path is not None:
        text = json.dumps(record.to_json(), indent=2, sort_keys=False) + "\n"
        if to_stdout:
            typer.echo(text, nl=False)
        else:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(text)
            console.print(f"wrote {json_path}", highlight=False)


def _tree(record: synth.PlanRecord) -> Tree:
    root = Tree(f"[bold]{record.project}-{record.stack}[/] (pulumi:pulumi:Stack)")
    nodes = {record.stack_urn: root}
    for _, resource in walk(record):
        parent = nodes.get(resource.parent, root)
        style = "" if resource.custom else "bold cyan"
        label = (
            f"[{style}]{resource.name}[/] [dim]{resource.type}[/]"
            if style
            else f"{resource.name} [dim]{resource.type}[/]"
        )
        nodes[resource.urn] = parent.add(label)
    return root


def _counts(record: synth.PlanRecord) -> Table:
    table = Table(title=f"Resources by type: {record.stack}", show_footer=True)
    table.add_column("type", footer="total")
    table.add_column("count", justify="right", footer=str(len(record.resources)))
    for type_token, count in record.counts.items():
        table.add_row(type_token, str(count))
    return table


def register(app: typer.Typer) -> None:
    """Add `mlplat plan` to the root app."""
    app.command("plan")(plan)
