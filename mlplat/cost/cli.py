"""`mlplat cost`: the monthly cost of a stack at idle and at peak, per component, against its budget."""

import dataclasses
import json
import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from components.config import display_path, load_stack_file
from components.cost_export import export_name
from mlplat import clikit, policy_config, synth
from mlplat.cost import idle as idle_mod
from mlplat.cost import split
from mlplat.cost.actual import ActualError, ActualReport, Row, actual_report, window
from mlplat.cost.chart import write_actual_chart, write_chart
from mlplat.cost.estimate import estimate
from mlplat.cost.model import Estimate
from mlplat.cost.prices import default_table
from mlplat.outputs import load_outputs

# Cost Explorer answers from one region whatever the stack's.
COST_EXPLORER_REGION = "us-east-1"
TODAY_ENV = "MLPLAT_TODAY"


def _today() -> date:
    """The date staleness is judged against: `MLPLAT_TODAY` (ISO) when set, so tests and CI can pin it."""
    value = os.environ.get(TODAY_ENV)
    return date.fromisoformat(value) if value else date.today()


def _usd(value: float) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _table(result: Estimate) -> Table:
    table = Table(title=f"Monthly cost: {result.stack} ({result.environment}, {result.region})", show_footer=True)
    table.add_column("component", footer="total")
    table.add_column("idle", justify="right", footer=_usd(result.idle_total))
    table.add_column("peak", justify="right", footer=_usd(result.peak_total))
    for component, idle, peak in result.components():
        table.add_row(component, _usd(idle), _usd(peak))
    return table


def _lines(result: Estimate) -> Table:
    table = Table(title="Priced items")
    for column in ("component", "item", "what", "sku", "idle", "peak"):
        table.add_column(column, justify="right" if column in ("idle", "peak") else "left")
    for line in sorted(result.lines, key=lambda x: (x.component, -x.peak_usd, x.item)):
        table.add_row(line.component, line.item, line.description, line.sku, _usd(line.idle_usd), _usd(line.peak_usd))
    return table


def _comparison(left: Estimate, right: Estimate) -> Table:
    table = Table(title=f"{left.stack} vs {right.stack}", show_footer=True)
    names = sorted({c for e in (left, right) for c, _, _ in e.components()})
    a = {c: (i, p) for c, i, p in left.components()}
    b = {c: (i, p) for c, i, p in right.components()}
    table.add_column("component", footer="total")
    table.add_column(f"{left.stack} idle", justify="right", footer=_usd(left.idle_total))
    table.add_column(f"{left.stack} peak", justify="right", footer=_usd(left.peak_total))
    table.add_column(f"{right.stack} idle", justify="right", footer=_usd(right.idle_total))
    table.add_column(f"{right.stack} peak", justify="right", footer=_usd(right.peak_total))
    table.add_column("peak difference", justify="right", footer=_usd(right.peak_total - left.peak_total))
    for name in names:
        li, lp = a.get(name, (0.0, 0.0))
        ri, rp = b.get(name, (0.0, 0.0))
        table.add_row(name, _usd(li), _usd(lp), _usd(ri), _usd(rp), _usd(rp - lp))
    return table


def _verdict(result: Estimate) -> str:
    if result.budget_usd is None:
        return f"{result.stack}: no budget to compare with"
    share = 100 * result.peak_total / result.budget_usd
    state = "within" if result.peak_total <= result.budget_usd else "OVER"
    budget = _usd(result.budget_usd)
    return f"{result.stack}: peak {_usd(result.peak_total)} is {share:.1f}% of the {budget} budget ({state})"


def _usd_table(
    title: str, caption: str, key: str, headers: tuple[str, ...], rows: list[tuple[str, tuple[float, ...]]]
) -> Table:
    """One row per name with its amounts; each amount column is totalled in the footer."""
    table = Table(title=title, caption=caption, show_footer=True)
    table.add_column(key, footer="total")
    for index, header in enumerate(headers):
        table.add_column(header, justify="right", footer=_usd(sum(amounts[index] for _, amounts in rows)))
    for name, amounts in rows:
        table.add_row(name, *(_usd(amount) for amount in amounts))
    return table


