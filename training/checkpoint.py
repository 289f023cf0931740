"""Checkpoints in a local directory and, when configured, under an S3 prefix.

A checkpoint is one `torch.save` file named `ckpt-<epochs done>-<batches done in the next epoch>.pt`, so names sort
chronologically. It holds the weights, the optimiser state, the RNG states, the loop's progress, the MLflow run id
and any metrics not yet accepted by the tracking server. Files are written to a temporary name and renamed, so a
kill mid-write never leaves a torn newest checkpoint. The newest two are kept, locally and in S3.

The training thread only serialises a checkpoint to memory; a background thread writes the file and uploads it to
S3 (the newest wins when it falls behind), so training waits on neither the disk nor the network, except for an
urgent checkpoint (a termination signal), which is on disk and in S3 before the process exits. Everything but the
tensors (progress, history, unsent metrics) travels as one JSON string, which keeps serialisation cheap and lets
`torch.load(weights_only=True)` read the file.

When the job finishes, `result.json` (the final MLPLAT_RESULT) is written next to the checkpoints: a restarted
job that finds it prints the same result instead of training again.

`run.json` names the owner of the directory: the job name, the hash of its configuration and its MLflow run id. It
is written (atomically, synchronously, and uploaded) the moment the run is created, before any epoch, so a job
killed at any point after that resumes the same run. Checkpoints and `result.json` carry the same identity; a job
that finds another job's files refuses to touch them unless told to start fresh (`clear`).
"""

import io
import json
import logging
import os
import queue
import re
import threading
from pathlib import Path
from typing import Any

import orjson
import torch

from training import storage
from training.errors import InputError
from training.storage import S3Location

log = logging.getLogger(__name__)

NAME = re.compile(r"^ckpt-(\d{6})-(\d{6})\.pt$")
RESULT = "result.json"
IDENTITY = "run.json"
KEEP = 2
FORMAT = "mlplat-checkpoint/1"


