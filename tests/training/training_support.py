"""Helpers for the training tests: run the entrypoint as a user would, `python -m training` in a subprocess."""

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplat.local import services

REPO_ROOT = Path(__file__).resolve().parents[2]
ABALONE = REPO_ROOT / "training" / "data" / "abalone.csv"
RESULT_PREFIX = "MLPLAT_RESULT "
# Variables a developer's shell may carry that would change what the entrypoint reads.
SCRUBBED = (
    "SM_CHANNEL_TRAIN",
    "SM_MODEL_DIR",
    "SM_OUTPUT_DATA_DIR",
    "TRAINING_JOB_NAME",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "OMP_NUM_THREADS",
)


@dataclass
class Finished:
    """A finished entrypoint process: status, output, and the parsed MLPLAT_RESULT line when there is one."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        lines = [line for line in self.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        assert lines, f"no MLPLAT_RESULT line; status {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        return json.loads(lines[-1][len(RESULT_PREFIX) :])

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED and not key.startswith("MLPLAT_")}
    env.update(services.LOCAL_AWS_ENV)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_training(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 240, module: Sequence[str] = ()
) -> Finished:
    argv = [sys.executable, *(module or ["-m", "training"]), *args]
    completed = subprocess.run(
        argv, env=base_env(env), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Finished(completed.returncode, completed.stdout, completed.stderr)


@dataclass
class Running:
    """A training process started in the background, whose stdout lines can be awaited."""

    process: subprocess.Popen[str]
    lines: "queue.Queue[str | None]" = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)
    stderr_chunks: list[str] = field(default_factory=list)

    def wait_for(self, needle: str, timeout: float = 120) -> str:
        """Block until a stdout line containing `needle` appears; fail if the process ends first."""
        deadline = time.monotonic() + timeout
        for line in self.seen:
            if needle in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"process ended before printing {needle!r}:\n" + "".join(self.seen))
            self.seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r} within {timeout} s:\n" + "".join(self.seen))

    def finish(self, timeout: float = 240) -> Finished:
        self.process.wait(timeout=timeout)
        while True:
            line = self.lines.get(timeout=10)
            if line is None:
                break
            self.seen.append(line)
        assert self.process.stderr is not None
        return Finished(self.process.returncode, "".join(self.seen), self.process.stderr.read())


def start_training(args: Sequence[str], env: Mapping[str, str] | None = None) -> Running:
    process = subprocess.Popen(
        [sys.executable, "-m", "training", *args],
        env=base_env(env),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Running(process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.lines.put(line)
        running.lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return running


def job_dirs(root: Path) -> list[str]:
    """Flags that keep a job's files under `root`."""
    return [
        "--model-dir", str(root / "model"),
        "--output-data-dir", str(root / "output"),
        "--checkpoint-dir", str(root / "checkpoints"),
    ]  # fmt: skip
