"""The CI deploy workflow: actionlint passes, the stages run in order, credentials only where they are needed."""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from mlplat.cli import app

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"


def actionlint() -> str:
    local = Path(sys.executable).parent / "actionlint"
    found = str(local) if local.exists() else shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed; pip install the project's test extras")
    return found


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    return doc


def test_actionlint_accepts_the_workflow() -> None:
    result = subprocess.run([actionlint(), "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stages_run_test_then_plan_then_preview_then_staging_then_prod(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert list(jobs) == ["test", "plan", "preview", "deploy-staging", "deploy-prod"]
    assert [jobs[name].get("needs") for name in jobs] == [None, "test", "plan", "preview", "deploy-staging"]


def test_plan_policy_and_cost_run_for_every_stack_offline_and_upload_reports(workflow: dict[str, Any]) -> None:
    plan = workflow["jobs"]["plan"]
    assert plan["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    assert "permissions" not in plan  # the workflow default: contents read, no OIDC token
    script = "\n".join(step.get("run", "") for step in plan["steps"])
    for command in ("mlplat plan", "mlplat policy", "mlplat cost", "GITHUB_STEP_SUMMARY"):
        assert command in script
    assert "secrets." not in yaml.safe_dump(plan) and "configure-aws-credentials" not in yaml.safe_dump(plan)
    assert any(step.get("uses", "").startswith("actions/upload-artifact@") for step in plan["steps"])


def test_cloud_jobs_get_an_oidc_token_and_prod_waits_for_the_production_environment(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    for name in ("preview", "deploy-staging", "deploy-prod"):
        assert jobs[name]["permissions"] == {"contents": "read", "id-token": "write"}
        assert any(s.get("uses", "").startswith("aws-actions/configure-aws-credentials@") for s in jobs[name]["steps"])
    assert jobs["deploy-staging"]["environment"] == "staging"
    assert jobs["deploy-prod"]["environment"]["name"] == "production"
    assert workflow["permissions"] == {"contents": "read"}


def _invocations(workflow: dict[str, Any]) -> list[tuple[str, list[str]]]:
    found = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            script = step.get("run", "").replace("\\\n", " ")
            for match in re.finditer(r"\.venv/bin/mlplat (\w+)([^\n>|]*)", script):
                found.append((match.group(1), re.findall(r"(--[a-z-]+)", match.group(2))))
    return found


def test_every_mlplat_command_and_option_the_workflow_uses_exists(workflow: dict[str, Any]) -> None:
    root: Any = typer.main.get_command(app)
    invocations = _invocations(workflow)
    assert {name for name, _ in invocations} == {"plan", "policy", "cost", "deploy"}
    for name, options in invocations:
        command = root.commands[name]
        known = {
            opt for param in command.params for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", [])
        }
        assert set(options) <= known, (name, set(options) - known)


def test_only_pull_request_runs_cancel_each_other_and_deploys_queue_per_environment(workflow: dict[str, Any]) -> None:
    concurrency = workflow["concurrency"]
    assert concurrency == {
        "group": "deploy-${{ github.ref }}-${{ github.event_name == 'pull_request' && 'pr' || github.run_id }}",
        "cancel-in-progress": True,
    }
    jobs = workflow["jobs"]
    assert jobs["deploy-staging"]["concurrency"] == {"group": "deploy-staging", "cancel-in-progress": False}
    assert jobs["deploy-prod"]["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}
