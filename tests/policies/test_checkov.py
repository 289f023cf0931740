"""checkov over what the project ships: every Kubernetes object of every plan, the Dockerfiles and the workflow.

checkov runs from its own tool environment (`.venv-checkov`, made by `make install` and `make test`): its pins
conflict with the project's boto3 and packaging. Only the checks in checkov_accepted.yaml are skipped, each with a
reason; bad fixtures prove that the checks this project relies on do fire.
"""

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.drift import render_cronjob
from mlplat import synth

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
ACCEPTED: dict[str, str] = yaml.safe_load((Path(__file__).parent / "checkov_accepted.yaml").read_text())
STACKS = ("dev", "staging", "prod")
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
FRAMEWORKS = ("kubernetes", "dockerfile", "github_actions")


def checkov_binary() -> Path:
    if not CHECKOV.exists():
        pytest.skip(
            "checkov's tool environment .venv-checkov is absent: run `make install` (checkov's pins conflict with the "
            "project's, so it is not in .venv)"
        )
    return CHECKOV


def manifests(record: synth.PlanRecord) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, manifest) of every Kubernetes object a plan registers as a typed resource (Helm releases aside)."""
    for resource in record.resources:
        if not resource.type.startswith("kubernetes:") or resource.type == HELM_RELEASE:
            continue
        _, group_version, kind = resource.type.split(":")
        group, version = group_version.rsplit("/", 1)
        api_version = version if group == "core" else f"{group}/{version}"
        if kind == "Provider":
            continue
        body = {k: v for k, v in resource.inputs.items() if k not in ("apiVersion", "kind")}
        yield resource.name, {"apiVersion": api_version, "kind": kind, **body}


def run_checkov(directory: Path, skip: list[str]) -> list[dict[str, Any]]:
    """checkov's failed checks over `directory` (offline: no guideline download), all three frameworks."""
    command = [str(checkov_binary()), "-d", str(directory), "--framework", *FRAMEWORKS, "--skip-download"]
    command += ["--quiet", "--compact", "-o", "json"]
    if skip:
        command += ["--skip-check", ",".join(skip)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=directory)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert all(r.get("summary", r).get("parsing_errors", 0) == 0 for r in reports), result.stdout[-2000:]
    return [f for r in reports if "results" in r for f in r["results"]["failed_checks"]]


def scanned(report: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((f["check_id"], f["file_path"], f["check_name"]) for f in report)


@pytest.fixture(scope="module")
def shipped(plan_of: Callable[[str], synth.PlanRecord], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding every plan's Kubernetes objects, both Dockerfiles and the deploy workflow."""
    root = tmp_path_factory.mktemp("shipped")
    for stack in STACKS:
        for name, manifest in manifests(plan_of(stack)):
            (root / "k8s" / stack).mkdir(parents=True, exist_ok=True)
            (root / "k8s" / stack / f"{name}.yaml").write_text(yaml.safe_dump(manifest))
    for image in ("training", "serving"):
        (root / image).mkdir()
        shutil.copy(ROOT / image / "Dockerfile", root / image / "Dockerfile")
    (root / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / ".github" / "workflows" / "deploy.yml", root / ".github" / "workflows" / "deploy.yml")
    return root


def test_every_accepted_check_has_a_reason() -> None:
    assert ACCEPTED
    for check, reason in ACCEPTED.items():
        assert check.startswith("CKV_") and len(reason.split()) >= 10, check


def test_the_plans_dockerfiles_and_workflow_pass_checkov_but_the_accepted_checks(shipped: Path) -> None:
    assert len(list((shipped / "k8s").rglob("*.yaml"))) >= 30
    assert run_checkov(shipped, sorted(ACCEPTED)) == []


def test_checkov_parses_and_checks_the_deploy_workflow(shipped: Path, tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    text = (shipped / ".github" / "workflows" / "deploy.yml").read_text()
    # A write-all token: if checkov still skipped the file (as its schema made it before), this would go unnoticed.
    assert "\npermissions:\n  contents: read\n" in text
    text = text.replace("\npermissions:\n  contents: read\n", "\npermissions: write-all\n")
    (tmp_path / ".github" / "workflows" / "deploy.yml").write_text(text)
    assert ("CKV2_GHA_1", "/.github/workflows/deploy.yml", "Ensure top-level permissions are not set to write-all") in [
        (c, p, n) for c, p, n in scanned(run_checkov(tmp_path, []))
    ]


def test_an_unpinned_image_and_a_root_container_trip_checkov(tmp_path: Path) -> None:
    manifest = render_cronjob(
        name="drift",
        namespace="research",
        schedule="rate(1 day)",
        image="python:3.11",
        arguments=[],
        environment={},
        role_arn="arn:aws:iam::111122223333:role/drift",
    )
    pod = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["securityContext"] |= {"runAsUser": 0, "runAsNonRoot": False}
    pod["containers"][0]["securityContext"] |= {"runAsUser": 0, "runAsNonRoot": False}
    (tmp_path / "cronjob.yaml").write_text(yaml.safe_dump(manifest))
    failed = {(c, n) for c, _, n in scanned(run_checkov(tmp_path, []))}
    assert ("CKV_K8S_43", "Image should use digest") in failed
    assert ("CKV_K8S_40", "Containers should run as a high UID to avoid host conflict") in failed
    assert ("CKV_K8S_23", "Minimize the admission of root containers") in failed


def _chart(inputs: dict[str, Any]) -> str:
    return f"{inputs.get('chart')} {inputs.get('version')} ({inputs.get('repositoryOpts', {}).get('repo')})"


@pytest.mark.parametrize("stack", STACKS)
def test_helm_releases_are_rendered_where_the_chart_is_available_offline(
    stack: str, plan_of: Callable[[str], synth.PlanRecord]
) -> None:
    releases = [r for r in plan_of(stack).resources if r.type == HELM_RELEASE]
    if not releases:
        pytest.skip(f"{stack} installs no Helm release")
    offline = [r for r in releases if (ROOT / str(r.inputs.get("chart", ""))).is_dir()]
    if not offline:
        charts = ", ".join(sorted(_chart(r.inputs) for r in releases))
        pytest.skip(
            f"{stack}: no Helm chart is available offline ({charts} come from their repositories, which this "
            "machine cannot reach), so their rendered objects are not checked"
        )
    raise AssertionError(f"{stack}: a chart is vendored but nothing renders it; add helm templating to this test")
