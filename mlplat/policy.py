"""`mlplat policy`: run the mlplat-guard pack over a stack's offline plan, with the functions the engine runs.

The same registry entries that `policies/__main__.py` hands to CrossGuard run here over the plan record of
`mlplat.synth`: resource policies see each custom resource's inputs (camelCase keys, wrapped in the engine's
unknown-checking proxy, so a value unknown at preview becomes an advisory note exactly as in `pulumi preview`),
stack policies see every resource. Enforcement levels and thresholds come from the same `--policy-pack-config`
file (`policies/config/<environment>.json`). The peak cost the budget policy compares against is the estimate of
`mlplat cost`, so both commands agree.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy
from rich.console import Console
from rich.markup import escape

from components.config import display_path
from mlplat import clikit, synth
from mlplat.cost.estimate import estimate
from mlplat.cost.model import Estimate
from mlplat.plan_record import load_plan
from mlplat.policy_config import COST_POLICY, ESTIMATE_KEY, PolicyConfigError, config_path, load_pack_config
from policies import registry
from policies.base import StackResource

EXIT_VIOLATIONS = clikit.EXIT_FAILED

__all__ = ["PolicyConfigError", "load_plan"]  # importable from here as before the split


@dataclass(frozen=True)
class Finding:
    """One violation of one policy by one resource (or the stack, when `urn` is None)."""

    policy: str
    enforcement: str
    message: str
    urn: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"policy": self.policy, "enforcement": self.enforcement, "urn": self.urn, "message": self.message}


@dataclass(frozen=True)
class PolicyReport:
    """The pack's verdict on one stack."""

    stack: str
    environment: str
    stack_file: str
    policy_config: str
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]
    evaluated: tuple[str, ...]
    disabled: tuple[str, ...]
    estimated_peak_usd: float | None = None
    resources: int = 0
    _levels: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def mandatory(self) -> list[Finding]:
        """Violations that block a deployment."""
        return [f for f in self.findings if f.enforcement == "mandatory"]

    @property
    def advisory(self) -> list[Finding]:
        """Violations that only warn."""
        return [f for f in self.findings if f.enforcement == "advisory"]

    def by_policy(self) -> dict[str, list[Finding]]:
        """Findings grouped by policy, in registry order."""
        grouped: dict[str, list[Finding]] = {}
        for finding in self.findings:
            grouped.setdefault(finding.policy, []).append(finding)
        return grouped

    def to_json(self) -> dict[str, Any]:
        """The report's JSON form."""
        return {
            "schemaVersion": 1,
            "policyPack": registry.PACK_NAME,
            "stack": self.stack,
            "environment": self.environment,
            "stackFile": self.stack_file,
            "policyConfig": self.policy_config,
            "resources": self.resources,
            "policies": {"evaluated": list(self.evaluated), "disabled": list(self.disabled)},
            "summary": {"mandatory": len(self.mandatory), "advisory": len(self.advisory)},
            "violations": [f.to_json() for f in self.findings],
            "notes": list(self.notes),
            ESTIMATE_KEY: self.estimated_peak_usd,
        }


def _stack_resources(record: synth.PlanRecord) -> list[StackResource]:
    return [
        StackResource(
            urn=r.urn,
            type=r.type,
            name=r.name,
            props=unknown_checking_proxy(json.loads(json.dumps(r.inputs))),
            parent=r.parent or None,
        )
        for r in record.resources
    ]


def evaluate(
    record: synth.PlanRecord,
    pack_config: Mapping[str, Any],
    policy_config: str = "",
    cost: Estimate | None = None,
) -> PolicyReport:
    """Run every enabled policy of the pack over a plan record."""
    findings: list[Finding] = []
    notes: list[str] = []
    evaluated: list[str] = []
    disabled: list[str] = []
    stack_resources = _stack_resources(record)
    peak = cost.peak_total if cost is not None else None
    for spec in registry.POLICIES:
        level = registry.enforcement(spec, pack_config)
        if level == "disabled":
            disabled.append(spec.name)
            continue
        level = "mandatory" if level == "remediate" else level
        evaluated.append(spec.name)
        settings = registry.policy_properties(spec, pack_config)
        if spec.name == COST_POLICY and ESTIMATE_KEY not in settings and peak is not None:
            settings[ESTIMATE_KEY] = round(peak, 2)
        if spec.stack_check is not None:
            try:
                violations = spec.stack_check(stack_resources, settings)
            except UnknownValueError as exc:
                notes.append(f"{spec.name}: can't run during preview: {exc.message}")
                continue
            findings += [Finding(spec.name, level, v.message, v.urn) for v in violations]
            continue
        assert spec.check is not None
        types = set(spec.resource_types)
        for resource in record.resources:
            if not resource.custom or resource.type not in types:
                continue
            props = unknown_checking_proxy(json.loads(json.dumps(resource.inputs)))
            try:
                messages = spec.check(resource.type, props, settings)
            except UnknownValueError as exc:
                notes.append(f"{spec.name}: can't run on {resource.urn} during preview: {exc.message}")
                continue
            findings += [Finding(spec.name, level, m, resource.urn) for m in messages]
    return PolicyReport(
        stack=record.stack,
        environment=str(record.config.get("environment", "")),
        stack_file=record.stack_file,
        policy_config=policy_config,
        findings=tuple(findings),
        notes=tuple(notes),
        evaluated=tuple(evaluated),
        disabled=tuple(disabled),
        estimated_peak_usd=round(peak, 2) if peak is not None else None,
        resources=len(record.resources),
    )


