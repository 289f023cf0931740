"""MLflow tracking that survives an outage of the tracking server.

- Metrics go into a buffer that a background thread sends as one `log-batch` request every 2 s, or as soon as 500
  wait (up to 1000 per request): never one HTTP request per step, and never on the training thread.
- When the server stops answering, the buffer keeps growing and the thread retries with backoff; when the server
  returns, everything is sent with its original step and timestamp. Checkpoints carry the unsent metrics, so a
  restarted job sends them too. A SQL-backed tracking server ignores an exact duplicate (same key, step, timestamp
  and value), so sending a batch twice is harmless.
- Blocking calls (create the run, log the model, register) retry transient failures for `tracking_timeout`
  seconds, then raise `TrackingUnavailable`.
- Whatever could not be sent by the end is written as JSON lines to a file that the final message names;
  `python -m training.replay <file>` sends it later.
"""

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from training.errors import Interrupted, TrackingUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 1000
# Send early once this many metrics wait: the buffer travels in every checkpoint, so it should stay short.
SEND_AT = 500
# Error codes of an MLflow server that is down, overloaded or restarting; anything else is the request's fault.
TRANSIENT_CODES = frozenset(
    {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED", "ABORTED"}
)
# Defaults for the job's environment (a user's own setting wins). mlflow's HTTP retries would block a call for
# minutes, and this module retries instead; a training container has no business sending usage telemetry.
MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def is_transient(exc: BaseException) -> bool:
    """True for failures that waiting can cure: connection errors, timeouts, 5xx."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        return exc.error_code in TRANSIENT_CODES
    return isinstance(exc, requests.exceptions.RequestException | ConnectionError | TimeoutError)


def short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def retrying(call: Callable[[], T], what: str, timeout: float, stop_signal: Callable[[], int] | None = None) -> T:
    """`call()`, retried on transient failures with backoff for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 1.0
    warned = False
    while True:
        try:
            result = call()
            if warned:
                log.info("tracking server answers again (%s)", what)
            return result
        except Exception as exc:
            if not is_transient(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise TrackingUnavailable(f"{what} failed for {timeout:.0f} s: {short(exc)}") from exc
            if not warned:
                log.warning("tracking server is not answering (%s); retrying for up to %.0f s", what, timeout)
                warned = True
        if stop_signal is not None and stop_signal():
            raise Interrupted(stop_signal())
        time.sleep(delay)
        delay = min(delay * 2, 10.0)


# A buffered metric: (key, value, timestamp in ms, step). Plain tuples keep a checkpoint's copy of the buffer cheap.
Record = tuple[str, float, int, int]


class MetricSink(Protocol):
    """Where per-epoch metrics go."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def pending(self) -> list[Record]: ...

    def restore(self, records: Iterable[Sequence[Any]]) -> None: ...

    def flush(self, timeout: float) -> bool: ...

    def close(self, timeout: float) -> bool: ...


class NullSink:
    """Drops metrics: for ranks other than 0, and for the benchmark's untracked baseline."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        return None

    def pending(self) -> list[Record]:
        return []

    def restore(self, records: Iterable[Sequence[Any]]) -> None:
        return None

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> bool:
        return True


LOG_BATCH = "/api/2.0/mlflow/runs/log-batch"
NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def batch_sender(client: Any) -> Callable[[str, list[Record]], None]:
    """How a batch of metrics reaches the server.

    Against a REST tracking server (an http(s) URL or a SageMaker ARN) the request body is built with orjson and
    sent through mlflow's own `http_request`, so authentication plugins (the SageMaker request signer) still apply;
    building it through `Metric` objects and protobuf costs about five times as much CPU on the training machine.
    Any other store (a local file or database URI) goes through `log_batch`.
    """
    import orjson
    from mlflow.entities import Metric

    try:
        from mlflow.store.tracking.rest_store import RestStore
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        store = client._tracking_client.store
        rest = isinstance(store, RestStore)
    except (ImportError, AttributeError):
        rest = False

    if not rest:

        def via_client(run_id: str, records: list[Record]) -> None:
            client.log_batch(run_id, metrics=[Metric(*record) for record in records])

        return via_client

    def via_rest(run_id: str, records: list[Record]) -> None:
        metrics = [
            {
                "key": key,
                # Protobuf's JSON spelling for non-finite doubles, as mlflow's own client sends them.
                "value": value if math.isfinite(value) else NON_FINITE.get(value, "NaN"),
                "timestamp": timestamp,
                "step": step,
            }
            for key, value, timestamp, step in records
        ]
        body = orjson.dumps({"run_id": run_id, "metrics": metrics})
        response = http_request(
            store.get_host_creds(), LOG_BATCH, "POST", data=body, extra_headers={"Content-Type": "application/json"}
        )
        verify_rest_response(response, LOG_BATCH)

    return via_rest


class AsyncMetricSink:
    """Buffers metrics and sends them from a background thread; see the module docstring.

    Each request costs the client a few milliseconds whatever its size, and the server a fraction of a millisecond
    per metric: every 2 s keeps the client's share negligible, and the job's final steps (export, model logging)
    take longer than that, so by the time the run ends the buffer is empty.
    """

    def __init__(self, client: Any, run_id: str, interval: float = 2.0, max_backoff: float = 30.0) -> None:
        self.client = client
        self.run_id = run_id
        self.interval = interval
        self.max_backoff = max_backoff
        self._pending: list[Record] = []
        self._rejected: list[Record] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._down_since: float | None = None
        self.sent = 0
        self._send = batch_sender(client)
        self._thread = threading.Thread(target=self._loop, name="mlflow-metrics", daemon=True)
        self._thread.start()

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        timestamp = int(time.time() * 1000)
        records = [(key, float(value), timestamp, int(step)) for key, value in metrics.items()]
        with self._lock:
            self._pending.extend(records)
            waiting = len(self._pending)
        if waiting >= SEND_AT and self._down_since is None:
            self._wake.set()

    def pending(self) -> list[Record]:
        with self._lock:
            return self._pending + self._rejected

    def restore(self, records: Iterable[Sequence[Any]]) -> None:
        restored = [
            (str(key), math.nan if value is None else float(value), int(timestamp), int(step))
            for key, value, timestamp, step in records
        ]
        with self._lock:
            self._pending[:0] = restored

    @property
    def outage(self) -> bool:
        return self._down_since is not None

    def _send_once(self, wait: float = -1) -> bool | None:
        """Send the oldest batch. True: sent; None: nothing to send; False: the server did not answer.

        `wait` bounds how long to wait for a send already in progress on the other thread (-1: no bound).
        """
        if not self._send_lock.acquire(timeout=wait):
            return False
        try:
            with self._lock:
                batch = self._pending[:MAX_BATCH]
            if not batch:
                return None
            try:
                self._send(self.run_id, batch)
            except Exception as exc:
                if not is_transient(exc):
                    log.error("tracking server rejected %d metrics (%s); they go to the unsent file", len(batch), exc)
                    with self._lock:
                        del self._pending[: len(batch)]
                        self._rejected.extend(batch)
                    return True
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning(
                        "tracking server is not answering; training continues and metrics are kept (%s)", short(exc)
                    )
                return False
            with self._lock:
                del self._pending[: len(batch)]
            self.sent += len(batch)
            if self._down_since is not None:
                log.info(
                    "tracking server answers again after %.0f s; sending the kept metrics",
                    time.monotonic() - self._down_since,
                )
                self._down_since = None
            return True
        finally:
            self._send_lock.release()

    def _drain(self, wait: float = -1) -> bool:
        while True:
            outcome = self._send_once(wait)
            if outcome is None:
                return True
            if outcome is False:
                return False

    def _waiting(self) -> int:
        with self._lock:
            return len(self._pending)

    def _loop(self) -> None:
        """Every interval (or when SEND_AT metrics wait), send one batch; more only while a backlog remains.

        Chasing the buffer until it is empty would turn into a stream of tiny requests while training keeps adding
        to it, and each request costs the same few milliseconds whatever its size.
        """
        delay = self.interval
        while not self._closed:
            self._wake.wait(delay)
            self._wake.clear()
            if self._closed:
                break
            outcome = self._send_once()
            while outcome is True and self._waiting() >= SEND_AT:
                outcome = self._send_once()
            if self._waiting() < SEND_AT:
                self._wake.clear()  # set by metrics logged while the request was in flight
            delay = self.interval if outcome is not False else min(self.max_backoff, max(delay, 1.0) * 2)

    def flush(self, timeout: float) -> bool:
        """Send everything, retrying for up to `timeout` seconds; True when nothing is left."""
        deadline = time.monotonic() + timeout
        delay = 0.5
        while True:
            if self._drain(wait=max(0.0, deadline - time.monotonic())):
                with self._lock:
                    return not self._rejected
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)

    def close(self, timeout: float) -> bool:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=min(5.0, timeout))
        return self.flush(timeout)


def write_unsent(run_id: str, records: Iterable[Record], path: Path) -> Path:
    """Keep metrics the server never accepted, one JSON object per line, for `python -m training.replay`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        for key, value, timestamp, step in records:
            line = {"run_id": run_id, "key": key, "value": value, "timestamp": timestamp, "step": step}
            out.write(json.dumps(line) + "\n")
    return path
