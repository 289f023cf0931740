"""The command line's one convention (mlplat/clikit.py): messages, exit statuses, `--json`, help, pipe-safe output."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
from typer.testing import CliRunner

from mlplat import clikit, synth
from mlplat.cli import app

REPO = Path(__file__).resolve().parents[1]
UNKNOWN_QA = (
    "error: unknown stack 'qa': stacks/Pulumi.qa.yaml does not exist "
    "(known: dev, prod, staging; or pass --stack-file PATH)\n"
)
PLAN_HINT = "write one with `mlplat plan --stack <stack> --json-out PATH`"
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env={"MLPLAT_TODAY": "2026-11-01", **(env or {})})


def piped(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mlplat ...` in a new process whose stdout and stderr are pipes, as in CI or `| cat`."""
    clean = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "mlplat", *args],
        capture_output=True,  # pipes, not a terminal
        text=True,
        cwd=REPO,
        env={**clean, "MLPLAT_TODAY": "2026-11-01", **(env or {})},
        timeout=240,
        check=False,
    )


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("plans")
    out = {}
    for stack in ("dev", "prod"):
        out[stack] = folder / f"plan-{stack}.json"
        out[stack].write_text(json.dumps(synth.synthesize_stack(stack).to_json()))
    return out


# --- bad files -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["policy", "cost"])
def test_a_missing_plan_file_is_one_line_and_exit_2(command: str) -> None:
    result = invoke(command, "--stack", "prod", "--plan", "/nonexistent.json")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: /nonexistent.json: no such file (a plan record); {PLAN_HINT}\n",
    )


@pytest.mark.parametrize("command", ["policy", "cost"])
def test_a_plan_file_that_is_not_json_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text("not json\n")
    result = invoke(command, "--stack", "prod", "--plan", str(bad))
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {bad}: is not JSON (Expecting value at line 1); expected a plan record; {PLAN_HINT}\n",
    )


def test_an_outputs_file_given_as_a_plan_is_named_as_not_a_plan(tmp_path: Path) -> None:
    outputs = tmp_path / "dev-outputs.json"
    outputs.write_text(json.dumps({"environment": "prod", "bucketName": "b"}))
    result = invoke("policy", "--stack", "prod", "--plan", str(outputs))
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {outputs}: is not a plan record (no stack and resources); {PLAN_HINT}\n",
    )


def test_a_plan_of_another_stack_is_refused(plans: dict[str, Path]) -> None:
    result = invoke("policy", "--stack", "dev", "--plan", str(plans["prod"]))
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {plans['prod']} is the plan of stack 'prod', not 'dev'; pass --stack prod or the plan of 'dev'\n",
    )


def test_cost_refuses_a_plan_of_another_stack_too(plans: dict[str, Path]) -> None:
    result = invoke("cost", "--stack", "dev", "--plan", str(plans["prod"]))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {plans['prod']} is the plan of stack 'prod', not 'dev'")


def test_plan_json_out_under_a_file_fails_before_any_output(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    target = tmp_path / "taken" / "plan.json"
    result = invoke("plan", "--stack", "dev", "--json-out", str(target))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: cannot write {target}: a parent of it is a file, not a directory\n"


def test_cost_chart_under_a_file_fails_before_the_table(tmp_path: Path, plans: dict[str, Path]) -> None:
    (tmp_path / "taken").write_text("a file")
    target = tmp_path / "taken" / "cost.png"
    result = invoke("cost", "--stack", "dev", "--plan", str(plans["dev"]), "--chart", str(target))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: cannot write {target}: a parent of it is a file, not a directory\n"


# --- unknown stack, no outputs, no credentials -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--stack", "qa"],
        ["policy", "--stack", "qa"],
        ["cost", "--stack", "qa"],
        ["config", "validate", "--stack", "qa"],
        ["deploy", "--stack", "qa"],
        ["up", "--local", "--stack", "qa"],
        ["monitor", "--stack", "qa"],
        ["train", "--stack", "qa"],
        ["release", "--stack", "qa", "--model", "abalone"],
    ],
    ids=lambda args: args[0] if args[0] != "config" else "config-validate",
)
def test_an_unknown_stack_is_reported_the_same_way_everywhere(args: list[str]) -> None:
    result = invoke(*args)
    assert (result.exit_code, result.stderr) == (2, UNKNOWN_QA)


