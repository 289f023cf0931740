"""Start, probe and stop the local platform's server processes (S3-compatible store, PostgreSQL, MLflow, serving).

The test suite starts its session servers through these same functions, so what the tests exercise is what
`mlplat up --local` runs. Every server runs in its own session (`start_new_session`), so a server and every worker
it forks can be found by session id and stopped together, by a later `mlplat down` as well as by this process.
"""

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from mlplat.local.processes import (
    is_same_process as is_same_process,
)
from mlplat.local.processes import (
    process_cmdline as process_cmdline,
)
from mlplat.local.processes import (
    process_fingerprint as process_fingerprint,
)
from mlplat.local.processes import (
    session_members as session_members,
)
from mlplat.local.processes import (
    stop_session as stop_session,
)

LOOPBACK = "127.0.0.1"
# moto's server mode accepts any credentials; these make boto3 and mlflow sign requests without a real account.
LOCAL_AWS_ENV: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "mlplat-local",
    "AWS_SECRET_ACCESS_KEY": "mlplat-local",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# MLflow's job runner forks seven huey consumers for GenAI jobs the platform never submits; on a two-core laptop
# they cost seconds of start-up and hundreds of MB.
MLFLOW_SERVER_ENV: Mapping[str, str] = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
APT_POSTGRES_HINT = "install PostgreSQL's server binaries (apt-get install postgresql, or brew install postgresql)"


class ServiceError(RuntimeError):
    """A local service did not start or did not become healthy; the message names it and its log."""


class MissingDependency(ServiceError):
    """A program or library a part needs is not on this machine; the message names it and how to install it."""


@dataclass
class Service:
    """A started server process and where it answers."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> None:
        """Terminate the process and every worker of its session, killing what lingers after `timeout`."""
        stop_session(self.process.pid, timeout=timeout, sig=sig)
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when a server could listen on `port` on loopback now: nothing listens there (or on the wildcard).

    SO_REUSEADDR, as servers set it, so connections in TIME_WAIT from a stopped server do not count as busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def probe(url: str, timeout: float = 2.0) -> bool:
    """True when `url` answers: HTTP 200 for http(s) URLs, an accepted connection for `tcp://host:port`."""
    parsed = urlparse(url)
    if parsed.scheme == "tcp":
        try:
            with socket.create_connection((parsed.hostname or LOOPBACK, parsed.port or 0), timeout=timeout):
                return True
        except OSError:
            return False
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_healthy(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60.0, name: str = "service"
) -> None:
    """Poll `url` until it answers (see `probe`); fail early when `process` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceError(f"{name} exited with status {process.returncode} before it was healthy")
        if probe(url):
            return
        time.sleep(0.2)
    raise ServiceError(f"{name} did not answer at {url} within {timeout:.0f} s")


def open_private_log(log: Path) -> int:
    """Create (or append to) `log` readable by its owner only, and return the open descriptor."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def spawn(
    name: str,
    argv: list[str],
    port: int,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    umask: int = -1,
) -> Service:
    """Start `argv` in its own session with output to `log`, so it outlives the caller and can be stopped by pid.

    `umask=0o077` makes every file the server writes (databases, caches) private to the user.
    """
    full_env = {**os.environ, **(env or {})}
    fd = open_private_log(log)
    try:
        process = subprocess.Popen(  # argv is built here, never from user text
            argv, stdout=fd, stderr=subprocess.STDOUT, env=full_env, cwd=cwd, start_new_session=True, umask=umask
        )
    finally:
        os.close(fd)
    return Service(name=name, process=process, port=port, log=log)


def _started_or_stop(service: Service, health_url: str, timeout: float, label: str) -> Service:
    try:
        wait_healthy(health_url, service.process, timeout, name=label)
    except ServiceError:
        service.stop()
        raise
    return service


def spawn_s3(port: int, log: Path, umask: int = -1, cwd: Path | None = None) -> Service:
    """Start moto's server mode without waiting for it."""
    argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    return spawn("s3", argv, port, log, env=LOCAL_AWS_ENV, umask=umask, cwd=cwd)


def start_s3(port: int, log: Path, timeout: float = 60.0, umask: int = -1) -> Service:
    """moto's server mode on loopback: the local stand-in for the artifact bucket."""
    service = spawn_s3(port, log, umask=umask)
    return _started_or_stop(service, s3_health_url(service.url), timeout, "s3 (moto server)")


