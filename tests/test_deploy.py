"""`mlplat deploy`: the Automation API replaced at its boundary; a real preview only with the CLI and credentials."""

import json
import os
import shutil
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from pulumi import automation as auto
from typer.testing import CliRunner

from mlplat import deploy, policy_config
from mlplat import policy as policy_check
from mlplat.cli import app

REPO_ROOT = Path(__file__).resolve().parents[1]
BAD = REPO_ROOT / "tests" / "fixtures" / "Pulumi.bad.yaml"


class Summary:
    result = "succeeded"
    resource_changes: ClassVar[dict[str, int]] = {"create": 57}


class FakeStack:
    """Records what `mlplat deploy` asks of a stack; holds the stack file's config unless told otherwise."""

    def __init__(self, config: dict[str, str]) -> None:
        self.config = dict(config)
        self.calls: list[tuple[str, Any]] = []
        self.policy_config: dict[str, Any] | None = None

    def get_all_config(self) -> dict[str, auto.ConfigValue]:
        return {k: auto.ConfigValue(value=v) for k, v in self.config.items()}

    def set_config(self, key: str, value: auto.ConfigValue, *, path: bool = False) -> None:
        self.calls.append(("set_config", (key, value.value)))
        self.config[key] = value.value

    def _run(self, kind: str, options: dict[str, Any]) -> None:
        self.calls.append((kind, {k: v for k, v in options.items() if k != "on_output"}))
        self.policy_config = json.loads(Path(options["policy_pack_configs"][0]).read_text())
        options["on_output"](f"{kind} of the stack, streamed\n")

    def preview(self, **options: Any) -> auto.PreviewResult:
        self._run("preview", options)
        return auto.PreviewResult("", "", {"create": 57})

    def up(self, **options: Any) -> Any:
        self._run("up", options)
        return type("Up", (), {"summary": Summary()})()


def engine_config(path: Path) -> dict[str, str]:
    """The stack file's config as the workspace holds it (objects as JSON text)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in deploy._stack_config(path).items()}


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`auto.create_or_select_stack` replaced by a fake; `pulumi` pretended to be on PATH."""
    seen: dict[str, Any] = {"selects": []}

    def select(stack_name: str, work_dir: str) -> FakeStack:
        seen["selects"].append((stack_name, work_dir))
        seen["stack"] = FakeStack(engine_config(REPO_ROOT / "stacks" / f"Pulumi.{stack_name}.yaml"))
        return seen["stack"]

    monkeypatch.setattr(auto, "create_or_select_stack", select)
    monkeypatch.setattr(deploy.shutil, "which", lambda name: "/usr/local/bin/pulumi")
    return seen


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["deploy", *args], catch_exceptions=False)


def test_preview_selects_the_stack_and_runs_the_pack_with_the_environment_config_and_estimate(
    workspace: dict[str, Any],
) -> None:
    result = invoke("--stack", "dev", "--preview")
    assert result.exit_code == 0, result.output
    stack: FakeStack = workspace["stack"]
    assert workspace["selects"] == [("dev", str(REPO_ROOT))]
    assert stack.calls == [
        (
            "preview",
            {
                "policy_packs": [str(REPO_ROOT / "policies")],
                "policy_pack_configs": [stack.calls[0][1]["policy_pack_configs"][0]],
                "color": "never",
            },
        )
    ]
    shipped = json.loads((REPO_ROOT / "policies" / "config" / "dev.json").read_text())
    assert stack.policy_config is not None
    estimate = stack.policy_config["budget-covers-peak-cost"]["estimatedPeakMonthlyUsd"]
    assert estimate > 0
    assert stack.policy_config == policy_config.with_estimate(shipped, estimate)
    assert "preview of the stack, streamed" in result.output
    assert "preview of dev: create 57" in result.output


def test_without_preview_it_updates_and_reports_the_summary(workspace: dict[str, Any]) -> None:
    result = invoke("--stack", "dev")
    assert result.exit_code == 0, result.output
    assert [kind for kind, _ in workspace["stack"].calls] == ["up"]
    assert "update of dev: succeeded (create 57)" in result.output


def test_a_stack_with_mandatory_violations_is_refused_before_any_automation_call(workspace: dict[str, Any]) -> None:
    count = len(policy_check.check_stack("bad", BAD).mandatory)
    result = invoke("--stack", "bad", "--stack-file", str(BAD), "--preview")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: refusing to deploy bad: {count} mandatory policy violation(s); see `mlplat policy --stack bad`"
    )
    assert workspace["selects"] == []


def test_only_config_the_workspace_lacks_or_holds_differently_is_set() -> None:
    wanted = deploy._stack_config(REPO_ROOT / "stacks" / "Pulumi.dev.yaml")
    held = engine_config(REPO_ROOT / "stacks" / "Pulumi.dev.yaml")
    held["mlplat:budget"] = json.dumps({**wanted["mlplat:budget"], "limitUsd": 1})
    del held["mlplat:team"]
    stack = FakeStack(held)
    assert deploy.apply_config(stack, wanted) == ["mlplat:team", "mlplat:budget"]  # type: ignore[arg-type]
    assert stack.calls == [
        ("set_config", ("mlplat:team", "ml-research")),
        ("set_config", ("mlplat:budget", json.dumps(wanted["mlplat:budget"]))),
    ]


def test_the_shipped_stack_files_need_no_config_change_in_their_own_workspace() -> None:
    path = REPO_ROOT / "stacks" / "Pulumi.prod.yaml"
    stack = FakeStack(engine_config(path))
    assert deploy.apply_config(stack, deploy._stack_config(path)) == []  # type: ignore[arg-type]


def test_a_failing_pulumi_command_exits_1_with_its_message(
    workspace: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: FakeStack, **options: Any) -> None:
        raise auto.CommandError(auto.CommandResult("", "error: no credentials", 255))

    monkeypatch.setattr(FakeStack, "preview", fail)
    result = invoke("--stack", "dev", "--preview")
    assert result.exit_code == 1
    assert "pulumi failed:" in result.stderr
    assert "error: no credentials" in result.stderr


def test_without_the_pulumi_cli_it_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deploy.shutil, "which", lambda name: None)
    result = invoke("--stack", "dev", "--preview")
    assert result.exit_code == 2
    assert "the Pulumi CLI is not installed" in result.stderr


def _why_no_real_run() -> str | None:
    if shutil.which("pulumi") is None:
        return "the Pulumi CLI is not installed"
    if boto3.session.Session().get_credentials() is None:
        return "no AWS credentials in this environment"
    if not (os.environ.get("PULUMI_ACCESS_TOKEN") or os.environ.get("PULUMI_BACKEND_URL")):
        return "no Pulumi state backend (PULUMI_ACCESS_TOKEN or PULUMI_BACKEND_URL)"
    return None


NO_REAL_RUN = _why_no_real_run()


@pytest.mark.skipif(NO_REAL_RUN is not None, reason=NO_REAL_RUN or "")
def test_a_real_preview_of_dev_passes_the_policy_pack() -> None:
    result = invoke("--stack", "dev", "--preview")
    assert result.exit_code == 0, result.output
    assert "preview of dev:" in result.output
