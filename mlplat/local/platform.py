"""The local platform's orchestration: bring the cloud's shape up on 127.0.0.1 in six steps, report it, stop it.

`LocalPlatform(home).up(options)` runs the steps (store, tracking, data, train, serve, predict), reusing parts
that are already up and healthy and restarting dead ones; `status()` probes each recorded part; `down()` stops
exactly the processes recorded in `.mlplat/state.json`. A failed step raises `StepFailed` naming the step and the
log to read, after stopping everything this invocation started. The command line (`mlplat.local.cli`) only renders.
"""

import contextlib
import csv
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import httpx

from mlplat.local import services
from mlplat.local import state as st
from mlplat.local.state import Part, State

STEPS: tuple[tuple[str, str], ...] = (
    ("store", "S3-compatible store"),
    ("tracking", "MLflow tracking server"),
    ("data", "reference data set"),
    ("train", "training job"),
    ("serve", "serving endpoint"),
    ("predict", "first prediction"),
)
# The cloud bucket's layout (components/artifacts.py, ARCHITECTURE.md), created as folder markers.
BUCKET_PREFIXES = ("mlflow/", "datasets/", "checkpoints/", "data-capture/")
DATASET_NAME = "abalone"
DATASET_VERSION = "v1"
DEFAULT_MODEL_NAME = "abalone"
CHAMPION = "champion"
DEFAULT_SERVING_PORT = 8080
# A handful of epochs reaches a real model (well under the mean-predictor's error) in seconds on two cores.
DEFAULT_EPOCHS = 15
TARGET_COLUMN = "Rings"
RESULT_PREFIX = "MLPLAT_RESULT "
SERVING_POLL_SECONDS = 2
# How long a reused serving server may take to hot-swap to a new champion before it is restarted.
SWAP_WAIT = 30.0


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
    training_command: tuple[str, ...] = (sys.executable, "-m", "training")
    serving_command: tuple[str, ...] = (sys.executable, "-m", "serving")


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


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Everything `up` and `down` write under the home (snapshots, job directories) is private to the user."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def tighten(root: Path) -> None:
    """Make everything under `root` private to the user (copies keep their source's mode despite the umask)."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & 0o700)


def display(path: Path) -> str:
    """A path as the user should read it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def bucket_name(stack: str) -> str:
    """The local bucket of a stack (the cloud auto-names its bucket; locally one name per stack is enough)."""
    return f"mlplat-{stack}-artifacts"


def reference_data() -> Path:
    """The reference data set shipped with the training package (in the project, or the installed package)."""
    shipped = st.PROJECT_ROOT / "training" / "data" / f"{DATASET_NAME}.csv"
    if shipped.is_file():
        return shipped
    from importlib.resources import files

    return Path(str(files("training") / "data" / f"{DATASET_NAME}.csv"))


def sample_request(data: Path, rows: int = 1) -> tuple[dict[str, Any], list[str]]:
    """A real invocation body (`dataframe_split`) from the first `rows` of the data set, and their true targets."""
    with data.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        target = header.index(TARGET_COLUMN)
        body_rows: list[list[Any]] = []
        truths: list[str] = []
        for row in reader:
            values: list[Any] = [_number_or_text(v) for i, v in enumerate(row) if i != target]
            body_rows.append(values)
            truths.append(row[target])
            if len(body_rows) >= rows:
                break
    columns = [c for i, c in enumerate(header) if i != target]
    return {"dataframe_split": {"columns": columns, "data": body_rows}}, truths


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def parse_result(log: Path, offset: int) -> dict[str, Any] | None:
    """The training job's `MLPLAT_RESULT {json}` line, from what it wrote to `log` after `offset`."""
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    for line in reversed(text.splitlines()):
        if line.startswith(RESULT_PREFIX):
            try:
                result = json.loads(line[len(RESULT_PREFIX) :])
            except ValueError:
                return None
            return result if isinstance(result, dict) else None
    return None


def last_error_line(log: Path, offset: int) -> str | None:
    """The job's `error: ...` line (its contract for bad input), else its last non-empty line."""
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("error:"):
            return line
    return lines[-1][:300] if lines else None