def s3_health_url(url: str) -> str:
    return f"{url}/moto-api/"


def mlflow_argv(port: int, artifacts_destination: str) -> list[str]:
    """The `mlflow server` command line; the backend store URI travels in the environment (it may hold a password)."""
    return [
        sys.executable, "-m", "mlflow", "server",
        "--host", LOOPBACK,
        "--port", str(port),
        "--artifacts-destination", artifacts_destination,
        "--workers", "1",
    ]  # fmt: skip


def spawn_mlflow(
    port: int,
    log: Path,
    backend_store_uri: str,
    artifacts_destination: str,
    s3_endpoint_url: str,
    umask: int = -1,
    cwd: Path | None = None,
) -> Service:
    """Start `mlflow server` without waiting for it (it takes seconds to import; callers overlap other work)."""
    env = {
        **LOCAL_AWS_ENV,
        **MLFLOW_SERVER_ENV,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint_url,
        "MLFLOW_BACKEND_STORE_URI": backend_store_uri,
    }
    return spawn("mlflow", mlflow_argv(port, artifacts_destination), port, log, env=env, umask=umask, cwd=cwd)


def mlflow_health_url(url: str) -> str:
    return f"{url}/health"


def start_mlflow(
    port: int,
    log: Path,
    backend_store_uri: str,
    artifacts_destination: str,
    s3_endpoint_url: str,
    timeout: float = 120.0,
    umask: int = -1,
) -> Service:
    """`mlflow server` on loopback, artifacts proxied to an S3 prefix, so clients need no S3 credentials."""
    service = spawn_mlflow(port, log, backend_store_uri, artifacts_destination, s3_endpoint_url, umask=umask)
    return _started_or_stop(service, mlflow_health_url(service.url), timeout, "mlflow server")


def serving_argv(command: list[str] | None = None) -> list[str]:
    return [*(command or [sys.executable, "-m", "serving"]), "--host", LOOPBACK]


def spawn_serving(
    port: int,
    log: Path,
    tracking_uri: str,
    model_uri: str,
    env: Mapping[str, str] | None = None,
    umask: int = -1,
    command: list[str] | None = None,
    cwd: Path | None = None,
) -> Service:
    """Start the serving server without waiting: it answers /ping 503 and retries the registry until it loads."""
    full_env = {
        **LOCAL_AWS_ENV,
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "MLPLAT_HOST": LOOPBACK,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLPLAT_MODEL_URI": model_uri,
        **(env or {}),
    }
    return spawn("serving", serving_argv(command), port, log, env=full_env, umask=umask, cwd=cwd)


def start_serving(
    port: int,
    log: Path,
    tracking_uri: str,
    model_uri: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 180.0,
    umask: int = -1,
    command: list[str] | None = None,
    cwd: Path | None = None,
) -> Service:
    """The serving server (SageMaker hosting contract) on loopback, loading `model_uri` from the registry."""
    service = spawn_serving(port, log, tracking_uri, model_uri, env, umask=umask, command=command, cwd=cwd)
    return _started_or_stop(service, serving_health_url(service.url), timeout, "serving server")


def serving_health_url(url: str) -> str:
    return f"{url}/ping"


# --- PostgreSQL, from the machine's own binaries ---------------------------------------------------------------


def find_postgres_bin(name: str) -> Path:
    """The PostgreSQL server program `name` (initdb, postgres, psql): on PATH, else in the distribution's places."""
    found = shutil.which(name)
    if found:
        return Path(found)
    patterns = [
        f"/usr/lib/postgresql/*/bin/{name}",  # Debian, Ubuntu
        f"/usr/pgsql-*/bin/{name}",  # RHEL, Fedora
        f"/opt/homebrew/opt/postgresql*/bin/{name}",  # macOS, Homebrew
        f"/usr/local/opt/postgresql*/bin/{name}",
    ]
    candidates = sorted((Path(p) for pattern in patterns for p in glob.glob(pattern)), key=_version_key, reverse=True)
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    raise MissingDependency(f"the PostgreSQL server program {name!r} was not found; {APT_POSTGRES_HINT}")