def _actual_table(report: ActualReport, title: str, rows: tuple[Row, ...]) -> Table:
    return _usd_table(
        f"{report.stack}: estimate vs actual per {title}",
        f"{report.start} to {report.end} ({report.days} days)",
        title,
        ("estimate idle", "estimate peak", "actual"),
        [(row.name, (row.idle_usd, row.peak_usd, row.actual_usd)) for row in rows],
    )


def cluster_name(environment: str) -> str:
    """The stack's EKS cluster as AWS names it (the platform's compute component names it so)."""
    return f"mlplat-{environment}-compute-cluster"


def _pods_table(report: ActualReport, pods: tuple[split.PodCost, ...]) -> Table:
    return _usd_table(
        f"{report.stack}: pods per team",
        f"EKS split cost, {report.days} days",
        "namespace",
        ("split cost", "unused cost", "total"),
        [(pod.namespace, (pod.split_usd, pod.unused_usd, pod.total_usd)) for pod in pods],
    )


def _idle_table(items: list[idle_mod.IdleItem], days: int) -> Table:
    table = Table(title=f"Idle over the last {days} days", show_footer=True)
    table.add_column("kind", footer="total")
    table.add_column("name")
    table.add_column("why")
    table.add_column("monthly", justify="right", footer=_usd(sum(i.monthly_usd for i in items)))
    for item in items:
        table.add_row(item.kind, item.name, item.detail, _usd(item.monthly_usd))
    return table


def _client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


def stack_estimate(stack: str, stack_file_path: Path | None, plan_path: Path | None, today: date) -> Estimate:
    """Plan (or load) a stack and price it."""
    return estimate(synth.plan_or_load(stack, stack_file_path, plan_path), today=today)


def cost(
    stack: clikit.StackOption = None,
    stack_file_path: clikit.StackFileOption = None,
    plan_path: clikit.PlanOption = None,
    compare: Annotated[
        str | None, typer.Option("--compare", help="Another stack to compare with, component by component.")
    ] = None,
    as_json: clikit.JsonFlag = False,
    json_out: clikit.JsonOutOption = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Write a PNG bar chart of the breakdown here.", dir_okay=False)
    ] = None,
    policy_config_out: Annotated[
        Path | None,
        typer.Option(
            "--policy-config",
            help="Write the stack's policy pack config plus this peak estimate here, for "
            "`pulumi preview --policy-pack policies --policy-pack-config <file>`.",
            dir_okay=False,
        ),
    ] = None,
    actual: Annotated[
        bool,
        typer.Option("--actual", help="Read actual spend from Cost Explorer, per component and per team."),
    ] = False,
    since: Annotated[str, typer.Option("--since", help="With --actual: the window, in days (e.g. 30d).")] = "30d",
    idle: Annotated[
        bool,
        typer.Option("--idle", help="List endpoints with no invocations and GPU nodes with idle GPUs (CloudWatch)."),
    ] = False,
    idle_days: Annotated[int, typer.Option("--idle-days", help="With --idle: the window in days.", min=1)] = 7,
    outputs: clikit.OutputsOption = None,
) -> None:
    """Estimate the stack's monthly cost at idle (autoscalers at minimum) and at peak (at maximum).

    With --actual, set Cost Explorer's actual spend beside it; with --idle, list what costs money and does nothing.
    """
    if actual or idle:
        _measured(stack, stack_file_path, plan_path, actual, since, idle, idle_days, as_json, chart, outputs)
        return
    console = clikit.console(stderr=as_json)
    errors = clikit.console(stderr=True)
    today = _today()
    if plan_path is not None:  # the plan stands for the stack file; the name only checks it is this stack's
        name, path = clikit.stack_name(stack, stack_file_path), stack_file_path
    else:
        name, path = clikit.resolve_stack(stack, stack_file_path)
    clikit.check_writable(chart, policy_config_out, json_out)
    if compare is not None:
        clikit.resolve_stack(compare, None)
    result = stack_estimate(name, path, plan_path, today)
    other = stack_estimate(compare, None, None, today) if compare else None
    if policy_config_out is not None:
        base = policy_config.load_pack_config(policy_config.config_path(result.environment))
        merged = policy_config.with_estimate(base, result.peak_total)
        clikit.write_text(policy_config_out, json.dumps(merged, indent=2) + "\n")
    if chart is not None:
        write_chart(result, chart, other)
    doc: dict[str, Any] = result.to_json()
    if other is not None:
        doc["compare"] = other.to_json()
    if not as_json:
        console.print(_table(result))
        console.print(_lines(result))
        if other is not None:
            console.print(_comparison(result, other))
        for current in [result] if other is None else [result, other]:
            console.print(_verdict(current), highlight=False)
    clikit.emit_json(doc, as_json, json_out)
    for warning in result.warnings:
        errors.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    for written in (chart, policy_config_out, json_out):
        if written is not None:
            console.print(f"wrote {display_path(written)}", highlight=False)


