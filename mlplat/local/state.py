"""The local platform's state on disk: where `.mlplat/` is, what runs (pid, port, URL), and how to read it safely.

`.mlplat/state.json` is written atomically with mode 0600 in a 0700 directory. Other tools (the drift monitor of
issue [8], scripts) find the running platform through `discover()`, never by parsing the file themselves.
"""

import contextlib
import fcntl
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contracts import bucket as layout
from mlplat.local import services
from mlplat.local.report import StopResult

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOME_ENV = "MLPLAT_HOME"
STATE_FILE = "state.json"
LOCK_FILE = "lock"
SCHEMA = 1
# The order parts start in; they stop in reverse.
PART_ORDER = ("s3", "postgres", "mlflow", "serving")


class StateError(RuntimeError):
    """The state file is unreadable or another mlplat command holds the lock."""

    exit_status = 1  # in the command line's error path (mlplat.clikit)


class PlatformNotRunning(StateError):
    """No local platform has been started under this home."""


@dataclass
class Part:
    """One server process the platform started, as recorded in the state file."""

    name: str
    pid: int
    fingerprint: str
    port: int
    url: str
    health_url: str
    log: str
    argv: list[str]
    started_at: float
    stop_signal: str = "SIGTERM"
    upstream: str = ""

    @classmethod
    def from_service(
        cls, service: services.Service, url: str, health_url: str, started_at: float, upstream: str = ""
    ) -> "Part":
        return cls(
            name=service.name,
            pid=service.pid,
            fingerprint=services.process_fingerprint(service.pid) or "",
            port=service.port,
            url=url,
            health_url=health_url,
            log=str(service.log),
            argv=list(service.process.args) if isinstance(service.process.args, list) else [],
            started_at=started_at,
            stop_signal="SIGINT" if service.name == "postgres" else "SIGTERM",
            upstream=upstream,
        )

    def is_alive(self) -> bool:
        """The recorded pid still is the process this platform started (not a reused pid)."""
        return bool(self.fingerprint) and services.is_same_process(self.pid, self.fingerprint)

    def is_healthy(self) -> bool:
        return self.is_alive() and services.probe(self.health_url)


@dataclass
class State:
    """Everything `.mlplat/state.json` holds."""

    stack: str
    db: str
    bucket: str
    parts: dict[str, Part] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "stack": self.stack,
            "db": self.db,
            "bucket": self.bucket,
            "parts": {name: asdict(part) for name, part in self.ordered_parts()},
            "model": self.model,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "State":
        return cls(
            stack=str(data["stack"]),
            db=str(data["db"]),
            bucket=str(data["bucket"]),
            parts={name: Part(**raw) for name, raw in dict(data.get("parts") or {}).items()},
            model=dict(data.get("model") or {}),
            schema=int(data.get("schema", SCHEMA)),
        )

    def ordered_parts(self) -> list[tuple[str, Part]]:
        return sorted(self.parts.items(), key=lambda item: PART_ORDER.index(item[0]))

    def url(self, part: str) -> str | None:
        recorded = self.parts.get(part)
        return recorded.url if recorded else None


def default_home() -> Path:
    """`$MLPLAT_HOME`, else `.mlplat/` at the project root."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / ".mlplat"


def ensure_home(home: Path) -> Path:
    """Create `home` (and logs/) private to the user, and tighten it if it exists looser."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)
    (home / "logs").mkdir(mode=0o700, exist_ok=True)
    return home


def state_path(home: Path) -> Path:
    return home / STATE_FILE


def load(home: Path) -> State | None:
    """The recorded state, or None when the platform was never started here (or was brought down)."""
    path = state_path(home)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: cannot read the state file ({exc}); remove it after checking `ps`") from None
    try:
        return State.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"{path}: not a state file this version understands ({exc})") from None


def save(home: Path, state: State) -> None:
    """Write the state atomically (temp file + rename), mode 0600."""
    ensure_home(home)
    fd, tmp = tempfile.mkstemp(prefix=".state.", dir=home)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(state.to_json(), out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, state_path(home))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def clear(home: Path) -> None:
    state_path(home).unlink(missing_ok=True)


@contextlib.contextmanager
def home_errors(home: Path) -> Iterator[None]:
    """A filesystem error on the home (read-only, not a directory, full) as one StateError line naming the path."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or home
        raise StateError(
            f"{where}: {exc.strerror or exc} (the local platform's home must be a writable directory)"
        ) from None


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    """Hold `.mlplat/lock` so two `up`/`down` commands never interleave on one home."""
    ensure_home(home)
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateError(f"another mlplat command is working on {home} (it holds {home / LOCK_FILE})") from None
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class LocalEndpoints:
    """Where the running local platform answers: what another tool needs to talk to it."""

    home: Path
    stack: str
    bucket: str
    s3_url: str
    mlflow_url: str
    serving_url: str | None
    model_name: str | None
    model_uri: str | None
    data_capture_uri: str | None
    aws_env: dict[str, str]


def discover(home: Path | None = None, require_healthy: bool = True) -> LocalEndpoints:
    """The URLs of the local platform running under `home` (default: `$MLPLAT_HOME` or `.mlplat/`).

    Raises PlatformNotRunning when nothing was started there, or (with `require_healthy`) when the S3 store or
    the tracking server is not answering. `aws_env` holds the environment a boto3 or mlflow client needs
    (`AWS_ENDPOINT_URL`, `MLFLOW_S3_ENDPOINT_URL`, dummy credentials, `MLFLOW_TRACKING_URI`).
    """
    home = home or default_home()
    state = load(home)
    if state is None or "s3" not in state.parts or "mlflow" not in state.parts:
        raise PlatformNotRunning(f"the local platform is not running under {home}; start it with `mlplat up --local`")
    if require_healthy:
        for name in ("s3", "mlflow"):
            if not state.parts[name].is_healthy():
                raise PlatformNotRunning(
                    f"the local platform's {name} is not healthy under {home}; run `mlplat up --local` to revive it"
                )
    s3_url = state.parts["s3"].url
    mlflow_url = state.parts["mlflow"].url
    aws_env = {
        **services.LOCAL_AWS_ENV,
        "AWS_ENDPOINT_URL": s3_url,
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        "MLFLOW_TRACKING_URI": mlflow_url,
    }
    endpoint = state.model.get("endpoint_name")
    return LocalEndpoints(
        home=home,
        stack=state.stack,
        bucket=state.bucket,
        s3_url=s3_url,
        mlflow_url=mlflow_url,
        serving_url=state.url("serving"),
        model_name=state.model.get("name"),
        model_uri=state.model.get("uri"),
        data_capture_uri=layout.s3_uri(state.bucket, layout.capture_prefix(endpoint)) if endpoint else None,
        aws_env=aws_env,
    )


def stop_part(part: Part, timeout: float = 20.0) -> StopResult:
    """Stop a recorded part's session: `stopped`, `already stopped`, or `skipped` (its pid is someone else's now)."""
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