def cost_estimate(stack: str) -> dict[str, Any]:
    """The monthly cost of the cloud stack this local platform mirrors, from `mlplat cost` when it is installed.

    Always a dict: `available` says whether the estimate could be made, `reason` why not.
    """
    try:
        from mlplat.cost.cli import stack_estimate
    except ImportError:
        return {"stack": stack, "available": False, "reason": "mlplat.cost is not installed"}
    try:
        result = stack_estimate(stack, None, None, date.today()).to_json()
    except Exception as exc:  # a broken estimate must not fail a working platform
        return {"stack": stack, "available": False, "reason": f"{type(exc).__name__}: {exc}"[:300]}
    return {
        "stack": stack,
        "available": True,
        "idle_monthly_usd": result.get("idleMonthlyUsd"),
        "peak_monthly_usd": result.get("peakMonthlyUsd"),
        "budget_usd": result.get("budgetUsd"),
        "within_budget": result.get("withinBudget"),
        "price_table": result.get("priceTable"),
    }


class LocalPlatform:
    """The local platform under one home directory (default `.mlplat/` at the project root)."""

    def __init__(self, home: Path | None = None, reporter: Reporter | None = None) -> None:
        self.home = (home or st.default_home()).resolve()
        self.reporter: Reporter = reporter or SilentReporter()
        self.logs = self.home / "logs"

    # ---- queries ------------------------------------------------------------------------------------------

    def state(self) -> State | None:
        return st.load(self.home)

    def status(self) -> list[PartStatus]:
        """Each recorded part, probed now; [] when the platform is not running here."""
        current = self.state()
        if current is None:
            return []
        result = []
        for name, part in current.ordered_parts():
            alive = part.is_alive()
            result.append(
                PartStatus(
                    name=name,
                    pid=part.pid,
                    port=part.port,
                    url=part.url,
                    alive=alive,
                    healthy=alive and services.probe(part.health_url),
                    log=part.log,
                )
            )
        return result

    # ---- down ---------------------------------------------------------------------------------------------

    def down(self, purge: bool = False, snapshot: bool = True) -> list[StopResult]:
        """Stop every recorded process (serving first, the store last); keep the data unless `purge`.

        Before the store stops, its bucket is copied to `.mlplat/s3/` (moto keeps objects in memory) so the next
        `up` restores it instead of training again.
        """
        if not self.home.exists():
            return []
        with private_umask(), st.locked(self.home):
            current = self.state()
            results: list[StopResult] = []
            if current is not None:
                s3 = current.parts.get("s3")
                if snapshot and not purge and s3 is not None and s3.is_healthy():
                    try:
                        snapshot_bucket(s3_client(s3.url), current.bucket, self.home / "s3" / current.bucket)
                    except Exception as exc:  # a failed copy must not keep processes running
                        self.reporter.note(f"could not snapshot the bucket ({exc}); the next up trains again")
                for name, part in reversed(current.ordered_parts()):
                    results.append(self._stop_part(part))
                    del current.parts[name]
                    st.save(self.home, current)
                st.clear(self.home)
        if purge:
            shutil.rmtree(self.home, ignore_errors=True)
        return results

    def _stop_part(self, part: Part, timeout: float = 20.0) -> StopResult:
        sig = signal.Signals[part.stop_signal]
        if part.is_alive():
            signalled = services.stop_session(part.pid, timeout=timeout, sig=sig)
            return StopResult(part.name, part.pid, "stopped", signalled)
        if services.process_fingerprint(part.pid) is None and services.session_members(part.pid):
            # The leader died but workers of its session live on; the session id cannot have been reused meanwhile.
            signalled = services.stop_session(part.pid, timeout=timeout, sig=sig)
            return StopResult(part.name, part.pid, "stopped", signalled)
        if services.process_fingerprint(part.pid) is not None:
            return StopResult(part.name, part.pid, "skipped", [])
        return StopResult(part.name, part.pid, "already stopped", [])

    # ---- up -----------------------------------------------------------------------------------------------

    def up(self, options: UpOptions) -> UpReport:
        """Run the six steps; see the module docstring. Raises StepFailed or PlatformError."""
        from components.config import ConfigError, load_stack

        began = time.monotonic()
        try:
            stack_cfg = load_stack(options.stack)
        except ConfigError as exc:
            raise PlatformError(str(exc)) from None
        model_name = stack_cfg.endpoints[0].model if stack_cfg.endpoints else DEFAULT_MODEL_NAME
        endpoint_name = stack_cfg.endpoints[0].name if stack_cfg.endpoints else f"{model_name}-local"
        capture_percent = stack_cfg.endpoints[0].data_capture_percent if stack_cfg.endpoints else 0.0
        with private_umask(), st.locked(self.home):
            current = self.state()
            running = current is not None and any(p.is_alive() for p in current.parts.values())
            if current is not None and running and (current.stack, current.db) != (options.stack, options.db):
                raise PlatformError(
                    f"the local platform under {display(self.home)} runs stack {current.stack} with --db "
                    f"{current.db}; run `mlplat down --local` first to switch to stack {options.stack} with "
                    f"--db {options.db}"
                )
            if current is None or (current.stack, current.db) != (options.stack, options.db):
                current = State(stack=options.stack, db=options.db, bucket=bucket_name(options.stack))
            run = _UpRun(self, current, options, model_name, endpoint_name, capture_percent, began)
            try:
                report = run.execute()
            except BaseException:
                run.rollback()
                raise
        return report


