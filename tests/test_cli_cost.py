"""`mlplat cost`: exit codes, `--json`, `--compare`, `--chart` and the policy config it writes for CI."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlplat import synth
from mlplat.cli import app
from mlplat.cost.estimate import estimate
from mlplat.plan_record import load_plan

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["cost", *args], catch_exceptions=False, env=env or {"MLPLAT_TODAY": "2026-11-01"})


@pytest.fixture(scope="module")
def prod_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "plan-prod.json"
    path.write_text(json.dumps(synth.synthesize_stack("prod").to_json()))
    return path


def test_the_table_shows_idle_and_peak_per_component_and_the_budget_verdict() -> None:
    result = invoke("--stack", "dev")
    assert result.exit_code == 0, result.output
    assert "Monthly cost: dev" in result.output
    assert "│ network   │" in result.output
    assert result.output.splitlines()[-1].startswith("dev: peak $")
    assert result.output.splitlines()[-1].endswith("of the $300.00 budget (within)")


def test_json_carries_totals_components_lines_and_the_budget(prod_plan: Path) -> None:
    result = invoke("--stack", "prod", "--plan", str(prod_plan), "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    expected = estimate(load_plan(prod_plan))
    assert (doc["stack"], doc["environment"], doc["region"], doc["budgetUsd"]) == ("prod", "prod", "us-east-1", 60000.0)
    assert doc["idleMonthlyUsd"] == round(expected.idle_total, 2)
    assert doc["peakMonthlyUsd"] == round(expected.peak_total, 2)
    assert doc["withinBudget"] is True
    assert sum(c["peakUsd"] for c in doc["components"]) == pytest.approx(doc["peakMonthlyUsd"], abs=0.05)
    assert doc["warnings"] == []


def test_compare_puts_a_second_stack_beside_the_first(prod_plan: Path) -> None:
    result = invoke("--stack", "prod", "--plan", str(prod_plan), "--compare", "staging", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["compare"]["stack"] == "staging"
    assert doc["compare"]["peakMonthlyUsd"] < doc["peakMonthlyUsd"]


def test_chart_writes_a_png(prod_plan: Path, tmp_path: Path) -> None:
    chart = tmp_path / "cost-prod.png"
    result = invoke("--stack", "prod", "--plan", str(prod_plan), "--chart", str(chart))
    assert result.exit_code == 0
    assert chart.read_bytes()[:8] == PNG_MAGIC


def test_policy_config_adds_the_peak_estimate_to_the_environments_pack_config(prod_plan: Path, tmp_path: Path) -> None:
    out = tmp_path / "policy-prod.json"
    result = invoke("--stack", "prod", "--plan", str(prod_plan), "--policy-config", str(out), "--json")
    assert result.exit_code == 0
    written = json.loads(out.read_text())
    shipped = json.loads(Path("policies/config/prod.json").read_text())
    assert written["budget-covers-peak-cost"] == {
        **shipped["budget-covers-peak-cost"],
        "estimatedPeakMonthlyUsd": json.loads(result.stdout)["peakMonthlyUsd"],
    }
    assert {k: v for k, v in written.items() if k != "budget-covers-peak-cost"} == {
        k: v for k, v in shipped.items() if k != "budget-covers-peak-cost"
    }


def test_stale_prices_are_warned_about_on_stderr(prod_plan: Path) -> None:
    result = invoke("--stack", "prod", "--plan", str(prod_plan), "--json", env={"MLPLAT_TODAY": "2027-06-01"})
    assert result.exit_code == 0
    assert "warning: price of eks:cluster in us-east-1 is 243 days old (as of 2026-10-01, limit 90)" in result.stderr
    assert len(json.loads(result.stdout)["warnings"]) > 0


def test_an_invalid_stack_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text("config:\n  mlplat:environment: prod\n")
    result = invoke("--stack", "broken", "--stack-file", str(path))
    assert result.exit_code == 2
    assert "mlplat:budget is required" in result.stderr