def test_no_stack_at_all_names_both_ways_to_give_one() -> None:
    result = invoke("plan", env={"MLPLAT_STACK": ""})
    assert (result.exit_code, result.stderr) == (
        2,
        "error: no stack: pass --stack NAME (or set MLPLAT_STACK) or --stack-file PATH\n",
    )


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--stack", "dev", "--outputs", "/nonexistent.json"],
        ["release", "--stack", "dev", "--model", "abalone", "--outputs", "/nonexistent.json"],
        ["monitor", "--stack", "dev", "--outputs", "/nonexistent.json"],
    ],
    ids=lambda args: args[0],
)
def test_missing_outputs_are_bad_input_everywhere(args: list[str]) -> None:
    result = invoke(*args)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: no outputs for stack 'dev': /nonexistent.json does not exist\n",
    )


def _no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("AWS_") or key == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # boto3's default session caches the credentials an earlier test's client resolved.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


def _outputs(tmp_path: Path, stack: str = "dev") -> Path:
    account = "123456789012"
    path = tmp_path / f"{stack}-outputs.json"
    path.write_text(
        json.dumps(
            {
                "environment": stack,
                "region": "us-east-1",
                "vpcId": "vpc-0a1b2c3d",
                "privateSubnetIds": ["subnet-0aaa1111"],
                "bucketName": f"mlplat-{stack}-bucket",
                "bucketArn": f"arn:aws:s3:::mlplat-{stack}-bucket",
                "kmsKeyArn": f"arn:aws:kms:us-east-1:{account}:key/1234",
                "trackingServerArn": f"arn:aws:sagemaker:us-east-1:{account}:mlflow-app/app-{stack}",
                "trackingServerUrl": f"https://{stack}.experiments.sagemaker.aws",
                "trainingRoleArn": f"arn:aws:iam::{account}:role/training",
                "servingRoleArn": f"arn:aws:iam::{account}:role/serving",
                "workloadSecurityGroupId": "sg-0workload",
                "endpointNames": [f"abalone-{stack}"],
                "budgetName": f"mlplat-{stack}",
            }
        )
    )
    return path


NO_CREDENTIALS = (
    "error: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "or run `aws sso login`\n"
)


def test_train_without_aws_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_aws_credentials(monkeypatch, tmp_path)
    result = runner.invoke(
        app,
        ["train", "--stack", "dev", "--outputs", str(_outputs(tmp_path)), "--tracking-uri", "http://127.0.0.1:9",
         "--client", "boto3", "--json"],
    )  # fmt: skip
    assert (result.exit_code, result.stderr) == (2, NO_CREDENTIALS)


def test_release_without_aws_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mlplat import release

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text((REPO / "stacks" / "Pulumi.dev.yaml").read_text())
    monkeypatch.setattr(
        release, "resolve_version", lambda uri, model, alias, version: release.RegistryVersion(model, 3, "r1", "s")
    )
    monkeypatch.setattr(release, "download_version", lambda uri, found, dest: model_dir)
    _no_aws_credentials(monkeypatch, tmp_path)
    result = runner.invoke(
        app,
        ["release", "--stack", "dev", "--model", "abalone", "--outputs", str(_outputs(tmp_path)),
         "--stack-file", str(stack_file), "--tracking-uri", "http://127.0.0.1:9"],
    )  # fmt: skip
    assert (result.exit_code, result.stderr) == (2, NO_CREDENTIALS)
    assert stack_file.read_text() == (REPO / "stacks" / "Pulumi.dev.yaml").read_text()


def test_a_missing_extra_names_the_extra_to_install() -> None:
    error = ModuleNotFoundError("No module named 'sagemaker_mlflow'", name="sagemaker_mlflow")
    assert clikit.expected(error) == (
        ["this needs the 'sagemaker' extra (sagemaker_mlflow is not installed): pip install 'mlplat[sagemaker]'"],
        2,
    )


