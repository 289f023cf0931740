"""The model a worker serves, how it is loaded and swapped, and how inference runs off the event loop.

Loading and polling run in daemon threads; the serving model is one attribute that is replaced in a single
assignment, so a request that has taken a model keeps it to the end while the next request gets the new one.
"""

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from serving import metrics
from serving.codec import Table
from serving.config import Settings
from serving.model import Model, ModelInfo, timed_warm
from serving.source import ModelSource, load, load_version, resolve_version

log = logging.getLogger("serving.runtime")

_RETRY_MIN_S = 0.5
_RETRY_MAX_S = 30.0


class PredictionListener(Protocol):
    """Sees every scored request after its response is decided (e.g. sampled data capture).

    It is called on the event loop, so it must only hand the data to its own background writer and return.
    """

    def observe(self, info: ModelInfo, table: Table, predictions: Any) -> None: ...


class Readiness:
    """Whether every worker has its model, so `/ping` says 200 only when no request can meet a loading worker.

    With several workers, each one marks itself in a directory the parent created; a mark counts while its process
    lives (a worker that died and was replaced must load again). One worker needs no directory.
    """

    def __init__(self, directory: Path | None, workers: int) -> None:
        self.directory = directory
        self.workers = workers

    def mark_ready(self) -> None:
        if self.directory is not None:
            (self.directory / str(os.getpid())).touch()

    def mark_gone(self) -> None:
        if self.directory is not None:
            (self.directory / str(os.getpid())).unlink(missing_ok=True)

    def all_ready(self) -> bool:
        if self.directory is None:
            return True
        alive = 0
        for entry in os.scandir(self.directory):
            try:
                os.kill(int(entry.name), 0)  # signal 0: only asks whether the process exists
            except (ValueError, ProcessLookupError):
                continue
            except PermissionError:
                pass
            alive += 1
        return alive >= self.workers


