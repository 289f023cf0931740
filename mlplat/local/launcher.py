"""The one local training launcher: the training entrypoint as a process against the local platform's store.

`mlplat up --local` (step 4) and `mlplat monitor --local --retrain` both run it. Each job starts from empty
SageMaker-like directories under `work` (stale checkpoints would be resumed), runs in its own process session (so
a timeout or a failed `up` stops its workers too) with a private umask, syncs its checkpoints to the bucket's
`checkpoints/<job>/`, and reports through its `MLPLAT_RESULT` line, read here as a typed `TrainingResult`.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from contracts import bucket as layout
from contracts.result import RESULT_PREFIX, TrainingResult
from mlplat.local import services
from mlplat.local.files import tighten

TRAINING_COMMAND = (sys.executable, "-m", "training")
JOB_DIRECTORIES = ("model", "output", "checkpoints")
PRIVATE_UMASK = 0o077


class LaunchError(RuntimeError):
    """The job could not run to a result; `reason` is one line, `log` is where its output went."""

    def __init__(self, reason: str, log: Path) -> None:
        self.reason = reason
        self.log = log
        super().__init__(reason)


@dataclass(frozen=True)
class LocalTrainingJob:
    """One run of the training entrypoint on the local platform."""

    bucket: str
    dataset: str
    dataset_version: str
    model_name: str
    experiment: str
    job_name: str
    tracking_uri: str
    s3_url: str
    work: Path
    """The job's directories (model, output, checkpoints) and its hyperparameters file, emptied first."""
    log: Path
    epochs: int | None = None
    timeout: float = 900.0
    command: tuple[str, ...] = TRAINING_COMMAND
    cwd: Path | None = None
    """The process's working directory; an empty one, so nothing in it shadows a package (`python -m training`)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Added to this process's environment, under the platform's own settings."""
    entry_point: str | None = None
    """Script mode: the user's script in `source_dir`, run by the runtime instead of the built-in trainer."""
    source_dir: Path | None = None

    @property
    def data_uri(self) -> str:
        return layout.s3_uri(self.bucket, layout.dataset_prefix(self.dataset, self.dataset_version))

    def argv(self) -> list[str]:
        dirs = {name: self.work / name for name in JOB_DIRECTORIES}
        if self.entry_point is not None:
            # Script mode: the script brings its own data; epochs reach it as a hyperparameter (`--epochs N`).
            return [
                *self.command,
                "--entry-point", self.entry_point,
                "--source-dir", str(self.source_dir),
                "--model-dir", str(dirs["model"]),
                "--output-data-dir", str(dirs["output"]),
                "--checkpoint-dir", str(dirs["checkpoints"]),
                "--hyperparameters", str(self.work / "hyperparameters.json"),
                "--failure-file", str(dirs["output"] / "failure"),
                "--registered-model-name", self.model_name,
                "--promote",
                "--experiment-name", self.experiment,
                "--job-name", self.job_name,
            ]  # fmt: skip
        argv = [
            *self.command,
            "--data", self.data_uri,
            "--model-dir", str(dirs["model"]),
            "--output-data-dir", str(dirs["output"]),
            "--checkpoint-dir", str(dirs["checkpoints"]),
            "--checkpoint-s3-uri", layout.s3_uri(self.bucket).rstrip("/"),
            "--hyperparameters", str(self.work / "hyperparameters.json"),
            "--registered-model-name", self.model_name,
            "--promote",
            "--experiment-name", self.experiment,
            "--job-name", self.job_name,
        ]  # fmt: skip
        if self.epochs is not None:
            argv += ["--epochs", str(self.epochs)]
        return argv

    @property
    def scratch(self) -> Path:
        """The run's temporary files (MLflow stages the model there): under the home, and gone when it ends."""
        return self.work / "tmp"

    def environment(self) -> dict[str, str]:
        scratch = str(self.scratch)
        return {
            **os.environ,
            **self.env,
            "TMPDIR": scratch,
            "TMP": scratch,
            "TEMP": scratch,
            **services.LOCAL_AWS_ENV,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "AWS_ENDPOINT_URL": self.s3_url,
            "MLFLOW_S3_ENDPOINT_URL": self.s3_url,
        }


def prepare(job: LocalTrainingJob) -> None:
    """Empty job directories and an empty hyperparameters file, as a new SageMaker job gets them."""
    for name in JOB_DIRECTORIES:
        directory = job.work / name
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(mode=0o700, parents=True)
    # SageMaker's hyperparameters file: empty for the built-in trainer (the flags say everything, and a stray
    # /opt/ml/input/config/hyperparameters.json on this machine must not); a script's epochs in script mode.
    script_params = {"epochs": str(job.epochs)} if job.entry_point is not None and job.epochs is not None else {}
    (job.work / "hyperparameters.json").write_text(json.dumps(script_params) + "\n")
    job.scratch.mkdir(mode=0o700, exist_ok=True)


def run(
    job: LocalTrainingJob,
    on_start: Callable[["subprocess.Popen[bytes]"], None] = lambda _process: None,
    what: str = "the job",
) -> TrainingResult:
    """Run the job to its result; LaunchError (`what` names the job in its reason) when it has none."""
    prepare(job)
    fd = services.open_private_log(job.log)
    offset = os.lseek(fd, 0, os.SEEK_END)
    try:
        process = subprocess.Popen(  # argv built by LocalTrainingJob.argv
            job.argv(),
            stdout=fd,
            stderr=subprocess.STDOUT,
            env=job.environment(),
            cwd=job.cwd or job.work,
            start_new_session=True,
            umask=PRIVATE_UMASK,
        )
    finally:
        os.close(fd)
    on_start(process)
    try:
        code = process.wait(timeout=job.timeout)
    except subprocess.TimeoutExpired:
        services.stop_session(process.pid, timeout=10.0)
        raise LaunchError(f"{what} did not finish within {job.timeout:.0f} s", job.log) from None
    finally:
        shutil.rmtree(job.scratch, ignore_errors=True)
    if code != 0:
        reason = last_error_line(job.log, offset) or "no output"
        raise LaunchError(f"{what} exited with status {code}: {reason}", job.log)
    tighten(job.work)
    try:
        result = TrainingResult.from_text(_read_from(job.log, offset))
    except ValueError as exc:
        raise LaunchError(f"{what} printed a {RESULT_PREFIX.strip()} line without a result: {exc}", job.log) from None
    if result is None:
        raise LaunchError(f"{what} printed no {RESULT_PREFIX.strip()} line", job.log)
    return result


def _read_from(log: Path, offset: int) -> str:
    with log.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")


def last_error_line(log: Path, offset: int) -> str | None:
    """The job's `error: ...` line (its contract for bad input), else its last non-empty line."""
    try:
        text = _read_from(log, offset)
    except OSError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line
    return lines[-1][:300] if lines else None
