"""`mlplat plan`: synthesize a stack offline and show what it would create, as a tree, as counts, and as JSON."""

from typing import Annotated

import typer
from rich.table import Table
from rich.tree import Tree

from mlplat import clikit, synth
from mlplat.plan_record import PlanRecord, walk


def plan(
    stack: clikit.StackOption = None,
    stack_file_path: clikit.StackFileOption = None,
    as_json: clikit.JsonFlag = False,
    json_out: clikit.JsonOutOption = None,
    tree: Annotated[bool, typer.Option("--tree/--no-tree", help="Print the resource tree.")] = True,
) -> None:
    """Run the stack's Pulumi program under mocks (no CLI, no credentials) and record every resource.

    The JSON record (`--json` on stdout, `--json-out PATH` to a file) follows mlplat/plan.schema.json; `mlplat policy`
    and `mlplat cost` read it back with `--plan PATH`.
    """
    name, path = clikit.resolve_stack(stack, stack_file_path)
    clikit.check_writable(json_out)
    console = clikit.console(stderr=as_json)
    with clikit.status(clikit.console(stderr=True), f"Synthesizing {name}..."):
        record = synth.synthesize(path, name)
    if not as_json:
        if tree:
            console.print(_tree(record))
        console.print(_counts(record))
        console.print(f"{len(record.resources)} resources in {record.stack} ({record.stack_file})", highlight=False)
    clikit.emit_json(record.to_json(), as_json, json_out)
    if json_out is not None:
        console.print(f"wrote {json_out}", highlight=False)


def _tree(record: PlanRecord) -> Tree:
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


def _counts(record: PlanRecord) -> Table:
    table = Table(title=f"Resources by type: {record.stack}", show_footer=True)
    table.add_column("type", footer="total")
    table.add_column("count", justify="right", footer=str(len(record.resources)))
    for type_token, count in record.counts.items():
        table.add_row(type_token, str(count))
    return table


def register(app: typer.Typer) -> None:
    """Add `mlplat plan` to the root app."""
    clikit.command(app, "plan", plan, panel=clikit.GOVERNANCE)
