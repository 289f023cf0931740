"""`mlplat policy`: exit codes, the grouped report, and `--json`, on shipped stacks, the bad stack and saved plans."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlplat import synth
from mlplat.cli import app
from policies import registry

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BAD = FIXTURES / "Pulumi.bad.yaml"


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["policy", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Plan records as `mlplat plan --json` writes them, for the staging stack and the bad fixture."""
    out = tmp_path_factory.mktemp("plans")
    paths = {}
    for stack, record in (("staging", synth.synthesize_stack("staging")), ("bad", synth.synthesize(BAD, "bad"))):
        paths[stack] = out / f"plan-{stack}.json"
        paths[stack].write_text(json.dumps(record.to_json()))
    return paths


def test_a_compliant_stack_exits_0_and_says_pass() -> None:
    result = invoke("--stack", "dev")
    assert result.exit_code == 0, result.output
    assert "mlplat-guard on dev (stacks/Pulumi.dev.yaml, policies/config/dev.json)" in result.output
    assert "PASS 0 mandatory, 0 advisory violation(s)" in result.output
    assert "disabled by the policy config: s3-no-force-destroy" in result.output


def test_json_reports_the_evaluated_policies_and_an_empty_verdict(plans: dict[str, Path]) -> None:
    result = invoke("--stack", "staging", "--plan", str(plans["staging"]), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["policyPack"], doc["stack"], doc["environment"], doc["policyConfig"]) == (
        "mlplat-guard",
        "staging",
        "staging",
        "policies/config/staging.json",
    )
    assert doc["summary"] == {"mandatory": 0, "advisory": 0}
    assert doc["violations"] == []
    assert len(doc["policies"]["evaluated"]) == len(registry.POLICIES)
    assert doc["estimatedPeakMonthlyUsd"] > 0


def test_the_bad_stack_exits_1_with_violations_grouped_by_policy_and_urn(plans: dict[str, Path]) -> None:
    result = invoke("--stack", "bad", "--plan", str(plans["bad"]))
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "s3-no-force-destroy [mandatory] S3 buckets are not force-destroyed" in text
    assert "spot-nodepool-on-demand-fallback [mandatory] A NodePool that takes spot capacity falls back" in text
    assert "forceDestroy is on, so deleting the stack deletes every object in the bucket" in text
    assert "FAIL" in text


def test_the_bad_stack_json_names_each_violation_with_its_policy_level_and_urn(plans: dict[str, Path]) -> None:
    result = invoke("--stack", "bad", "--plan", str(plans["bad"]), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert len({v["policy"] for v in doc["violations"]}) == 10
    assert doc["summary"]["advisory"] == 0
    force = [v for v in doc["violations"] if v["policy"] == "s3-no-force-destroy"]
    assert len(force) == 1
    assert force[0]["enforcement"] == "mandatory"
    assert force[0]["urn"] == (
        "urn:pulumi:bad::mlplat::mlplat:platform:MlPlatform$mlplat:artifacts:ArtifactStore$aws:s3/bucket:Bucket::"
        "mlplat-prod-artifacts-bucket"
    )


def test_advisory_only_findings_exit_0(plans: dict[str, Path], tmp_path: Path) -> None:
    # Everything the bad stack trips, downgraded to advisory: reported, but nothing blocks.
    config = {name: "advisory" for name in (spec.name for spec in registry.POLICIES)}
    path = tmp_path / "advisory.json"
    path.write_text(json.dumps(config))
    result = invoke("--stack", "bad", "--plan", str(plans["bad"]), "--policy-config", str(path), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["summary"]["mandatory"] == 0


def test_a_stack_file_path_runs_the_real_synthesis_of_the_bad_stack() -> None:
    result = invoke("--stack", "bad", "--stack-file", str(BAD), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["stackFile"] == "tests/fixtures/Pulumi.bad.yaml"


def test_an_unknown_policy_in_the_config_exits_2_naming_it(tmp_path: Path, plans: dict[str, Path]) -> None:
    path = tmp_path / "typo.json"
    path.write_text('{"s3-tls-onyl": "mandatory"}')
    result = invoke("--stack", "staging", "--plan", str(plans["staging"]), "--policy-config", str(path))
    assert result.exit_code == 2
    assert f"{path}: s3-tls-onyl: no such policy in mlplat-guard" in result.stderr


def test_an_invalid_stack_file_exits_2_with_the_config_error(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text("config:\n  mlplat:environment: qa\n")
    result = invoke("--stack", "broken", "--stack-file", str(path))
    assert result.exit_code == 2
    assert "mlplat:environment" in result.stderr


def test_without_a_stack_it_exits_2() -> None:
    result = invoke()
    assert result.exit_code == 2
    assert result.stderr == "error: no stack: pass --stack NAME (or set MLPLAT_STACK) or --stack-file PATH\n"


def test_list_prints_every_policy_with_its_domain_and_level() -> None:
    result = invoke("--list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(registry.POLICIES)
    assert lines[0].split()[:4] == ["s3-public-access-blocked", "storage", "mandatory", "stack"]