def _version_key(path: Path) -> tuple[int, ...]:
    digits = [int(part) for part in path.parts if part.isdigit()]
    return tuple(digits) or (0,)


def check_postgres_prerequisites() -> dict[str, Path]:
    """The server programs and a Python driver for `--db postgres`, or MissingDependency naming what is missing."""
    programs = {name: find_postgres_bin(name) for name in ("initdb", "postgres", "psql")}
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        raise MissingDependency(
            "PostgreSQL refuses to run as root; run `mlplat up --local --db postgres` as a regular user, "
            "or use the default --db sqlite"
        )
    if not any(_importable(module) for module in ("psycopg2", "psycopg")):
        raise MissingDependency(
            "MLflow needs a PostgreSQL driver for --db postgres; pip install psycopg2-binary (into this venv)"
        )
    return programs


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def postgres_password(pg_home: Path) -> str:
    """The local PostgreSQL's password, kept in `pg_home/password` (created private to the user on first use)."""
    password_file = pg_home / "password"
    pg_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if password_file.exists():
        return password_file.read_text().strip()
    password = secrets.token_urlsafe(24)
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password


def postgres_uri(port: int, password: str, database: str = "mlflow", user: str = "mlplat") -> str:
    # Explicit: SQLAlchemy 2.1 defaults `postgresql://` to psycopg 3, 2.0 to psycopg2.
    driver = "postgresql+psycopg2" if _importable("psycopg2") else "postgresql+psycopg"
    return f"{driver}://{user}:{password}@{LOOPBACK}:{port}/{database}"


def start_postgres(
    port: int, data_dir: Path, log: Path, password: str, timeout: float = 60.0, umask: int = 0o077
) -> Service:
    """A PostgreSQL server on loopback with its cluster in `data_dir` (created on first use) and an `mlflow` database.

    Authentication is scram-sha-256 with `password` for the `mlplat` user, on TCP and on the private socket alike.
    """
    programs = check_postgres_prerequisites()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    socket_dir = data_dir.parent / "run"
    socket_dir.mkdir(mode=0o700, exist_ok=True)
    if not (data_dir / "PG_VERSION").exists():
        pwfile = data_dir.parent / "initdb.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(password + "\n")
        try:
            initdb = [
                str(programs["initdb"]), "-D", str(data_dir), "-U", "mlplat", "-E", "UTF8", "--no-locale",
                "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", f"--pwfile={pwfile}",
            ]  # fmt: skip
            _run_logged(initdb, log, "initdb", umask)
        finally:
            pwfile.unlink(missing_ok=True)
    argv = [
        str(programs["postgres"]), "-D", str(data_dir), "-h", LOOPBACK, "-p", str(port), "-k", str(socket_dir),
    ]  # fmt: skip
    service = spawn("postgres", argv, port, log, umask=umask)
    service = _started_or_stop(service, f"tcp://{LOOPBACK}:{port}", timeout, "postgres")
    psql = [str(programs["psql"]), "-h", LOOPBACK, "-p", str(port), "-U", "mlplat", "-d", "postgres", "-tA", "-c"]
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}
    try:
        exists = _retrying_psql([*psql, "SELECT 1 FROM pg_database WHERE datname = 'mlflow'"], env, timeout)
        if exists.strip() != "1":
            _retrying_psql([*psql, "CREATE DATABASE mlflow"], env, timeout)
    except ServiceError:
        service.stop(sig=signal.SIGINT)
        raise
    return service


def _run_logged(argv: list[str], log: Path, label: str, umask: int) -> None:
    fd = open_private_log(log)
    try:
        result = subprocess.run(argv, stdout=fd, stderr=subprocess.STDOUT, umask=umask, check=False)
    finally:
        os.close(fd)
    if result.returncode != 0:
        raise ServiceError(f"{label} exited with status {result.returncode}")


def _retrying_psql(argv: list[str], env: Mapping[str, str], timeout: float) -> str:
    # The port accepts connections a moment before the server accepts logins ("the database system is starting up").
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(argv, capture_output=True, text=True, env=dict(env), check=False)
        if result.returncode == 0:
            return result.stdout
        if time.monotonic() > deadline:
            raise ServiceError(f"psql failed: {result.stderr.strip().splitlines()[-1:]}")
        time.sleep(0.3)


# --- processes, by pid, across invocations ----------------------------------------------------------------------
