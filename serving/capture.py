"""Data capture for the serving server: sampled invocations as JSON Lines in SageMaker's data-capture layout.

`CaptureWriter.offer()` (raw bodies) or `observe()` (the app's `PredictionListener` hook: the decoded table and the
predictions) is called after a successful response. It samples, puts the raw bytes on a bounded queue and
returns: it never blocks, never raises, and when the queue is full the record is dropped and counted. One background
thread turns queued invocations into records and writes a file per hour per batch, to a directory or to S3 (boto3,
`AWS_ENDPOINT_URL` honoured), under `<destination>/<endpoint>/YYYY/MM/DD/HH/<time>-<pid>-<id>.jsonl`:

    {"captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                       "data": "{...}", "encoding": "JSON"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "{\\"predictions\\": [...]}", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2025-01-01T10:00:00.123Z",
                       "modelName": "abalone", "modelVersion": "3"},
     "eventVersion": "0"}

A destination that already ends in the endpoint's name (`s3://bucket/data-capture/<endpoint>/`) is used as is. On a
SageMaker endpoint the platform's own data capture writes these files instead. Configured from the environment
(`from_env`): MLPLAT_CAPTURE_DESTINATION (unset: no capture), MLPLAT_CAPTURE_PERCENT (default 100),
MLPLAT_ENDPOINT_NAME, MLPLAT_CAPTURE_FLUSH_SECONDS (5), MLPLAT_CAPTURE_MAX_QUEUE (10000),
MLPLAT_CAPTURE_KMS_KEY_ID (SSE-KMS key for S3 objects).

This module stands alone (standard library, boto3 only when the destination is S3), like the rest of `serving`.
"""

import atexit
import json
import logging
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts import capture as rec

log = logging.getLogger("serving.capture")

DESTINATION_ENV = "MLPLAT_CAPTURE_DESTINATION"
PERCENT_ENV = "MLPLAT_CAPTURE_PERCENT"
ENDPOINT_ENV = "MLPLAT_ENDPOINT_NAME"
FLUSH_ENV = "MLPLAT_CAPTURE_FLUSH_SECONDS"
QUEUE_ENV = "MLPLAT_CAPTURE_MAX_QUEUE"
KMS_ENV = "MLPLAT_CAPTURE_KMS_KEY_ID"
DEFAULT_ENDPOINT = "local"
_POLL_SECONDS = 0.1
_UPLOAD_ATTEMPTS = 3


@dataclass(frozen=True)
class CaptureStats:
    """Counters since the writer started: every offer ends up sampled out, dropped, written or failed."""

    offered: int
    sampled: int
    dropped: int
    written: int
    failed: int
    files: int


@dataclass(frozen=True)
class _Observed:
    """A scored request as the server's listener hook hands it over; turned into bytes off the event loop."""

    time: float
    names: tuple[str, ...] | None
    columns: tuple[Any, ...]
    predictions: Any
    model_name: str | None
    model_version: str | None