class ModelHolder:
    """The serving model of this worker, its initial load (retried until it works) and the registry poller."""

    def __init__(self, settings: Settings, source: ModelSource, readiness: Readiness | None = None) -> None:
        self.settings = settings
        self.source = source
        self.readiness = readiness or Readiness(None, 1)
        self.model: Model | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._download: Path | None = None
        # The largest batch the model will see: one request's rows, or a stack of small requests.
        self._max_batch = max(settings.max_rows, settings.micro_batch_rows)

    @property
    def ready(self) -> bool:
        return self.model is not None

    def start(self) -> None:
        """Load (and later poll) in a daemon thread, so `/ping` answers 503 meanwhile instead of nothing."""
        self._thread = threading.Thread(target=self._run, name="model-loader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.readiness.mark_gone()

    def _run(self) -> None:
        delay = _RETRY_MIN_S
        while not self._stop.is_set():
            try:
                model, download = load(
                    self.source,
                    self._max_batch,
                    self.settings.model_cache,
                    self.settings.model_name,
                    self.settings.model_version,
                )
                self._install(model, download)
                self.readiness.mark_ready()
                break
            except Exception as error:
                self._failed("load", error)
                # Registry or artifact store not reachable yet, or no version behind the alias yet: retry, slower.
                self._stop.wait(delay)
                delay = min(delay * 2, _RETRY_MAX_S, max(self.settings.poll_interval, _RETRY_MIN_S))
        if self.source.follows_alias and self.settings.poll_interval > 0:
            while not self._stop.wait(self.settings.poll_interval):
                self.poll_once()

    def poll_once(self) -> bool:
        """Swap in the alias's version if it moved; True when a swap happened."""
        current = self.model
        try:
            version, _ = resolve_version(self.source)
            if current is not None and current.info.version == version:
                return False
            log.info("alias %s moved to version %s; loading it", self.source.uri, version)
            model, download = load_version(self.source, version, self._max_batch, self.settings.model_cache)
            self._install(model, download)
            metrics.SWAPS.inc()
            return True
        except Exception as error:
            self._failed("swap", error)
            return False

    def _install(self, model: Model, download: Path | None) -> None:
        try:
            seconds = timed_warm(model)
        except Exception:
            _remove(download)
            raise
        old, old_download = self.model, self._download
        self.model = model  # the swap: one reference assignment, atomic for every reader
        self._download = download
        self.last_error = None
        # Requests still holding the old model run from memory: its files were read when it loaded.
        _remove(old_download)
        # torch and the model leave a few hundred thousand long-lived objects; a full collection over them pauses
        # the worker for ~100 ms. Freezing them takes them out of every later collection.
        gc.freeze()
        metrics.show_model(model.info, old.info if old is not None else None)
        info = model.info
        # A model directory has no registry version: say where it came from instead of "version None".
        which = f"version {info.version}" if info.version is not None else f"from {info.source}"
        log.info("serving %s %s (%s), warmed in %.3f s", info.name, which, info.flavor, seconds)

    def _failed(self, what: str, error: Exception) -> None:
        metrics.LOAD_FAILURES.inc()
        self.last_error = f"{type(error).__name__}: {error}"[:500]
        log.warning("model %s from %s failed: %s", what, self.source.uri, self.last_error)


def _remove(download: Path | None) -> None:
    """Delete a registry download the server no longer serves (never a directory it was given)."""
    if download is not None:
        shutil.rmtree(download, ignore_errors=True)


@dataclass
class _Pending:
    model: Model
    features: np.ndarray
    future: "asyncio.Future[Any]"
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = int(self.features.shape[0])


class Inference:
    """Where `model.predict` runs, and how concurrent fast-path requests are stacked into one forward pass.

    The fast path's work is bounded (at most `max_rows` rows through a small exported network, well under a
    millisecond for one row), so by default it runs on the event loop: a hop to a thread would cost more than the
    forward pass, and two threads contending for the GIL add latency in multiples of the switch interval. Requests
    whose bodies were parsed in the same loop iteration go through the network as one batch, so batching adds no
    timer unless `micro_batch_wait_ms` asks for one. The generic pyfunc path runs arbitrary model code, so it runs on
    the inference thread under the inference timeout (and so does the fast path with MLPLAT_INLINE_INFERENCE=0).
    Generic requests that arrive while the thread is busy are handed to the model together when it is free
    (`predict_many`), which may score them as one frame; that too adds no timer.

    A matrix product's last float32 bit depends on the batch's size, so a row's prediction may differ by an ulp with
    the company it was batched with; MLPLAT_MICRO_BATCH=0 gives bit-identical answers at some cost in throughput.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # OpenMP thread counts are per calling thread: the inference thread must set its own.
        self.executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="inference",
            initializer=configure_torch,
            initargs=(settings.torch_threads,),
        )
        self._queue: list[_Pending] = []
        self._flush_scheduled = False
        # Generic requests waiting for the inference thread, and whether a drain of them is running there.
        self._gathered: list[tuple[Any, Any, asyncio.Future[Any], asyncio.AbstractEventLoop]] = []
        self._draining = False
        self._lock = threading.Lock()

    async def predict(self, model: Model, features: Any) -> Any:
        """The model's predictions for `features`; `TimeoutError` when off-loop inference passes the timeout."""
        loop = asyncio.get_running_loop()
        if model.batchable and self.settings.inline_inference:
            if not self.settings.micro_batch:
                return model.predict(features)
            future: asyncio.Future[Any] = loop.create_future()
            self._queue.append(_Pending(model, features, future))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                wait = self.settings.micro_batch_wait_ms / 1000
                if wait > 0:
                    loop.call_later(wait, self._flush)
                else:
                    loop.call_soon(self._flush)
            return await future
        if hasattr(model, "predict_many"):
            return await asyncio.wait_for(self._gather(model, features, loop), self.settings.inference_timeout)
        return await asyncio.wait_for(
            loop.run_in_executor(self.executor, model.predict, features), self.settings.inference_timeout
        )

    def _gather(self, model: Any, features: Any, loop: asyncio.AbstractEventLoop) -> "asyncio.Future[Any]":
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._gathered.append((model, features, future, loop))
            start = not self._draining
            self._draining = True
        if start:
            self.executor.submit(self._drain)
        return future

    def _drain(self) -> None:
        """On the inference thread: score what has gathered, again and again, until nothing waits."""
        while True:
            with self._lock:
                waiting = [item for item in self._gathered if not item[2].done()]
                self._gathered = []
                if not waiting:
                    self._draining = False
                    return
            while waiting:
                model = waiting[0][0]
                same = [item for item in waiting if item[0] is model]
                waiting = [item for item in waiting if item[0] is not model]
                try:
                    outcomes = list(model.predict_many([item[1] for item in same], self.settings.micro_batch))
                    if len(outcomes) != len(same):
                        raise RuntimeError(f"predict_many answered {len(outcomes)} of {len(same)} requests")
                except Exception as error:  # predict_many answers per request; this is a defect, seen as a 500
                    log.exception("scoring gathered requests failed")
                    outcomes = [error] * len(same)
                for (_, _, future, loop), outcome in zip(same, outcomes, strict=True):
                    with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits for the answer
                        loop.call_soon_threadsafe(_settle, future, outcome)

    def _flush(self) -> None:
        """Score everything queued, one stacked forward pass per model and per `micro_batch_rows` rows."""
        self._flush_scheduled = False
        while self._queue:
            batch = self._take()
            if not batch:
                continue
            try:
                result = _predict_stacked(batch[0].model, [item.features for item in batch])
            except Exception as error:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            start = 0
            for item in batch:
                if not item.future.done():
                    item.future.set_result(result[start : start + item.rows])
                start += item.rows

    def _take(self) -> list[_Pending]:
        """The next batch: queued requests for the same model, skipping abandoned ones, up to the row cap."""
        limit = self.settings.micro_batch_rows
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        rows = 0
        for item in self._queue:
            if item.future.done():
                continue
            if batch and (item.model is not batch[0].model or rows + item.rows > limit):
                rest.append(item)
                continue
            batch.append(item)
            rows += item.rows
        self._queue = rest
        return batch

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _settle(future: "asyncio.Future[Any]", outcome: Any) -> None:
    if future.done():  # the request timed out or its client left
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _predict_stacked(model: Model, parts: list[np.ndarray]) -> Any:
    features = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return model.predict(features)


def configure_torch(threads: int) -> None:
    """Explicit intra-op and inter-op thread counts: one worker per core, each with `threads` compute threads."""
    import torch

    torch.set_num_threads(threads)
    # Raises once set, or once parallel work ran in this process: the first setting stands.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