def _measured(
    stack: str | None,
    stack_file_path: Path | None,
    plan_path: Path | None,
    actual: bool,
    since: str,
    idle: bool,
    idle_days: int,
    as_json: bool,
    chart: Path | None,
    outputs: Path | None,
) -> None:
    """`--actual` and `--idle`: what the cloud says, beside the estimate (and, where the stack exports split cost
    allocation data, what its pods cost per namespace)."""
    from botocore.exceptions import BotoCoreError, ClientError

    console = clikit.console(stderr=as_json)
    today = _today()
    name, path = clikit.resolve_stack(stack, stack_file_path)
    clikit.check_writable(chart)
    config = load_stack_file(path)
    result = stack_estimate(name, path, plan_path, today)
    try:
        start, end = window(since, today)
    except ActualError as exc:
        raise clikit.BadInput(str(exc)) from None
    doc: dict[str, Any] = {"stack": name}
    try:
        if actual:
            report = actual_report(_client("ce", COST_EXPLORER_REGION), result, config.team, start, end)
            if config.budget.split_cost_export:
                bucket = load_outputs(name, outputs).bucket_name
                pods = split.pod_costs(
                    _client("s3", config.region),
                    bucket,
                    export_name(config.environment),
                    cluster_name(config.environment),
                    start,
                    end,
                )
                report = dataclasses.replace(report, pods=pods)
            doc["actual"] = report.to_json()
            if chart is not None:
                write_actual_chart(report, chart)
            if not as_json:
                console.print(_actual_table(report, "component", report.components))
                console.print(_actual_table(report, "team", report.teams))
                if report.pods is not None:
                    console.print(_pods_table(report, report.pods))
        if idle:
            begin, finish = idle_mod.idle_window(idle_days)
            cloudwatch = _client("cloudwatch", config.region)
            items = idle_mod.idle_endpoints(cloudwatch, config, result, begin, finish)
            if config.cluster is not None:
                cluster = cluster_name(config.environment)
                items += idle_mod.idle_gpu_nodes(cloudwatch, cluster, default_table(), config.region, begin, finish)
            doc["idle"] = {"days": idle_days, "items": [i.to_json() for i in items]}
            if not as_json:
                console.print(_idle_table(items, idle_days))
    except (ClientError, split.SplitCostError) as exc:
        raise clikit.Failed(str(exc)) from None
    except BotoCoreError as exc:
        if type(exc).__name__ in {"NoCredentialsError", "PartialCredentialsError"}:
            raise  # the error path names the missing credentials and how to provide them
        raise clikit.Failed(str(exc)) from None
    clikit.emit_json(doc, as_json, None)
    if chart is not None and actual:
        console.print(f"wrote {display_path(chart)}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `mlplat cost` to the root app."""
    clikit.command(app, "cost", cost, panel=clikit.GOVERNANCE)