@dataclass
class _Step:
    """The step in progress: its log (a step may switch logs as it goes) and what it reports when done."""

    log: Path | None
    details: list[str] = field(default_factory=list)

    def __call__(self, detail: str) -> None:
        self.details.append(detail)


class _UpRun:
    """One invocation of `up`: what it started (to roll back on failure) and what it found."""

    def __init__(
        self,
        platform: LocalPlatform,
        current: State,
        options: UpOptions,
        model_name: str,
        endpoint: str,
        capture_percent: float,
        began: float,
    ) -> None:
        self.platform = platform
        self.home = platform.home
        self.logs = platform.logs
        self.reporter = platform.reporter
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

    # ---- bookkeeping ----

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
                self.platform._stop_part(part)
        if self.state.parts:
            self.save()
        else:
            st.clear(self.home)

    @contextlib.contextmanager
    def step(self, index: int, log: Path | None = None) -> Iterator["_Step"]:
        key, title = STEPS[index - 1]
        self.reporter.begin(index, key, title)
        began = time.monotonic()
        with self.attributed(index, log) as current:
            yield current
        self.timings[key] = round(time.monotonic() - began, 2)
        self.reporter.end(index, "; ".join(current.details))

    @contextlib.contextmanager
    def attributed(self, index: int, log: Path | None = None) -> Iterator["_Step"]:
        """Turn what goes wrong inside into StepFailed for step `index` (also for work started ahead of it)."""
        key = STEPS[index - 1][0]
        current = _Step(log)
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
        self.platform._stop_part(part)
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

    # ---- the steps ----

    def execute(self) -> UpReport:
        s3, fresh_store, restored = self.step_store()
        mlflow = self.step_tracking()
        # The serving server imports for seconds and retries the registry until the champion exists: starting it
        # now overlaps its start-up with the upload and the training job.
        with self.attributed(5, self.log("serving")):
            self.prespawn_serving(s3, mlflow)
        self.step_data(s3)
        # A fresh store holds what the last `down` saved; a model trained after that (the store then died) is gone.
        stale = restored is None or restored < float(self.state.model.get("trained_at", 0.0))
        champion, trained = self.step_train(s3, mlflow, must_train=fresh_store and stale)
        serving = self.step_serve(s3, mlflow, champion)
        prediction = self.step_predict(serving)
        elapsed = time.monotonic() - self.began
        self.state.model = champion
        self.save()
        parts = self.state.parts
        return UpReport(
            home=self.home,
            stack=self.state.stack,
            db=self.state.db,
            bucket=self.state.bucket,
            urls={name: part.url for name, part in self.state.ordered_parts()},
            pids={name: part.pid for name, part in self.state.ordered_parts()},
            started=list(self.started),
            reused=list(self.reused),
            trained=trained,
            model=champion,
            prediction=prediction,
            seconds_to_first_prediction=elapsed,
            step_seconds=dict(self.timings),
            first_prediction_at=self.first_prediction_at,
            logs={name: display(Path(part.log)) for name, part in parts.items()}
            | ({"train": display(self.log("train"))} if trained else {}),
        )

    def step_store(self) -> tuple[Part, bool, float | None]:
        """1: moto's server mode, the bucket and its prefixes; a fresh store gets the last snapshot back."""
        log = self.log("s3")
        with self.step(1, log) as detail:
            part = self.healthy_part("s3")
            fresh = part is None
            restored: float | None = None
            service = None
            if part is None:
                port = self.port_for("s3", self.previous_ports.get("s3"))
                service = services.spawn_s3(port, log, umask=self.umask, cwd=self.workdir())
                part = self.record(service, services.s3_health_url(service.url))
            # MLflow imports for seconds and needs the store only when artifacts move: start it meanwhile.
            with self.attributed(2, self.log("mlflow")):
                self.prespawn_tracking(part.url)
            if service is not None:
                services.wait_healthy(part.health_url, service.process, self.options.start_timeout, "s3 (moto server)")
            client = s3_client(part.url)
            ensure_bucket(client, self.state.bucket)
            if fresh:
                restored = restore_bucket(client, self.state.bucket, self.home / "s3" / self.state.bucket)
            detail(f"{part.url} bucket {self.state.bucket}" + (" (restored)" if restored is not None else ""))
        return part, fresh, restored

    def prespawn_tracking(self, s3_url: str) -> None:
        if self.state.db != "sqlite" or self.healthy_part("mlflow", upstream=s3_url) is not None:
            return
        self.spawned_mlflow = self.spawn_mlflow(f"sqlite:///{self.home / 'mlflow.db'}", s3_url)

    def spawn_mlflow(self, backend: str, s3_url: str) -> services.Service:
        port = self.port_for("mlflow", self.previous_ports.get("mlflow"))
        service = services.spawn_mlflow(
            port,
            self.log("mlflow"),
            backend,
            f"s3://{self.state.bucket}/mlflow",
            s3_url,
            umask=self.umask,
            cwd=self.workdir(),
        )
        self.record(service, services.mlflow_health_url(service.url), upstream=s3_url)
        return service

    def step_tracking(self) -> Part:
        """2: (PostgreSQL and) `mlflow server`, artifacts proxied to s3://<bucket>/mlflow."""
        log = self.log("mlflow")
        with self.step(2, log) as detail:
            s3 = self.state.parts["s3"]
            service = self.spawned_mlflow
            if service is None and self.state.db == "postgres":
                detail.log = self.log("postgres")
                backend = self.ensure_postgres()
                detail.log = log
                if self.healthy_part("mlflow", upstream=s3.url) is None:
                    service = self.spawn_mlflow(backend, s3.url)
            if service is not None:
                services.wait_healthy(
                    services.mlflow_health_url(service.url),
                    service.process,
                    self.options.start_timeout,
                    name="mlflow server",
                )
            part = self.state.parts["mlflow"]
            detail(part.url)
        return part

    def ensure_postgres(self) -> str:
        pg_home = self.home / "postgres"
        password_file = pg_home / "password"
        pg_home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if password_file.exists():
            password = password_file.read_text().strip()
        else:
            password = secrets.token_urlsafe(24)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password + "\n")
        part = self.healthy_part("postgres")
        if part is None:
            port = self.port_for("postgres", self.previous_ports.get("postgres"))
            service = services.start_postgres(
                port, pg_home / "data", self.log("postgres"), password, timeout=self.options.start_timeout
            )
            part = self.record(
                service, f"tcp://{services.LOOPBACK}:{port}", url=f"postgresql://{services.LOOPBACK}:{port}/mlflow"
            )
        return services.postgres_uri(part.port, password)

    def step_data(self, s3: Part) -> None:
        """3: the reference data set under datasets/abalone/v1/ (skipped when the same bytes are there)."""
        with self.step(3) as detail:
            source = reference_data()
            key = f"datasets/{DATASET_NAME}/{DATASET_VERSION}/{source.name}"
            client = s3_client(s3.url)
            body = source.read_bytes()
            try:
                head = client.head_object(Bucket=self.state.bucket, Key=key)
                same = int(head["ContentLength"]) == len(body)
            except client.exceptions.ClientError:
                same = False
            if not same:
                client.put_object(Bucket=self.state.bucket, Key=key, Body=body)
            detail(f"s3://{self.state.bucket}/{key}")

    def step_train(self, s3: Part, mlflow: Part, must_train: bool) -> tuple[dict[str, Any], bool]:
        """4: the training entrypoint as a process; registers the model and promotes it to champion.

        Skipped when the registry already has a champion whose artifacts are in the store (unless --retrain).
        """
        log = self.log("train")
        with self.step(4, log) as detail:
            champion = champion_info(mlflow.url, self.model_name)
            if champion is not None and not must_train and not self.options.retrain:
                if self.state.model.get("version") == champion["version"]:
                    known = {k: v for k, v in champion.items() if v not in (None, "", {})}
                    champion = {**self.state.model, **known}
                detail(f"{self.model_name} v{champion['version']} is already champion (--retrain to train again)")
                return self.with_endpoint(champion), False
            result = self.run_training(s3, mlflow, log)
            champion = champion_info(mlflow.url, self.model_name)
            if champion is None:
                raise StepFailed(4, "train", f"the job finished but {self.model_name}@{CHAMPION} does not exist", log)
            job_version = str(result.get("version"))
            rmse = f"test RMSE {float(result.get('test_rmse', 'nan')):.3f}"
            if job_version == champion["version"]:
                merged = {**champion, **{k: v for k, v in result.items() if k not in ("aliases", "version")}}
                detail(f"run {result.get('run_id')} → {self.model_name} v{job_version} (champion); {rmse}")
            else:
                # The promotion gate kept the current champion: serve it, and say what became of the new one.
                merged = {**champion, "last_job": result}
                detail(
                    f"run {result.get('run_id')} → {self.model_name} v{job_version} ({result.get('decision')}), "
                    f"{rmse}; v{champion['version']} stays champion"
                )
        return self.with_endpoint(merged), True

    def with_endpoint(self, model: dict[str, Any]) -> dict[str, Any]:
        return {
            **model,
            "name": self.model_name,
            "alias": CHAMPION,
            "uri": f"models:/{self.model_name}@{CHAMPION}",
            "endpoint_name": self.endpoint,
        }

    def run_training(self, s3: Part, mlflow: Part, log: Path) -> dict[str, Any]:
        job = f"{self.model_name}-local-{time.strftime('%Y%m%d-%H%M%S')}"
        sm = self.home / "job"
        dirs = {name: sm / name for name in ("model", "output", "checkpoints")}
        for directory in dirs.values():
            # A new job starts from empty directories, as on SageMaker: stale checkpoints would be resumed.
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(mode=0o700, parents=True)
        # SageMaker's hyperparameters file, empty: the flags below say everything, and a stray
        # /opt/ml/input/config/hyperparameters.json on this machine must not.
        hyperparameters = sm / "hyperparameters.json"
        hyperparameters.write_text("{}\n")
        argv = [
            *self.options.training_command,
            "--data", f"s3://{self.state.bucket}/datasets/{DATASET_NAME}/{DATASET_VERSION}/",
            "--model-dir", str(dirs["model"]),
            "--output-data-dir", str(dirs["output"]),
            "--checkpoint-dir", str(dirs["checkpoints"]),
            "--checkpoint-s3-uri", f"s3://{self.state.bucket}",
            "--hyperparameters", str(hyperparameters),
            "--registered-model-name", self.model_name,
            "--promote",
            "--epochs", str(self.options.epochs),
            "--experiment-name", f"mlplat-local-{self.state.stack}",
            "--job-name", job,
        ]  # fmt: skip
        env = {
            **os.environ,
            **services.LOCAL_AWS_ENV,
            "MLFLOW_TRACKING_URI": mlflow.url,
            "AWS_ENDPOINT_URL": s3.url,
            "MLFLOW_S3_ENDPOINT_URL": s3.url,
        }
        fd = services.open_private_log(log)
        offset = os.lseek(fd, 0, os.SEEK_END)
        try:
            self.training = subprocess.Popen(  # argv built here
                argv,
                stdout=fd,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir(),
                start_new_session=True,
                umask=self.umask,
            )
        finally:
            os.close(fd)
        try:
            code = self.training.wait(timeout=self.options.train_timeout)
        except subprocess.TimeoutExpired:
            services.stop_session(self.training.pid, timeout=10.0)
            raise StepFailed(
                4, "train", f"the job did not finish within {self.options.train_timeout:.0f} s", log
            ) from None
        if code != 0:
            reason = last_error_line(log, offset) or "no output"
            raise StepFailed(4, "train", f"the job exited with status {code}: {reason}", log)
        tighten(sm)
        result = parse_result(log, offset)
        if result is None:
            raise StepFailed(4, "train", f"the job printed no {RESULT_PREFIX.strip()} line", log)
        result["trained_at"] = time.time()
        return result

    def serving_upstream(self, s3: Part, mlflow: Part) -> str:
        return f"{mlflow.url} {s3.url}"

    def serving_port(self) -> int:
        """8080 (or the asked port); a free port when 8080 is busy; a clear error when the asked port is busy."""
        explicit = self.options.port is not None
        return self.port_for("serving", self.options.port or DEFAULT_SERVING_PORT, explicit=explicit)

    def prespawn_serving(self, s3: Part, mlflow: Part) -> None:
        if self.healthy_part("serving", upstream=self.serving_upstream(s3, mlflow)) is not None:
            return
        if self.options.port is not None and not services.port_is_free(self.options.port):
            return  # step 5 reports the busy port
        self.spawned_serving = self.spawn_serving(self.serving_port(), s3, mlflow)

    def spawn_serving(self, port: int, s3: Part, mlflow: Part) -> services.Service:
        service = services.spawn_serving(
            port,
            self.log("serving"),
            tracking_uri=mlflow.url,
            model_uri=f"models:/{self.model_name}@{CHAMPION}",
            env=self.serving_env(s3),
            command=list(self.options.serving_command),
            cwd=self.workdir(),
            umask=self.umask,
        )
        self.record(service, services.serving_health_url(service.url), upstream=self.serving_upstream(s3, mlflow))
        return service

    def step_serve(self, s3: Part, mlflow: Part, champion: dict[str, Any]) -> Part:
        """5: the serving server on 127.0.0.1:8080 (or a free port), loading models:/<name>@champion.

        It captures invocations to s3://<bucket>/data-capture/<endpoint>/ at the stack's capture percentage, as the
        cloud endpoint does, so the drift monitor reads the same layout locally. A reused server that still serves
        an older version gets SWAP_WAIT seconds to hot-swap to the new champion (it polls the alias), then is
        restarted.
        """
        log = self.log("serving")
        wanted = str(champion["version"])
        with self.step(5, log) as detail:
            service = self.spawned_serving
            if service is None and self.healthy_part("serving", self.serving_upstream(s3, mlflow)) is None:
                service = self.spawn_serving(self.serving_port(), s3, mlflow)
            part = self.state.parts["serving"]
            if service is not None:
                services.wait_healthy(part.health_url, service.process, self.options.start_timeout, "serving server")
            if not wait_for_version(part.url, wanted, SWAP_WAIT):
                self.reporter.note(f"serving (pid {part.pid}) still serves an older model; restarting it")
                if "serving" in self.reused:
                    self.reused.remove("serving")
                self.platform._stop_part(part)
                del self.state.parts["serving"]
                self.save()
                port = part.port if services.port_is_free(part.port) else self.serving_port()
                service = self.spawn_serving(port, s3, mlflow)
                part = self.state.parts["serving"]
                services.wait_healthy(part.health_url, service.process, self.options.start_timeout, "serving server")
            detail(f"{part.url} serving {self.model_name} v{served_version(part.url)}")
        return part

    def serving_env(self, s3: Part) -> dict[str, str]:
        env = {
            "MLPLAT_MODEL_CACHE": str(self.home / "model-cache"),
            "MLPLAT_ENDPOINT_NAME": self.endpoint,
            "AWS_ENDPOINT_URL": s3.url,
            # Poll the alias often: the first load follows the training job within seconds, and so does a swap.
            "MLPLAT_MODEL_POLL_INTERVAL": str(SERVING_POLL_SECONDS),
        }
        if self.capture_percent > 0:
            env["MLPLAT_CAPTURE_DESTINATION"] = f"s3://{self.state.bucket}/data-capture/{self.endpoint}/"
            env["MLPLAT_CAPTURE_PERCENT"] = f"{self.capture_percent:g}"
        return env

    def step_predict(self, serving: Part) -> dict[str, Any]:
        """6: a real request to /invocations with a row of the reference data."""
        with self.step(6, Path(serving.log)) as detail:
            body, truths = sample_request(reference_data())
            response = httpx.post(f"{serving.url}/invocations", json=body, timeout=30.0)
            if response.status_code != 200:
                raise StepFailed(
                    6, "predict", f"/invocations answered {response.status_code}: {response.text[:200]}", None
                )
            predictions = response.json().get("predictions")
            if not isinstance(predictions, list) or not predictions:
                raise StepFailed(6, "predict", "/invocations answered without predictions", None)
            value = predictions[0]
            self.first_prediction_at = time.time()
            prediction = {
                "url": f"{serving.url}/invocations",
                "input": dict(zip(body["dataframe_split"]["columns"], body["dataframe_split"]["data"][0], strict=True)),
                "prediction": value,
                "actual": float(truths[0]),
            }
            detail(f"predicted {value} (actual {truths[0]})")
        return prediction