def _plain(value: Any) -> Any:
    """numpy arrays and scalars as JSON-ready Python values, by duck typing (no numpy import here)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _from_observed(item: _Observed) -> "_Invocation":
    rows = [list(row) for row in zip(*item.columns, strict=True)]
    if item.names is not None:
        request: dict[str, Any] = {"dataframe_split": {"columns": list(item.names), "data": rows}}
    else:
        request = {"inputs": rows}
    return _Invocation(
        time=item.time,
        request=json.dumps(request, default=_plain).encode(),
        request_type="application/json",
        response=json.dumps({"predictions": item.predictions}, default=_plain).encode(),
        response_type="application/json",
        model_name=item.model_name,
        model_version=item.model_version,
    )


@dataclass(frozen=True)
class _Invocation:
    time: float
    request: bytes
    request_type: str
    response: bytes
    response_type: str
    model_name: str | None
    model_version: str | None


def _side(body: bytes, content_type: str, mode: str) -> dict[str, str]:
    kind = content_type.split(";", 1)[0].strip().lower()
    encoding = "CSV" if kind == "text/csv" else "JSON" if kind.endswith("json") else None
    if encoding is not None:
        try:
            return {rec.CONTENT_TYPE: content_type, rec.MODE: mode, rec.DATA: body.decode(), rec.ENCODING: encoding}
        except UnicodeDecodeError:
            pass
    import base64

    data = base64.b64encode(body).decode("ascii")
    return {rec.CONTENT_TYPE: content_type, rec.MODE: mode, rec.DATA: data, rec.ENCODING: rec.ENCODING_BASE64}


def capture_record(item: _Invocation) -> dict[str, Any]:
    """One invocation as a SageMaker data-capture record (mlplat's model name and version in eventMetadata)."""
    stamp = datetime.fromtimestamp(item.time, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    meta: dict[str, Any] = {rec.EVENT_ID: str(uuid.uuid4()), rec.INFERENCE_TIME: stamp}
    if item.model_name:
        meta[rec.MODEL_NAME] = item.model_name
    if item.model_version:
        meta[rec.MODEL_VERSION] = item.model_version
    return {
        rec.CAPTURE_DATA: {
            rec.ENDPOINT_INPUT: _side(item.request, item.request_type, rec.MODE_INPUT),
            rec.ENDPOINT_OUTPUT: _side(item.response, item.response_type, rec.MODE_OUTPUT),
        },
        rec.EVENT_METADATA: meta,
        rec.EVENT_VERSION: rec.RECORD_VERSION,
    }


class CaptureWriter:
    """Sampled, non-blocking capture of invocations to JSON Lines files in the SageMaker layout."""

    def __init__(
        self,
        destination: str,
        endpoint_name: str,
        sample_percent: float = 100.0,
        flush_interval: float = 5.0,
        max_queue: int = 10_000,
        *,
        model_name: str | None = None,
        batch_size: int = 1000,
        kms_key_id: str | None = None,
        s3_client: Any = None,
        random_source: Callable[[], float] = random.random,
    ) -> None:
        if not 0 <= sample_percent <= 100:
            raise ValueError(f"sample_percent must be between 0 and 100 (got {sample_percent})")
        if flush_interval <= 0 or max_queue < 1 or batch_size < 1:
            raise ValueError("flush_interval must be > 0, max_queue and batch_size >= 1")
        self.endpoint_name = endpoint_name
        self.sample_percent = float(sample_percent)
        self.flush_interval = float(flush_interval)
        self.batch_size = batch_size
        self.model_name = model_name
        self.kms_key_id = kms_key_id
        self._prefix = self._endpoint_prefix(destination.rstrip("/"), endpoint_name)
        self._s3 = s3_client
        self._random = random_source
        self._queue: queue.Queue[_Invocation | _Observed] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._offered = self._sampled = self._dropped = self._written = self._failed = self._files = 0
        self._flush_now = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture-{endpoint_name}", daemon=True)
        self._thread.start()

    @staticmethod
    def _endpoint_prefix(destination: str, endpoint: str) -> str:
        if destination.rsplit("/", 1)[-1] == endpoint:
            return destination
        return f"{destination}/{endpoint}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, model_name: str | None = None) -> "CaptureWriter | None":
        """A writer configured by MLPLAT_CAPTURE_* variables, or None when no destination (or 0 %) is set.

        The writer is closed (what is queued is written) when the process exits normally.
        """
        env = os.environ if env is None else env
        destination = env.get(DESTINATION_ENV, "").strip()
        percent = float(env.get(PERCENT_ENV, "").strip() or 100)
        if not destination or percent <= 0:
            return None
        writer = cls(
            destination,
            env.get(ENDPOINT_ENV, "").strip() or DEFAULT_ENDPOINT,
            percent,
            float(env.get(FLUSH_ENV, "").strip() or 5),
            int(env.get(QUEUE_ENV, "").strip() or 10_000),
            model_name=model_name,
            kms_key_id=env.get(KMS_ENV, "").strip() or None,
        )
        atexit.register(writer.close, 10.0)
        return writer

    @property
    def stats(self) -> CaptureStats:
        with self._lock:
            return CaptureStats(self._offered, self._sampled, self._dropped, self._written, self._failed, self._files)

    def offer(
        self,
        request_body: bytes,
        content_type: str | None,
        response_body: bytes,
        model_version: str | None,
        *,
        response_content_type: str = "application/json",
        model_name: str | None = None,
    ) -> bool:
        """Queue one invocation if it is sampled; True when queued. Never blocks, never raises."""
        try:
            if not self._sample():
                return False
            item = _Invocation(
                time=time.time(),
                request=bytes(request_body),
                request_type=content_type or "application/octet-stream",
                response=bytes(response_body),
                response_type=response_content_type,
                model_name=model_name or self.model_name,
                model_version=model_version,
            )
            return self._enqueue(item)
        except Exception:  # capture must never fail a request
            log.debug("capture offer failed", exc_info=True)
            return False

    def observe(self, info: Any, table: Any, predictions: Any) -> None:
        """The serving app's listener hook (`serving.runtime.PredictionListener`): a scored request's decoded table
        and predictions, captured like `offer` (as a JSON `dataframe_split` body); serialised off the event loop."""
        try:
            if not self._sample():
                return
            item = _Observed(
                time=time.time(),
                names=tuple(table.names) if table.names is not None else None,
                columns=tuple(table.columns),
                predictions=predictions,
                model_name=getattr(info, "name", None) or self.model_name,
                model_version=getattr(info, "version", None),
            )
            self._enqueue(item)
        except Exception:  # capture must never fail a request
            log.debug("capture observe failed", exc_info=True)

    def _sample(self) -> bool:
        with self._lock:
            self._offered += 1
        return not self._stopping.is_set() and self._random() * 100 < self.sample_percent

    def _enqueue(self, item: "_Invocation | _Observed") -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self._sampled += 1
                self._dropped += 1
            return False
        with self._lock:
            self._sampled += 1
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued so far; True when it was written (or failed for good) within `timeout`."""
        deadline = time.monotonic() + timeout
        self._flush_now.set()
        with self._done:
            while self._written + self._failed + self._dropped < self._sampled:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._done.wait(min(remaining, _POLL_SECONDS))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking offers, write what is queued, and stop the thread."""
        self._stopping.set()
        self._flush_now.set()
        self._thread.join(timeout)

    # --- the background thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._collect()
            if batch:
                self._write(batch)
            elif self._stopping.is_set() and self._queue.empty():
                return

    def _collect(self) -> list[_Invocation | _Observed]:
        batch: list[_Invocation | _Observed] = []
        deadline = time.monotonic() + self.flush_interval
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            if self._flush_now.is_set() or self._stopping.is_set():
                self._flush_now.clear()
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=min(remaining, _POLL_SECONDS)))
            except queue.Empty:
                continue
        return batch

    def _write(self, batch: list[_Invocation | _Observed]) -> None:
        by_hour: dict[str, list[str]] = {}
        for item in batch:
            try:
                invocation = _from_observed(item) if isinstance(item, _Observed) else item
                line = json.dumps(capture_record(invocation), separators=(",", ":"))
            except Exception:
                log.warning("capture record could not be serialised; dropped", exc_info=True)
                self._count(failed=1)
                continue
            hour = datetime.fromtimestamp(item.time, UTC).strftime("%Y/%m/%d/%H")
            by_hour.setdefault(hour, []).append(line)
        for hour, lines in by_hour.items():
            name = f"{int(time.time() * 1000)}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            body = ("\n".join(lines) + "\n").encode()
            if self._store(f"{self._prefix}/{hour}/{name}", body):
                self._count(written=len(lines), files=1)
            else:
                self._count(failed=len(lines))

    def _count(self, written: int = 0, failed: int = 0, files: int = 0) -> None:
        with self._done:
            self._written += written
            self._failed += failed
            self._files += files
            self._done.notify_all()

    def _store(self, location: str, body: bytes) -> bool:
        for attempt in range(1, _UPLOAD_ATTEMPTS + 1):
            try:
                if location.startswith("s3://"):
                    self._put_s3(location, body)
                else:
                    path = Path(location.removeprefix("file://"))
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".jsonl.tmp")
                    tmp.write_bytes(body)
                    tmp.replace(path)  # readers never see half a file
                return True
            except Exception as error:
                log.warning("capture write to %s failed (attempt %d): %s", location, attempt, error)
                if attempt < _UPLOAD_ATTEMPTS and not self._stopping.is_set():
                    time.sleep(0.2 * attempt)
        return False

    def _put_s3(self, location: str, body: bytes) -> None:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.session.Session().client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        bucket, _, key = location.removeprefix("s3://").partition("/")
        extra: dict[str, str] = {}
        if self.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/jsonl", **extra)
