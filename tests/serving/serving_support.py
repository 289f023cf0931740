"""Helpers of the serving tests: start `python -m serving` as a process, talk to it over HTTP or raw sockets."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlplat.local import services

LOOPBACK = services.LOOPBACK
JSON = "application/json"
CSV = "text/csv"
REPO = Path(__file__).resolve().parents[2]
SESSION_REQUEST_TIMEOUT = 2
SESSION_MAX_ROWS = 2000
SLOW_MAX_IN_FLIGHT = 2
SLOW_INFERENCE_TIMEOUT = 2


@dataclass
class ServingServer:
    """One `python -m serving` process."""

    service: services.Service

    @property
    def url(self) -> str:
        return self.service.url

    @property
    def port(self) -> int:
        return self.service.port

    def invoke(
        self, body: bytes | str, content_type: str = JSON, accept: str | None = None, timeout: float = 30.0
    ) -> httpx.Response:
        headers = {"content-type": content_type}
        if accept is not None:
            headers["accept"] = accept
        return httpx.post(f"{self.url}/invocations", content=body, headers=headers, timeout=timeout)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of `/metrics`, keyed by (sample name, sorted labels)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def log_text(self) -> str:
        return self.service.log.read_text(errors="replace")


def start_serving(
    name: str,
    model_uri: str,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    wait: bool = True,
) -> ServingServer:
    """`python -m serving` on a free loopback port; waits for `/ping` to answer 200 unless `wait` is False."""
    port = services.free_port()
    argv = [
        sys.executable, "-m", "serving",
        "--model-uri", model_uri,
        "--host", LOOPBACK,
        "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip
    base = {"MLPLAT_LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1"}
    service = services.spawn(name, argv, port, log_dir / f"{name}.log", env={**base, **(env or {})})
    server = ServingServer(service)
    if wait:
        wait_ready(server)
    return server


def wait_ready(server: ServingServer, timeout: float = 180.0) -> ServingServer:
    """Wait for `/ping` to answer 200 (every worker has its model); stop the server if it never does."""
    try:
        services.wait_healthy(f"{server.url}/ping", server.service.process, timeout=timeout, name=server.service.name)
    except services.ServiceError:
        server.service.stop()
        raise
    return server


@dataclass
class TrainingRun:
    """`python -m training` running in the background; `wait()` gives its model directory."""

    process: subprocess.Popen[bytes]
    model_dir: Path
    log: Path

    def wait(self, timeout: float = 300.0) -> Path:
        code = self.process.wait(timeout=timeout)
        assert code == 0, self.log.read_text(errors="replace")[-3000:]
        return self.model_dir

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def start_training(work: Path, epochs: int = 2) -> TrainingRun:
    """One short run of the training container's entrypoint on abalone, tracked in a throwaway SQLite store."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLPLAT_", "SM_", "MLFLOW_")) and key not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")
    }
    env.update(services.LOCAL_AWS_ENV)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    argv = [
        sys.executable, "-m", "training",
        "--data", str(REPO / "training" / "data" / "abalone.csv"),
        "--model-dir", str(work / "model"),
        "--output-data-dir", str(work / "output"),
        "--checkpoint-dir", str(work / "checkpoints"),
        "--epochs", str(epochs),
    ]  # fmt: skip
    log = work / "training.log"
    with log.open("wb") as out:
        # In its own directory: a SQLite store puts artifacts under ./mlruns of the working directory.
        process = subprocess.Popen(argv, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)
    return TrainingRun(process, work / "model", log)


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def raw_exchange(port: int, data: bytes, timeout: float = 15.0) -> tuple[bytes, bool]:
    """Send raw bytes on a fresh connection and read until the server closes it (or `timeout`).

    Returns what came back, and whether the server closed the connection.
    """
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return received, False
            if not chunk:
                return received, True
            received += chunk
        return received, False


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and body of one raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


class KeepAliveClient:
    """A minimal HTTP/1.1 client on one keep-alive connection, cheap enough to drive a server hard from a test."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.buffer = b""

    def post(self, body: bytes, content_type: str = JSON) -> tuple[int, bytes]:
        head = (
            f"POST /invocations HTTP/1.1\r\nHost: {LOOPBACK}:{self.port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head_bytes, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head_bytes.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(int(line.split(b":", 1)[1]) for line in lines[1:] if line.lower().startswith(b"content-length:"))
        while len(self.buffer) < length:
            self._fill()
        content, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, content

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()
