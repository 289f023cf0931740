"""Server settings, read from the environment, so every worker process (spawned, not forked) sees the same values.

The command line only writes its flags into the environment before the workers start; see `serving/__init__.py`
for the full list of variables.
"""

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from serving.protocol import DEFAULT_MODEL_URI, DEFAULT_PORT, MAX_BODY_BYTES

T = TypeVar("T")

# Set by the parent process for its workers (not a user setting): where each worker marks itself ready.
WORKER_STATE_ENV = "MLPLAT_WORKER_STATE_DIR"
# prometheus_client's switch to file-backed samples shared by worker processes; the supervisor sets it.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class SettingsError(ValueError):
    """An environment variable has a value the server cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to know; see `serving/__init__.py` for the environment variable of each field."""

    model_uri: str = DEFAULT_MODEL_URI
    host: str = "0.0.0.0"  # noqa: S104 - the container's default; tests and the local platform pass 127.0.0.1
    port: int = DEFAULT_PORT
    workers: int = 1
    model_name: str | None = None
    model_version: str | None = None
    model_cache: Path | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    max_rows: int = 10_000
    max_in_flight: int = 64
    request_timeout: float = 10.0
    inference_timeout: float = 10.0
    poll_interval: float = 30.0
    torch_threads: int = 1
    inline_inference: bool = True
    micro_batch: bool = True
    micro_batch_rows: int = 1024
    micro_batch_wait_ms: float = 0.0
    graceful_timeout: float = 25.0
    keep_alive_timeout: int = 75
    log_level: str = "info"
    access_log: bool = False
    worker_state_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Settings from `env` (default: the process environment); unset variables keep their defaults."""
        env = os.environ if env is None else env
        default = cls()
        reader = _Reader(env)
        return cls(
            model_uri=reader.get("MLPLAT_MODEL_URI", str, default.model_uri),
            host=reader.get("MLPLAT_HOST", str, default.host),
            port=reader.get("SAGEMAKER_BIND_TO_PORT", _port, default.port),
            workers=reader.get("SAGEMAKER_MODEL_SERVER_WORKERS", _positive_int, available_cpus()),
            model_name=reader.get("MLPLAT_MODEL_NAME", str, None),
            model_version=reader.get("MLPLAT_MODEL_VERSION", str, None),
            model_cache=reader.get("MLPLAT_MODEL_CACHE", Path, None),
            max_body_bytes=reader.get("MLPLAT_MAX_BODY_BYTES", _positive_int, default.max_body_bytes),
            max_rows=reader.get("MLPLAT_MAX_ROWS", _positive_int, default.max_rows),
            max_in_flight=reader.get("MLPLAT_MAX_IN_FLIGHT", _positive_int, default.max_in_flight),
            request_timeout=reader.get("MLPLAT_REQUEST_TIMEOUT", _positive_float, default.request_timeout),
            inference_timeout=reader.get(
                "MLPLAT_INFERENCE_TIMEOUT",
                _positive_float,
                reader.get("SAGEMAKER_MODEL_SERVER_TIMEOUT", _positive_float, default.inference_timeout),
            ),
            poll_interval=reader.get("MLPLAT_MODEL_POLL_INTERVAL", _non_negative_float, default.poll_interval),
            torch_threads=reader.get("MLPLAT_TORCH_THREADS", _positive_int, default.torch_threads),
            inline_inference=reader.get("MLPLAT_INLINE_INFERENCE", _flag, default.inline_inference),
            micro_batch=reader.get("MLPLAT_MICRO_BATCH", _flag, default.micro_batch),
            micro_batch_rows=reader.get("MLPLAT_MICRO_BATCH_ROWS", _positive_int, default.micro_batch_rows),
            micro_batch_wait_ms=reader.get(
                "MLPLAT_MICRO_BATCH_WAIT_MS", _non_negative_float, default.micro_batch_wait_ms
            ),
            graceful_timeout=reader.get("MLPLAT_GRACEFUL_TIMEOUT", _positive_float, default.graceful_timeout),
            keep_alive_timeout=reader.get("MLPLAT_KEEP_ALIVE_TIMEOUT", _positive_int, default.keep_alive_timeout),
            log_level=reader.get("MLPLAT_LOG_LEVEL", _log_level, default.log_level),
            access_log=reader.get("MLPLAT_ACCESS_LOG", _flag, default.access_log),
            worker_state_dir=reader.get(WORKER_STATE_ENV, Path, None),
        )


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (a Kubernetes CPU limit).

    `os.cpu_count()` is the node's count; one worker per node core in a pod limited to two CPUs would load the model
    dozens of times and thrash.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota: float | None = None
    try:  # cgroup v2: "<quota> <period>" or "max <period>"
        limit, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        if limit != "max":
            quota = int(limit) / int(period)
    except (OSError, ValueError):
        try:  # cgroup v1: quota -1 means none
            limit_us = int((cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text())
            period_us = int((cgroup_root / "cpu" / "cpu.cfs_period_us").read_text())
            if limit_us > 0 and period_us > 0:
                quota = limit_us / period_us
        except (OSError, ValueError):
            pass
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as error:
            raise SettingsError(f"{name}={raw!r}: {error}") from None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port (1-65535)")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be zero or a positive number")
    return value


def _flag(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be one of 1, 0, true, false, yes, no, on, off")


def _log_level(raw: str) -> str:
    lowered = raw.lower()
    if lowered not in ("critical", "error", "warning", "info", "debug"):
        raise ValueError("must be one of critical, error, warning, info, debug")
    return lowered
