"""The bookkeeping of one `mlplat up --local`: the parts it started or reused, their ports, the step being
reported, and the rollback of what it started when a step fails (the steps themselves are `mlplat.local.steps`)."""

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mlplat.local import services
from mlplat.local import state as st
from mlplat.local.report import STEPS, Reporter, StepFailed, UpOptions
from mlplat.local.state import Part, State


@dataclass
class Step:
    """The step in progress: its log (a step may switch logs as it goes) and what it reports when done."""

    log: Path | None
    details: list[str] = field(default_factory=list)

    def __call__(self, detail: str) -> None:
        self.details.append(detail)


class RunParts:
    """One invocation of `up`: what it started (to roll back on failure) and what it found; `UpRun` adds the steps."""

    def __init__(
        self,
        home: Path,
        reporter: Reporter,
        current: State,
        options: UpOptions,
        model_name: str,
        endpoint: str,
        capture_percent: float,
        began: float,
    ) -> None:
        self.home = home
        self.logs = home / "logs"
        self.reporter = reporter
        self.state = current
        self.options = options
        self.model_name = model_name
        self.endpoint = endpoint
        self.capture_percent = capture_percent
        self.began = began
        self.started: list[str] = []
        self.reused: list[str] = []
        self.training: subprocess.Popen[bytes] | None = None
        self.spawned_mlflow: services.Service | None = None
        self.spawned_serving: services.Service | None = None
        self.timings: dict[str, float] = {}
        # Ports of parts found dead: a restarted part takes its old port when free, so URLs stay put.
        self.previous_ports: dict[str, int] = {}
        self.first_prediction_at = 0.0
        self.umask = 0o077

    def save(self) -> None:
        st.save(self.home, self.state)

    def record(self, service: services.Service, health_url: str, upstream: str = "", url: str = "") -> Part:
        part = Part.from_service(service, url or service.url, health_url, time.time(), upstream=upstream)
        self.state.parts[service.name] = part
        self.started.append(service.name)
        self.save()
        return part

    def rollback(self) -> None:
        """Stop what this invocation started (and a training job in flight), newest first."""
        if self.training is not None and self.training.poll() is None:
            services.stop_session(self.training.pid, timeout=10.0)
        for name in reversed(self.started):
            part = self.state.parts.pop(name, None)
            if part is not None:
                st.stop_part(part)
        if self.state.parts:
            self.save()
        else:
            st.clear(self.home)

    @contextlib.contextmanager
    def step(self, index: int, log: Path | None = None) -> Iterator["Step"]:
        key, title = STEPS[index - 1]
        self.reporter.begin(index, key, title)
        began = time.monotonic()
        with self.attributed(index, log) as current:
            yield current
        self.timings[key] = round(time.monotonic() - began, 2)
        self.reporter.end(index, "; ".join(current.details))

    @contextlib.contextmanager
    def attributed(self, index: int, log: Path | None = None) -> Iterator["Step"]:
        """Turn what goes wrong inside into StepFailed for step `index` (also for work started ahead of it)."""
        key = STEPS[index - 1][0]
        current = Step(log)
        try:
            yield current
        except StepFailed:
            raise
        except services.ServiceError as exc:
            raise StepFailed(index, key, str(exc), current.log) from exc
        except (OSError, httpx.HTTPError, RuntimeError, ValueError) as exc:
            raise StepFailed(index, key, f"{type(exc).__name__}: {exc}", current.log) from exc

    def healthy_part(self, name: str, upstream: str = "") -> Part | None:
        """The recorded part when it is our live, healthy process wired to `upstream`; else it is stopped."""
        part = self.state.parts.get(name)
        if part is None:
            return None
        if part.is_healthy() and part.upstream == upstream:
            if name not in self.reused and name not in self.started:
                self.reused.append(name)
            return part
        why = "is not healthy" if part.upstream == upstream else f"points at {part.upstream}, not {upstream}"
        self.reporter.note(f"{name} (pid {part.pid}) {why}; restarting it")
        st.stop_part(part)
        self.previous_ports[name] = part.port
        del self.state.parts[name]
        self.save()
        return None

    def port_for(self, name: str, preferred: int | None, explicit: bool = False) -> int:
        """`preferred` when free; else a free port, or a clear error when the user asked for that exact port."""
        if preferred is not None and services.port_is_free(preferred):
            return preferred
        if preferred is not None and explicit:
            raise services.ServiceError(f"port {preferred} on {services.LOOPBACK} is busy; choose another --port")
        port = services.free_port()
        if preferred is not None:
            self.reporter.note(f"port {preferred} is busy; {name} uses port {port}")
        return port

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def workdir(self) -> Path:
        """The processes' working directory: empty, so nothing in it shadows a package (`python -m training`)."""
        work = self.home / "work"
        work.mkdir(mode=0o700, exist_ok=True)
        return work
