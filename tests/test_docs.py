"""Every shell command in README.md and the folder READMEs, run as written (or listed as skipped, with the reason).

Commands run in document order, in one scratch working directory and one scratch `MLPLAT_HOME`, so a command that
writes a file (`--json-out plan-prod.json`, `--chart cost.png`) writes it there and the next one reads it back; the
local platform's commands run for real against that home (its port substituted into the README's `curl`).
"""

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlplat.local import state as st

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "training/README.md", "training/data/README.md", "policies/README.md")
BIN = Path(sys.executable).parent

# Why a command cannot run offline in a test; the first pattern that matches a command decides.
SKIPS: tuple[tuple[str, str], ...] = (
    (r"^make up\b", "the same `mlplat up --local` runs below, as the README's local-platform commands"),
    (r"^make test\b", "the test suite itself"),
    (r"^make mutants\b", "mutation testing reruns the guarded modules' tests hundreds of times (weekly in CI)"),
    (r"^pulumi ", "needs the Pulumi CLI, a state backend and AWS credentials"),
    (r"^aws ", "needs AWS credentials and a deployed stack"),
    (r"^mlplat deploy\b", "runs `pulumi preview`/`up` against AWS"),
    (
        r"^mlplat transform --local\b",
        "needs input lines in the local bucket; tests/local/test_local_transform.py runs it over 10,000 CSV lines",
    ),
    (
        r"^mlplat (train|release|transform|jobs|budget)\b",
        "needs a deployed stack (its outputs, bucket and tracking server) and AWS",
    ),
    (r"^mlplat cost .*--(actual|idle)\b", "reads Cost Explorer and CloudWatch of a deployed stack"),
    (r"^(kubectl|helm|aws|eksctl)\b", "needs the EKS cluster and AWS credentials"),
    (r"^python -c .*MlflowClient", "sets an alias in a deployed stack's registry"),
    (r"^mlplat monitor --stack", "needs a deployed stack's capture bucket and AWS credentials"),
    (r"^python -m training\b", "a full training run at the default epochs; tests/training runs this entrypoint"),
    (r"^torchrun\b", "placeholder arguments (`--data ...`) and a multi-process run"),
    (r"^docker\b", "needs Docker and a built image"),
)


@dataclass(frozen=True)
class Command:
    """One shell command of a README: where it is, the command, and why it is skipped (if it is)."""

    doc: str
    line: int
    text: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}:{self.text[:60]}"


def _strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a `#` inside quotes is kept)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def commands(doc: str) -> list[Command]:
    """The commands of every ```bash block of `doc`, continuation lines joined."""
    found: list[Command] = []
    in_block = False
    pending = ""
    start = 0
    for number, raw in enumerate((REPO / doc).read_text().splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            in_block = stripped in ("```bash", "```sh", "```shell") if not in_block else False
            continue
        if not in_block:
            continue
        line = _strip_comment(raw).strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = " ".join((pending + line).split()) if "$'" not in pending + line else (pending + line).strip()
        pending = ""
        if text:
            skip = next((reason for pattern, reason in SKIPS if re.search(pattern, text)), None)
            found.append(Command(doc, start, text, skip))
    return found


ALL = [command for doc in DOCS for command in commands(doc)]


def test_the_readmes_hold_the_commands_this_test_runs() -> None:
    ran = [c.text for c in ALL if c.skip is None]
    assert "mlplat up --local" in ran
    assert "mlplat plan --stack prod --json-out plan-prod.json" in ran
    assert "mlplat monitor --local" in ran
    assert any(c.text.startswith("curl") for c in ALL if c.skip is None)


@dataclass
class Scratch:
    """The working directory and home every README command of this session runs in."""

    cwd: Path
    home: Path

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([str(BIN), os.environ.get("PATH", "")])
        # Few epochs: the commands' wiring is what is checked here (the default is the README's own 15).
        return {**os.environ, "PATH": path, st.HOME_ENV: str(self.home), "MLPLAT_LOCAL_EPOCHS": "3"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    root = tmp_path_factory.mktemp("docs")
    (root / "cwd").mkdir()
    here = Scratch(root / "cwd", root / "home")
    try:
        yield here
    finally:
        subprocess.run(
            [str(BIN / "mlplat"), "down", "--local"], env=here.env(), cwd=here.cwd, capture_output=True, check=False
        )


def _served_url(home: Path) -> str:
    state = st.load(home)
    assert state is not None and "serving" in state.parts, "no serving part to send the README's request to"
    return f"127.0.0.1:{state.parts['serving'].port}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("command", ALL, ids=[c.id for c in ALL])
def test_readme_command_runs_without_a_traceback(command: Command, scratch: Scratch) -> None:
    if command.skip is not None:
        pytest.skip(command.skip)
    text = command.text
    if text.startswith("curl"):
        text = text.replace("localhost:8080", _served_url(scratch.home)) + " --fail"
    result = subprocess.run(
        ["bash", "-c", text], cwd=scratch.cwd, env=scratch.env(), capture_output=True, text=True, timeout=540
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, f"{shlex.quote(text)} exited {result.returncode}:\n{result.stderr}"
