"""bench/benchkit.py: targets as PASS/FAIL, `--json` alone on stdout, and the exit-status rule of every bench script."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import benchkit  # noqa: E402


def _measure(speedup: float, fail: bool = False):  # type: ignore[no-untyped-def]
    def measure(args: argparse.Namespace) -> benchkit.Report:
        if fail:
            raise RuntimeError("server did not start")
        print("a table for people")
        report = benchkit.Report(results={"speedup": speedup})
        report.target("speedup", speedup, ">=", 10, "x")
        return report

    return measure


def test_a_missed_target_is_reported_as_fail_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    status = benchkit.run(argparse.ArgumentParser(), _measure(9.4), [])
    assert status == 0
    assert capsys.readouterr().out.splitlines()[-1] == "FAIL speedup: 9.4x (target >= 10x)"


def test_strict_exits_1_on_a_missed_target() -> None:
    assert benchkit.run(argparse.ArgumentParser(), _measure(9.4), ["--strict"]) == 1


def test_strict_exits_0_when_every_target_is_met(capsys: pytest.CaptureFixture[str]) -> None:
    assert benchkit.run(argparse.ArgumentParser(), _measure(12.0), ["--strict"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "PASS speedup: 12x (target >= 10x)"


def test_a_failed_measurement_exits_1_even_without_strict(capsys: pytest.CaptureFixture[str]) -> None:
    assert benchkit.run(argparse.ArgumentParser(), _measure(0, fail=True), ["--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["failed"] == "RuntimeError: server did not start"


def test_json_puts_only_the_document_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert benchkit.run(argparse.ArgumentParser(), _measure(9.4), ["--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "results": {"speedup": 9.4},
        "targets": [{"name": "speedup", "value": 9.4, "op": ">=", "limit": 10.0, "unit": "x", "passed": False}],
        "passed": False,
        "failed": None,
    }
    assert "a table for people" in captured.err


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "bench").glob("*.py") if p.name != "benchkit.py"))
def test_every_bench_script_has_json_and_strict(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--json" in result.stdout and "--strict" in result.stdout


def test_the_plan_bench_reports_its_target_as_json() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "plan.py"), "--repeat", "1", "--json", "--no-scaling"],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [t["name"] for t in document["targets"]] == ["prod plan seconds"]
    assert [s["stack"] for s in document["results"]["stacks"]] == ["dev", "staging", "prod"]
    assert document["results"]["scaling"] == []