def test_every_extra_the_error_path_names_is_declared_and_named_in_the_readme() -> None:
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    readme = (REPO / "README.md").read_text()
    for extra in set(clikit.EXTRAS.values()):
        assert extra in declared
        assert f"[{extra}]" in readme


# --- unexpected errors -----------------------------------------------------------------------------------------------


def _boom(path: Path, stack: str) -> synth.PlanRecord:
    raise RuntimeError("boom")


def test_an_unexpected_error_prints_one_line_and_keeps_the_traceback_in_a_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(synth, "synthesize", _boom)
    result = invoke("plan", "--stack", "dev", env={"MLPLAT_HOME": str(tmp_path)})
    logs = list((tmp_path / "logs").glob("error-*.log"))
    assert result.exit_code == 1
    assert len(logs) == 1
    assert result.stderr == (
        f"error: unexpected RuntimeError: boom (the traceback is in {logs[0]}; --debug prints it)\n"
    )
    assert "Traceback (most recent call last)" in logs[0].read_text()


def test_debug_prints_the_traceback_instead(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(synth, "synthesize", _boom)
    result = invoke("--debug", "plan", "--stack", "dev", env={"MLPLAT_HOME": str(tmp_path)})
    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last)")
    assert result.stderr.endswith("RuntimeError: boom\n")
    assert not (tmp_path / "logs").exists()


# --- --json ----------------------------------------------------------------------------------------------------------


def test_policy_list_json_prints_every_policy_as_json() -> None:
    from policies import registry

    result = invoke("policy", "--list", "--json")
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [p["name"] for p in listed] == [spec.name for spec in registry.POLICIES]
    assert set(listed[0]) == {"name", "domain", "enforcement", "kind", "description"}


def test_plan_json_alone_prints_only_the_record_on_stdout() -> None:
    result = invoke("plan", "--stack", "dev", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["stack"] == "dev"


def test_plan_json_out_writes_the_record_and_prints_the_report(tmp_path: Path) -> None:
    out = tmp_path / "build" / "plan-dev.json"
    result = invoke("plan", "--stack", "dev", "--no-tree", "--json-out", str(out))
    assert result.exit_code == 0
    assert json.loads(out.read_text())["stack"] == "dev"
    assert result.stdout.splitlines()[-1] == f"wrote {out}"


def test_config_validate_json_reports_validity() -> None:
    result = invoke("config", "validate", "--stack", "prod", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "stack": "prod",
        "stackFile": "stacks/Pulumi.prod.yaml",
        "valid": True,
        "problems": [],
    }


def test_deploy_json_prints_the_policy_report_and_the_engine_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlplat import deploy, policy

    report = policy.check_stack("dev")

    def run(stack: str, preview: bool, path: Path | None, on_output: Any) -> policy.PolicyReport:
        on_output("preview of dev: no changes")
        return report

    monkeypatch.setattr(deploy.shutil, "which", lambda name: "/usr/bin/pulumi")
    monkeypatch.setattr(deploy, "run", run)
    result = invoke("deploy", "--stack", "dev", "--preview", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["output"] == ["preview of dev: no changes"]
    assert document["policy"] == report.to_json()


def test_deploy_without_the_pulumi_cli_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlplat import deploy

    monkeypatch.setattr(deploy.shutil, "which", lambda name: None)
    result = invoke("deploy", "--stack", "dev")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/)\n",
    )


# --- --stack-file instead of --stack ---------------------------------------------------------------------------------


def test_plan_takes_the_stack_from_a_stack_file_alone(tmp_path: Path) -> None:
    copy = tmp_path / "Pulumi.staging.yaml"
    copy.write_text((REPO / "stacks" / "Pulumi.staging.yaml").read_text())
    result = invoke("plan", "--stack-file", str(copy), "--json", env={"MLPLAT_STACK": ""})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["stack"] == "staging"


def test_a_stack_file_with_another_name_is_named_by_its_environment(tmp_path: Path) -> None:
    copy = tmp_path / "mine.yaml"
    copy.write_text((REPO / "stacks" / "Pulumi.prod.yaml").read_text())
    result = invoke("config", "validate", "--stack-file", str(copy), env={"MLPLAT_STACK": ""})
    assert (result.exit_code, result.stdout) == (0, "prod: config is valid\n")


