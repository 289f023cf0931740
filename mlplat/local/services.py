"""Start and wait for the local platform's server processes (S3-compatible store, MLflow tracking).

The test suite starts its session servers through these same functions, so what the tests exercise is what
`mlplat up --local` runs.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"
# moto's server mode accepts any credentials; these make boto3 and mlflow sign requests without a real account.
LOCAL_AWS_ENV: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "mlplat-local",
    "AWS_SECRET_ACCESS_KEY": "mlplat-local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class ServiceError(RuntimeError):
    """A local service did not start or did not become healthy; the message names it and its log."""


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

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate the process (and wait), killing it if it does not exit in time."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing is bound to `port` on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def wait_healthy(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60.0, name: str = "service"
) -> None:
    """Poll `url` until it answers 200; fail early when `process` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceError(f"{name} exited with status {process.returncode} before it was healthy")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ServiceError(f"{name} did not answer 200 at {url} within {timeout:.0f} s")


def spawn(
    name: str, argv: list[str], port: int, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Service:
    """Start `argv` in its own session with output to `log`, so it outlives the caller and can be stopped by pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - argv is built by this module, never from user text
            argv, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=cwd, start_new_session=True
        )
    return Service(name=name, process=process, port=port, log=log)


def start_s3(port: int, log: Path, timeout: float = 60.0) -> Service:
    """moto's server mode on loopback: the local stand-in for the artifact bucket."""
    argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    service = spawn("s3", argv, port, log, env=LOCAL_AWS_ENV)
    try:
        wait_healthy(f"{service.url}/moto-api/", service.process, timeout, name="s3 (moto server)")
    except ServiceError:
        service.stop()
        raise
    return service


def start_mlflow(
    port: int,
    log: Path,
    backend_store_uri: str,
    artifacts_destination: str,
    s3_endpoint_url: str,
    timeout: float = 120.0,
) -> Service:
    """`mlflow server` on loopback, artifacts proxied to an S3 prefix, so clients need no S3 credentials."""
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--host", LOOPBACK,
        "--port", str(port),
        "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", artifacts_destination,
        "--workers", "1",
    ]  # fmt: skip
    env = {**LOCAL_AWS_ENV, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint_url}
    service = spawn("mlflow", argv, port, log, env=env)
    try:
        wait_healthy(f"{service.url}/health", service.process, timeout, name="mlflow server")
    except ServiceError:
        service.stop()
        raise
    return service