def check_stack(
    stack: str,
    stack_file_path: Path | None = None,
    plan_path: Path | None = None,
    policy_config_path: Path | None = None,
) -> PolicyReport:
    """Plan (or load) a stack, price it, and evaluate the pack with its environment's policy config."""
    record = synth.plan_or_load(stack, stack_file_path, plan_path)
    path = policy_config_path or config_path(str(record.config.get("environment", stack)))
    pack_config = load_pack_config(path)
    return evaluate(record, pack_config, display_path(path), estimate(record))


def _print_report(report: PolicyReport, console: Console) -> None:
    specs = registry.BY_NAME
    head = (
        f"{registry.PACK_NAME} on {report.stack} ({report.stack_file}, {report.policy_config}): "
        f"{len(report.evaluated)} policies over {report.resources} resources"
    )
    console.print(head, highlight=False, markup=False)
    for name, findings in report.by_policy().items():
        level = findings[0].enforcement
        style = "bold red" if level == "mandatory" else "yellow"
        console.print(f"\n[{style}]{name}[/] \\[{level}] {escape(specs[name].description)}", highlight=False)
        for finding in findings:
            console.print(f"  {finding.urn or '(the stack)'}", highlight=False, markup=False, soft_wrap=True)
            console.print(f"    {finding.message}", highlight=False, markup=False, soft_wrap=True)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    if report.disabled:
        console.print(f"\ndisabled by the policy config: {', '.join(report.disabled)}", highlight=False)
    verdict = "[bold red]FAIL[/]" if report.mandatory else "[bold green]PASS[/]"
    console.print(
        f"\n{verdict} {len(report.mandatory)} mandatory, {len(report.advisory)} advisory violation(s)",
        highlight=False,
    )


def policy_list() -> list[dict[str, str]]:
    """The pack's policies as `--list --json` prints them."""
    return [
        {
            "name": spec.name,
            "domain": spec.domain,
            "enforcement": spec.enforcement,
            "kind": "stack" if spec.is_stack_policy else "resource",
            "description": spec.description,
        }
        for spec in registry.POLICIES
    ]


def _print_list(console: Console) -> None:
    for item in policy_list():
        console.print(
            f"{item['name']:36} {item['domain']:10} {item['enforcement']:9} {item['kind']:8} {item['description']}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def policy(
    stack: clikit.StackOption = None,
    stack_file_path: clikit.StackFileOption = None,
    plan_path: clikit.PlanOption = None,
    policy_config_path: Annotated[
        Path | None,
        typer.Option(
            "--policy-config",
            help="Policy pack config (default policies/config/<environment>.json).",
            envvar="MLPLAT_POLICY_CONFIG",
            dir_okay=False,
        ),
    ] = None,
    as_json: clikit.JsonFlag = False,
    json_out: clikit.JsonOutOption = None,
    list_policies: Annotated[bool, typer.Option("--list", help="List the pack's policies and exit.")] = False,
) -> None:
    """Evaluate the mlplat-guard policy pack on a stack's offline plan; exit 1 on any mandatory violation."""
    console = clikit.console(stderr=as_json)
    if list_policies:
        if not as_json:
            _print_list(console)
        clikit.emit_json(policy_list(), as_json, json_out)
        return
    if plan_path is not None:  # the plan stands for the stack file; the name only checks it is this stack's
        name, path = clikit.stack_name(stack, stack_file_path), stack_file_path
    else:
        name, path = clikit.resolve_stack(stack, stack_file_path)
    report = check_stack(name, path, plan_path, policy_config_path)
    if not as_json:
        _print_report(report, console)
    clikit.emit_json(report.to_json(), as_json, json_out)
    if report.mandatory:
        raise typer.Exit(EXIT_VIOLATIONS)


def register(app: typer.Typer) -> None:
    """Add `mlplat policy` to the root app."""
    clikit.command(app, "policy", policy, panel=clikit.GOVERNANCE)
