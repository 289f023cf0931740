"""`mlplat deploy`: preview or update a stack through the Pulumi Automation API, with the policy pack enforced.

Order matters: the offline policy check (`mlplat policy`) runs first, and a stack with any mandatory violation is
refused before a single Automation API call, so no credentials or state backend are touched. Then the stack is
selected (or created) in this project's workspace, the stack file's config is applied where the workspace differs,
and `pulumi preview`/`pulumi up` runs with `--policy-pack policies` and the environment's policy config plus the
peak-cost estimate (the file `mlplat cost --policy-config` writes), streaming the engine's output as it goes.
"""

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pulumi import automation as auto

from components.config import display_path, stack_file
from mlplat import clikit, policy_config
from mlplat import policy as policy_check


class DeployRefused(RuntimeError):
    """The offline check found mandatory violations; nothing was sent to Pulumi."""


def _stack_config(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text()) or {}
    config = document.get("config") or {}
    return {str(k): v for k, v in config.items()}


def _same(current: str, wanted: Any) -> bool:
    if isinstance(wanted, str):
        return current == wanted
    try:
        return bool(json.loads(current) == wanted)
    except ValueError:
        return False


def apply_config(stack: auto.Stack, config: Mapping[str, Any]) -> list[str]:
    """Set each key of the stack file whose value the workspace lacks or holds differently; returns the keys set.

    The shipped stacks' workspace config *is* the stack file (`stackConfigDir: stacks`), so this usually sets
    nothing; it matters for a stack file kept elsewhere (`--stack-file`).
    """
    current = stack.get_all_config()
    changed: list[str] = []
    for key, value in config.items():
        held = current.get(key)
        if held is not None and _same(held.value, value):
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        stack.set_config(key, auto.ConfigValue(value=text, secret=bool(held and held.secret)))
        changed.append(key)
    return changed


def write_policy_config(report: policy_check.PolicyReport, directory: Path) -> Path:
    """The environment's policy config plus the peak estimate, as the engine's `--policy-pack-config` file."""
    base = policy_config.load_pack_config(policy_config.config_path(report.environment))
    merged = policy_config.with_estimate(base, report.estimated_peak_usd or 0.0)
    path = directory / f"policy-{report.stack}.json"
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return path


def run(
    stack_name: str,
    preview: bool,
    stack_file_path: Path | None = None,
    on_output: Callable[[str], None] = print,
) -> policy_check.PolicyReport:
    """Check offline, then preview or update `stack_name` with the pack; raises DeployRefused before any Pulumi call."""
    path = stack_file_path or stack_file(stack_name)
    report = policy_check.check_stack(stack_name, path)
    if report.mandatory:
        raise DeployRefused(
            f"refusing to deploy {stack_name}: {len(report.mandatory)} mandatory policy violation(s); "
            f"see `mlplat policy --stack {stack_name}`"
        )
    with tempfile.TemporaryDirectory(prefix="mlplat-deploy-") as tmp:
        pack_config = write_policy_config(report, Path(tmp))
        stack = auto.create_or_select_stack(stack_name=stack_name, work_dir=str(policy_config.REPO_ROOT))
        for key in apply_config(stack, _stack_config(path)):
            on_output(f"config: set {key} from {display_path(path)}")
        options: dict[str, Any] = {
            "policy_packs": [str(policy_config.POLICY_PACK_DIR)],
            "policy_pack_configs": [str(pack_config)],
            "on_output": on_output,
            "color": "never",
        }
        if preview:
            result = stack.preview(**options)
            changes = ", ".join(f"{op} {n}" for op, n in sorted(result.change_summary.items()))
            on_output(f"preview of {stack_name}: {changes or 'no changes'}")
        else:
            up = stack.up(**options)
            changes = ", ".join(f"{op} {n}" for op, n in sorted((up.summary.resource_changes or {}).items()))
            on_output(f"update of {stack_name}: {up.summary.result} ({changes or 'no changes'})")
    return report


def deploy(
    stack: clikit.StackOption = None,
    preview: Annotated[bool, typer.Option("--preview", help="Preview only: show the changes, create nothing.")] = False,
    stack_file_path: clikit.StackFileOption = None,
    as_json: clikit.JsonFlag = False,
    json_out: clikit.JsonOutOption = None,
) -> None:
    """Preview or deploy a stack with the Automation API and the policy pack; refuses if `mlplat policy` fails."""
    name, path = clikit.resolve_stack(stack, stack_file_path)
    console = clikit.console(stderr=as_json)
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line.rstrip("\n"))
        console.print(line.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)

    if shutil.which("pulumi") is None:
        raise clikit.BadInput("the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/)")
    try:
        report = run(name, preview, path, on_output=say)
    except DeployRefused as exc:
        raise clikit.Failed(str(exc)) from None
    except auto.CommandError as exc:
        raise clikit.Failed(f"pulumi failed: {exc}") from None
    document = {"stack": name, "preview": preview, "policy": report.to_json(), "output": lines}
    clikit.emit_json(document, as_json, json_out)


def register(app: typer.Typer) -> None:
    """Add `mlplat deploy` to the root app."""
    clikit.command(app, "deploy", deploy, panel=clikit.CLOUD)
