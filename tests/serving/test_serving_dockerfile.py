"""The serving image: Dockerfile pinned, unprivileged, exec-form and lint-clean; the package stands alone."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "serving" / "Dockerfile"
REQUIREMENTS = REPO / "serving" / "requirements.txt"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_the_base_image_is_pinned_to_an_exact_version() -> None:
    bases = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert len(bases) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", bases[0]), bases[0]


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = [rest for keyword, rest in instructions() if keyword == "USER"]
    assert users, "no USER instruction: the server would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert instructions()[-1][0] == "ENTRYPOINT"  # nothing after the user switch runs as root


def test_the_entrypoint_is_exec_form_python_dash_m_serving() -> None:
    entrypoints = [rest for keyword, rest in instructions() if keyword == "ENTRYPOINT"]
    assert [json.loads(rest) for rest in entrypoints] == [["python", "-m", "serving"]]
    assert not [keyword for keyword, _ in instructions() if keyword == "CMD"]  # SageMaker appends `serve` itself


def test_the_model_directory_exists_and_is_readable_by_everyone() -> None:
    runs = " ".join(rest for keyword, rest in instructions() if keyword == "RUN")
    assert "mkdir -p /opt/ml/model" in runs
    assert "chmod 0755 /opt/ml /opt/ml/model" in runs


def test_the_image_copies_the_package_and_its_requirements() -> None:
    copies = [rest for keyword, rest in instructions() if keyword == "COPY"]
    assert "serving/requirements.txt /app/serving/requirements.txt" in copies
    assert "serving/*.py /app/serving/" in copies
    assert any(keyword == "EXPOSE" and rest == "8080" for keyword, rest in instructions())


def test_every_requirement_is_pinned_and_torch_matches_the_project() -> None:
    lines = [line.strip() for line in REQUIREMENTS.read_text().splitlines()]
    packages = [line for line in lines if line and not line.startswith(("#", "--"))]
    assert packages and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.+]*", line) for line in packages)
    pyproject = (REPO / "pyproject.toml").read_text()
    torch_pin = re.search(r'"torch==([^"]+)"', pyproject)
    assert torch_pin is not None
    assert f"torch=={torch_pin.group(1)}+cpu" in packages


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


STANDARD = set(sys.stdlib_module_names)
# What serving/requirements.txt provides, by import name, and the shared contracts package the image carries.
PROVIDED = {
    "numpy",
    "orjson",
    "torch",
    "uvicorn",
    "prometheus_client",
    "yaml",
    "mlflow",
    "pandas",
    "boto3",
    "serving",
    "contracts",
}


def test_the_package_imports_only_the_standard_library_and_its_own_requirements() -> None:
    for module in sorted((REPO / "serving").glob("*.py")):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in STANDARD or top in PROVIDED, f"{module.name} imports {name}"