# ---- S3 and registry helpers -------------------------------------------------------------------------------


def s3_client(endpoint_url: str) -> Any:
    import boto3

    env = services.LOCAL_AWS_ENV
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def ensure_bucket(client: Any, bucket: str) -> None:
    """The bucket and its four prefixes (folder markers), as the cloud lays them out; idempotent."""
    try:
        client.head_bucket(Bucket=bucket)
    except client.exceptions.ClientError:
        client.create_bucket(Bucket=bucket)
    for prefix in BUCKET_PREFIXES:
        client.put_object(Bucket=bucket, Key=prefix, Body=b"")


def snapshot_bucket(client: Any, bucket: str, target: Path) -> int:
    """Copy every object of `bucket` under `target` (replacing it); returns the object count."""
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue
            path = staging / key
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            client.download_file(bucket, key, str(path))
            path.chmod(0o600)
            count += 1
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    _snapshot_marker(target).write_text(json.dumps({"taken_at": time.time(), "objects": count}) + "\n")
    return count


def restore_bucket(client: Any, bucket: str, source: Path) -> float | None:
    """Upload a snapshot taken by `down` into a fresh bucket; returns when it was taken, None when there is none."""
    marker = _snapshot_marker(source)
    if not source.is_dir() or not marker.is_file():
        return None
    for path in source.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, path.relative_to(source).as_posix())
    return float(json.loads(marker.read_text())["taken_at"])