def pack(meta: dict[str, Any], tensors: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint payload: tensors as they are, everything else as one JSON string (non-finite floats → null)."""
    return {"format": FORMAT, "meta": orjson.dumps(meta, option=orjson.OPT_SERIALIZE_NUMPY).decode(), **tensors}


def unpack(payload: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `pack`: one dict of the metadata and the tensors."""
    if payload.get("format") != FORMAT:
        raise ValueError(f"not an {FORMAT} checkpoint")
    tensors = {key: value for key, value in payload.items() if key not in {"format", "meta"}}
    return {**orjson.loads(payload["meta"]), **tensors}


def checkpoint_name(epochs_done: int, batches_done: int) -> str:
    return f"ckpt-{epochs_done:06d}-{batches_done:06d}.pt"


def s3_prefix(uri: str | None, job_name: str) -> S3Location | None:
    """`s3://bucket` (no path) means `s3://bucket/checkpoints/<job>/`; any other URI is used as the prefix."""
    if not uri:
        return None
    location = S3Location.parse(uri)
    if not location.key.strip("/"):
        return S3Location(location.bucket, f"checkpoints/{job_name}/")
    return S3Location(location.bucket, location.key.rstrip("/") + "/")


class CheckpointStore:
    """Save, find and load checkpoints; mirror them to S3 when a prefix is given."""

    def __init__(self, directory: Path, remote: S3Location | None) -> None:
        self.directory = directory
        self.remote = remote
        self._client: Any = None
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._idle_lock = threading.Lock()
        self._failures = 0

    # ---- setup -------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the directory and check the S3 prefix answers; raise InputError naming what is wrong."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise InputError(
                f"cannot write checkpoints to {self.directory}: {exc.strerror or exc} "
                "(set --checkpoint-dir or MLPLAT_CHECKPOINT_DIR)"
            ) from None
        if self.remote is not None:
            try:
                self.client().list_objects_v2(Bucket=self.remote.bucket, Prefix=self.remote.key, MaxKeys=1)
            except Exception as exc:
                reason = storage.describe_error(exc)
                raise InputError(f"cannot use checkpoint location {self.remote}: {reason}") from None

    def client(self) -> Any:
        if self._client is None:
            self._client = storage.s3_client()
        return self._client

    # ---- finding and loading ----------------------------------------------------------------------------------

    def _local_names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(path.name for path in self.directory.iterdir() if NAME.match(path.name))

    def _remote_names(self) -> list[str]:
        if self.remote is None:
            return []
        keys = storage.list_keys(self.client(), self.remote)
        return sorted(name for key in keys if NAME.match(name := key[len(self.remote.key) :]))

    def load_latest(self) -> tuple[str, dict[str, Any]] | None:
        """The newest readable checkpoint (local or S3) as (name, payload), or None for a fresh job."""
        local = set(self._local_names())
        candidates = sorted(local | set(self._remote_names()), reverse=True)
        for name in candidates:
            path = self.directory / name
            try:
                if name not in local:
                    assert self.remote is not None
                    storage.download(self.client(), self.remote.child(name), path)
                payload = unpack(torch.load(path, map_location="cpu", weights_only=True))
                return name, payload
            except Exception as exc:
                log.warning("checkpoint %s is unreadable (%s); trying an older one", name, exc)
        return None

    def read_result(self) -> dict[str, Any] | None:
        return self._read_json(RESULT)

    def read_identity(self) -> dict[str, Any] | None:
        """The directory's `run.json` (local, else S3), or None."""
        return self._read_json(IDENTITY)

    def _read_json(self, name: str) -> dict[str, Any] | None:
        path = self.directory / name
        if not path.exists() and self.remote is not None:
            try:
                storage.download(self.client(), self.remote.child(name), path)
            except Exception:
                return None
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return document if isinstance(document, dict) else None

    def write_identity(self, identity: dict[str, Any]) -> None:
        """Write `run.json` now: renamed into place after an fsync, and uploaded before returning."""
        path = self.directory / IDENTITY
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("wb") as handle:
            handle.write(json.dumps(identity, indent=2).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)  # the rename itself survives a crash of the machine, not only of the process
        finally:
            os.close(descriptor)
        if self.remote is not None:
            storage.upload(self.client(), path, self.remote.child(IDENTITY))

    def clear(self) -> list[str]:
        """Delete every checkpoint, `result.json` and `run.json`, locally and under the S3 prefix; returns names."""
        owned = [RESULT, IDENTITY]
        removed: list[str] = []
        for name in [*self._local_names(), *owned]:
            path = self.directory / name
            if path.exists():
                path.unlink()
                removed.append(name)
        if self.remote is not None:
            for name in sorted(set(self._remote_names()) | set(owned)):
                storage.delete(self.client(), self.remote.child(name))
        return removed

    # ---- saving ------------------------------------------------------------------------------------------------

    def save(self, payload: dict[str, Any], name: str, urgent: bool = False, timeout: float = 30.0) -> None:
        """Serialise now (a consistent snapshot), write and upload in the background; urgent: wait for both.

        Serialising to memory takes a fraction of a millisecond; creating, writing and renaming a file takes a few,
        which is why the training thread leaves that to the writer. If the writer falls behind, the newest
        checkpoint wins.
        """
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        self._enqueue((name, buffer.getvalue()))
        if urgent:
            self.wait(timeout)

    def write_result(self, result: dict[str, Any]) -> None:
        self._enqueue((RESULT, json.dumps(result, indent=2).encode("utf-8")))

    def _enqueue(self, item: tuple[str, bytes]) -> None:
        with self._idle_lock:
            self._idle.clear()
            self._queue.put(item)
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="checkpoint-writer", daemon=True)
            self._writer.start()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until queued writes and uploads are done (or `timeout`); True when nothing is left."""
        return self._idle.wait(timeout)

    def _write_loop(self) -> None:
        while True:
            items = [self._queue.get()]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            checkpoints = [item for item in items if NAME.match(item[0])]
            others = [item for item in items if not NAME.match(item[0])]
            for name, content in checkpoints[-1:] + others:
                try:
                    path = self._write(name, content)
                except OSError as exc:
                    log.error("could not write %s to %s: %s", name, self.directory, exc)
                    continue
                if self.remote is not None:
                    self._upload(path)
            with self._idle_lock:
                if self._queue.empty():
                    self._idle.set()

    def _write(self, name: str, content: bytes) -> Path:
        path = self.directory / name
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(content)
        os.replace(temporary, path)
        if NAME.match(name):
            for old in self._local_names()[:-KEEP]:
                (self.directory / old).unlink(missing_ok=True)
        return path

    def _upload(self, path: Path) -> None:
        assert self.remote is not None
        try:
            storage.upload(self.client(), path, self.remote.child(path.name))
            if NAME.match(path.name):
                for old in self._remote_names()[:-KEEP]:
                    storage.delete(self.client(), self.remote.child(old))
            if self._failures:
                log.info("checkpoint uploads to %s work again", self.remote)
            self._failures = 0
        except Exception as exc:
            self._failures += 1
            if self._failures == 1:
                log.warning("could not upload %s to %s: %s", path.name, self.remote, storage.describe_error(exc))