# Typer ships its own click: its classes are told apart by what they have, not by click's types.
def _options(command: Any) -> dict[str, Any]:
    return {name: p for p in command.params if p.param_type_name == "option" for name in p.opts}


def _commands() -> dict[str, Any]:
    root: Any = typer.main.get_command(app)
    found: dict[str, Any] = {}
    for name, command in root.commands.items():
        if hasattr(command, "commands"):
            found.update({f"{name} {sub}": c for sub, c in command.commands.items()})
        else:
            found[name] = command
    return found


def test_every_stack_option_is_the_same_declaration() -> None:
    for name, command in _commands().items():
        options = _options(command)
        if "--stack" not in options:
            continue
        stack = options["--stack"]
        assert stack.opts == ["--stack", "-s"], name
        assert stack.envvar == "MLPLAT_STACK", name
        if name not in ("up", "status", "down"):  # the local platform mirrors a shipped stack by name
            assert "--stack-file" in options, name


def test_every_option_of_every_command_has_help() -> None:
    for name, command in _commands().items():
        for option in command.params:
            if option.param_type_name == "option" and option.name != "help":
                assert option.help and option.help.strip(), f"{name} {option.opts[0]}"


def test_version_prints_the_package_version() -> None:
    from importlib.metadata import version

    result = invoke("--version")
    assert (result.exit_code, result.stdout) == (0, f"mlplat {version('mlplat')}\n")


def test_help_groups_the_commands_in_three_panels() -> None:
    result = piped("--help")
    assert result.returncode == 0
    text = result.stdout
    positions = [text.index(panel) for panel in (clikit.GOVERNANCE, clikit.CLOUD, clikit.LOCAL)]
    assert positions == sorted(positions)
    governance = text[positions[0] : positions[1]]
    cloud = text[positions[1] : positions[2]]
    local = text[positions[2] :]
    assert all(f" {c} " in governance for c in ("plan", "config", "policy", "cost"))
    assert all(f" {c} " in cloud for c in ("deploy", "train", "release"))
    assert all(f" {c} " in local for c in ("up", "status", "down", "monitor"))


# --- output through a pipe -------------------------------------------------------------------------------------------


def test_cost_through_a_pipe_keeps_every_resource_name_whole(plans: dict[str, Path]) -> None:
    from mlplat.cost.estimate import estimate
    from mlplat.policy import load_plan

    result = piped("cost", "--stack", "prod", "--plan", str(plans["prod"]))
    assert result.returncode == 0, result.stderr
    lines = estimate(load_plan(plans["prod"])).lines
    assert lines
    for line in lines:
        assert any(f"│ {line.item} " in row for row in result.stdout.splitlines()), line.item
    assert "…" not in result.stdout
    assert not set(SPINNER_FRAMES) & set(result.stdout + result.stderr)


def test_plan_through_a_pipe_has_no_spinner_and_no_cut_cell() -> None:
    result = piped("plan", "--stack", "prod")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "…" not in result.stdout
    assert not set(SPINNER_FRAMES) & set(result.stdout)


def test_help_through_a_pipe_keeps_option_names_whole() -> None:
    result = piped("train", "--help")
    assert result.returncode == 0
    assert "--dataset-version" in result.stdout
    assert "…" not in result.stdout


def test_a_pipe_console_is_wide_and_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clikit, "is_terminal", lambda stderr=False: False)
    console = clikit.console()
    assert (console.width, console.no_color) == (clikit.PIPE_WIDTH, True)


def test_up_outside_a_terminal_prints_plain_step_lines_and_whole_cells(local_platform: Any) -> None:
    assert local_platform.up_exit_code == 0, local_platform.up_stderr
    steps = [line for line in local_platform.up_stderr.splitlines() if re.match(r"^[1-6]/6 ", line)]
    assert [line.split(" ", 1)[0] for line in steps if not line.endswith(" ...")] == [f"{i}/6" for i in range(1, 7)]
    assert not set(SPINNER_FRAMES + "✓") & set(local_platform.up_stderr)
    assert "…" not in local_platform.up_stdout
    assert re.search(r"test RMSE +│ [0-9.]+ \([0-9.]+ of the mean\)", local_platform.up_stdout)
