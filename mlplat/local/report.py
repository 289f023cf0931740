"""What `mlplat up|status|down --local` are asked for and report: options, the six steps, results, failures."""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlplat.local import launcher
from mlplat.local.files import display

STEPS: tuple[tuple[str, str], ...] = (
    ("store", "S3-compatible store"),
    ("tracking", "MLflow tracking server"),
    ("data", "reference data set"),
    ("train", "training job"),
    ("serve", "serving endpoint"),
    ("predict", "first prediction"),
)


# A handful of epochs reaches a real model (well under the mean-predictor's error) in seconds on two cores.
DEFAULT_EPOCHS = 15


@dataclass(frozen=True)
class UserProject:
    """`up --local --entry-point --source-dir`: a user's training script, run by the training runtime's script mode."""

    entry_point: str
    source_dir: Path
    model: str
    """The registry name its model takes (the source directory's name)."""
    digest: str
    """SHA-256 of the project's reproducible archive: a changed project trains again, an unchanged one is reused."""
    epochs: int | None = None
    """Passed to the script as `--epochs N`; its own default when None."""


@dataclass(frozen=True)
class UpOptions:
    """What `mlplat up --local` was asked for."""

    stack: str = "dev"
    db: str = "sqlite"
    epochs: int = DEFAULT_EPOCHS
    port: int | None = None
    retrain: bool = False
    start_timeout: float = 120.0
    train_timeout: float = 900.0
    # The commands of the training job and the serving server, before their flags (tests swap in stand-ins).
    training_command: tuple[str, ...] = launcher.TRAINING_COMMAND
    serving_command: tuple[str, ...] = (sys.executable, "-m", "serving")
    project: UserProject | None = None
    """A user's project to train and serve instead of the stack's built-in model."""


class PlatformError(RuntimeError):
    """The platform cannot be brought up or down as asked; the message says why and what to do."""

    exit_status = 1  # in the command line's error path (mlplat.clikit)


class StepFailed(PlatformError):
    """Step `index` of `up` failed; everything this invocation had started has been stopped."""

    def __init__(self, index: int, key: str, reason: str, log: Path | None) -> None:
        self.index = index
        self.key = key
        self.reason = reason
        self.log = log
        where = f"; see {display(log)}" if log is not None else ""
        super().__init__(f"step {index}/{len(STEPS)} ({key}) failed: {reason}{where}")


class Reporter(Protocol):
    """Receives progress while `up` and `down` work (the CLI draws it with Rich)."""

    def begin(self, index: int, key: str, title: str) -> None: ...

    def end(self, index: int, detail: str) -> None: ...

    def note(self, message: str) -> None: ...


class SilentReporter:
    def begin(self, index: int, key: str, title: str) -> None:
        pass

    def end(self, index: int, detail: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass
class UpReport:
    """What `up` did and where everything is."""

    home: Path
    stack: str
    db: str
    bucket: str
    urls: dict[str, str]
    pids: dict[str, int]
    started: list[str]
    reused: list[str]
    trained: bool
    model: dict[str, Any]
    prediction: dict[str, Any]
    seconds_to_first_prediction: float
    cost: dict[str, Any] | None = None
    logs: dict[str, str] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    first_prediction_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "stack": self.stack,
            "db": self.db,
            "bucket": self.bucket,
            "urls": self.urls,
            "pids": self.pids,
            "started": self.started,
            "reused": self.reused,
            "trained": self.trained,
            "model": self.model,
            "prediction": self.prediction,
            "seconds_to_first_prediction": round(self.seconds_to_first_prediction, 2),
            "cost": self.cost,
            "logs": self.logs,
            "step_seconds": self.step_seconds,
            "first_prediction_at": self.first_prediction_at,
        }


@dataclass(frozen=True)
class PartStatus:
    """One recorded part as `status` sees it now."""

    name: str
    pid: int
    port: int
    url: str
    alive: bool
    healthy: bool
    log: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "port": self.port,
            "url": self.url,
            "alive": self.alive,
            "healthy": self.healthy,
            "log": self.log,
        }


@dataclass(frozen=True)
class StopResult:
    """What `down` did to one recorded part: `stopped`, `already stopped`, or `skipped` (pid now someone else's)."""

    name: str
    pid: int
    outcome: str
    signalled: list[int]