def _snapshot_marker(snapshot: Path) -> Path:
    return snapshot.with_name(snapshot.name + ".json")


def champion_info(tracking_uri: str, model_name: str, alias: str = CHAMPION) -> dict[str, Any] | None:
    """The model version behind `model_name@alias` (version, run id, source) with its run's metrics, or None."""
    response = httpx.get(
        f"{tracking_uri}/api/2.0/mlflow/registered-models/alias",
        params={"name": model_name, "alias": alias},
        timeout=10.0,
    )
    if response.status_code == 404 or (response.status_code >= 400 and "RESOURCE_DOES_NOT_EXIST" in response.text):
        return None
    response.raise_for_status()
    version = response.json()["model_version"]
    info: dict[str, Any] = {
        "version": str(version["version"]),
        "run_id": version.get("run_id"),
        "source": version.get("source"),
    }
    if info["run_id"]:
        run = httpx.get(f"{tracking_uri}/api/2.0/mlflow/runs/get", params={"run_id": info["run_id"]}, timeout=10.0)
        if run.status_code == 200:
            metrics = run.json().get("run", {}).get("data", {}).get("metrics", [])
            info["metrics"] = {m["key"]: m["value"] for m in metrics}
    return info


def wait_for_version(serving_url: str, version: str, timeout: float) -> bool:
    """Wait until the serving server reports `version` at /version; False after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if served_version(serving_url) == version:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)


def served_version(serving_url: str) -> str | None:
    """The model version the serving server reports at /version."""
    try:
        response = httpx.get(f"{serving_url}/version", timeout=5.0)
        return str(response.json().get("version")) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
