"""`mlplat plan` and `mlplat config` through the command line (Typer's CliRunner)."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from mlplat import synth
from mlplat.cli import app
from mlplat.config_cmd import schema_text

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "mlplat" / "plan.schema.json").read_text())
runner = CliRunner()


def _broken_dev(tmp_path: Path) -> Path:
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.dev.yaml").read_text())
    broken = copy.deepcopy(document)
    broken["config"]["mlplat:budget"]["limitUsd"] = -5
    broken["config"]["mlplat:network"]["azCount"] = 5
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(broken))
    return path


@pytest.mark.parametrize(("stack", "nat_gateways"), [("dev", 0), ("staging", 1), ("prod", 3)])
def test_plan_writes_a_schema_valid_record_for_each_shipped_stack(
    tmp_path: Path, stack: str, nat_gateways: int
) -> None:
    out = tmp_path / f"{stack}.json"
    result = runner.invoke(app, ["plan", "--stack", stack, "--json-out", str(out), "--no-tree"])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    jsonschema.validate(record, SCHEMA)
    assert record["stack"] == stack
    assert record["counts"].get("aws:ec2/natGateway:NatGateway", 0) == nat_gateways


def test_plan_prints_the_tree_and_the_counts(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", "--stack", "dev"])
    assert result.exit_code == 0
    assert "mlplat-dev-network-vpc" in result.stdout
    assert "aws:ec2/vpcEndpoint:VpcEndpoint" in result.stdout
    total = len(synth.synthesize_stack("dev").resources)
    assert f"{total} resources in dev (stacks/Pulumi.dev.yaml)" in result.stdout


def test_plan_json_to_stdout_prints_only_the_record() -> None:
    result = runner.invoke(app, ["plan", "--stack", "dev", "--json"])
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert record["stack"] == "dev"


def test_plan_takes_the_stack_from_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", "--json-out", str(out), "--no-tree"], env={"MLPLAT_STACK": "staging"})
    assert result.exit_code == 0
    assert json.loads(out.read_text())["stack"] == "staging"


def test_bad_config_exits_2_with_one_line_per_problem_and_no_traceback(tmp_path: Path) -> None:
    path = _broken_dev(tmp_path)
    result = runner.invoke(app, ["plan", "--stack", "dev", "--stack-file", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: mlplat:network.azCount must be less than or equal to 3 (got 5)",
        f"error: {path}: mlplat:budget.limitUsd must be greater than 0 (got -5)",
    ]
    assert "Traceback" not in result.output


def test_bad_config_writes_no_record(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(
        app, ["plan", "--stack", "dev", "--stack-file", str(_broken_dev(tmp_path)), "--json-out", str(out)]
    )
    assert result.exit_code == 2
    assert not out.exists()


def test_an_unknown_stack_exits_2_naming_the_missing_file() -> None:
    result = runner.invoke(app, ["plan", "--stack", "qa"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: unknown stack 'qa': stacks/Pulumi.qa.yaml does not exist "
        "(known: dev, prod, staging; or pass --stack-file PATH)\n"
    )


def test_a_program_failure_exits_1_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(path: Path, stack: str) -> synth.PlanRecord:
        raise synth.SynthesisError("dev: the program failed under mocks: boom")

    monkeypatch.setattr(synth, "synthesize", fail)
    result = runner.invoke(app, ["plan", "--stack", "dev"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: dev: the program failed under mocks: boom"


def test_config_schema_check_passes_on_the_committed_file() -> None:
    result = runner.invoke(app, ["config", "schema", "--check"])
    assert result.exit_code == 0


def test_config_schema_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "schema.json"
    stale.write_text("{}\n")
    result = runner.invoke(app, ["config", "schema", "--check", "--output", str(stale)])
    assert result.exit_code == 1
    assert stale.read_text() == "{}\n"


def test_config_schema_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    result = runner.invoke(app, ["config", "schema", "--output", str(target)])
    assert result.exit_code == 0
    assert target.read_text() == schema_text()


def test_config_validate_exits_2_on_a_bad_stack_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "validate", "--stack", "dev", "--stack-file", str(_broken_dev(tmp_path))])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 2


def test_config_validate_accepts_a_shipped_stack() -> None:
    result = runner.invoke(app, ["config", "validate", "--stack", "prod"])
    assert result.exit_code == 0
    assert "prod: config is valid" in result.stdout
