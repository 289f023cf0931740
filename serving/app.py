"""The HTTP layer: a bare ASGI app that routes, enforces limits and deadlines, and writes typed responses.

Everything that understands a request body lives in `serving.handler`; this module only moves bytes, counts
requests, and turns `ServingError`s (and anything unexpected) into responses that never echo the body or a trace.
"""

import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

from serving import metrics
from serving.capture import CaptureWriter
from serving.codec import media_type, negotiate
from serving.config import Settings
from serving.protocol import (
    BAD_REQUEST,
    CSV,
    EXECUTION_PARAMETERS_PATH,
    GATEWAY_TIMEOUT,
    INTERNAL_ERROR,
    INVOCATIONS_PATH,
    JSON,
    JSON_LINES,
    METHOD_NOT_ALLOWED,
    METRICS_PATH,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    PING_PATH,
    PROMETHEUS_TEXT,
    UNAVAILABLE,
    UNSUPPORTED_MEDIA_TYPE,
    VERSION_PATH,
    Response,
    ServingError,
    error_response,
    quote_value,
)
from serving.runtime import Inference, ModelHolder, PredictionListener, Readiness, configure_torch
from serving.source import ModelSource

log = logging.getLogger("serving.app")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLOSE = (("connection", "close"),)
RETRY_AFTER = (("retry-after", "1"),)
_EMPTY_OK = Response(200, b"", "text/plain")
_EMPTY_UNAVAILABLE = Response(UNAVAILABLE, b"", "text/plain")


class ClientGone(Exception):
    """The client closed the connection before its body arrived; there is nobody to answer."""


class ServingApp:
    """The ASGI application of one worker process."""

    def __init__(
        self,
        settings: Settings,
        holder: ModelHolder,
        inference: Inference,
        listeners: Iterable[PredictionListener] = (),
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.inference = inference
        # The one place a data-capture writer (or any other observer of scored requests) is plugged in.
        self.listeners = tuple(listeners)
        self.in_flight = 0
        self._counters: dict[tuple[str, int], Any] = {}
        self._histograms: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                configure_torch(self.settings.torch_threads)
                self.holder.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.holder.stop()
                self.inference.close()
                metrics.worker_exited(os.getpid())
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            if path == INVOCATIONS_PATH:
                response = await self._invocations(scope, receive) if method == "POST" else _not_allowed("POST")
            elif path == PING_PATH:
                if method not in ("GET", "HEAD"):
                    response = _not_allowed("GET")
                else:
                    ready = self.holder.ready and self.holder.readiness.all_ready()
                    response = _EMPTY_OK if ready else _EMPTY_UNAVAILABLE
            elif path == METRICS_PATH:
                response = Response(200, metrics.render(), PROMETHEUS_TEXT) if method == "GET" else _not_allowed("GET")
            elif path == EXECUTION_PARAMETERS_PATH:
                response = self._execution_parameters() if method == "GET" else _not_allowed("GET")
            elif path == VERSION_PATH:
                response = self._version() if method == "GET" else _not_allowed("GET")
            else:
                response = error_response(ServingError(NOT_FOUND, "no such path"))
        except ServingError as error:
            response = error_response(error)
        except ClientGone:
            return
        except Exception:
            log.exception("unexpected error answering %s %s", method, metrics.path_label(path))
            response = error_response(ServingError(INTERNAL_ERROR, "internal error"))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.media_type.encode()),
                    (b"content-length", str(len(response.body)).encode()),
                    *((name.encode(), value.encode()) for name, value in response.headers),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
        self._count(path, response.status, time.perf_counter() - started)

    def _count(self, path: str, status: int, seconds: float) -> None:
        # Metric children are cached by label, never by raw path, so probing random paths cannot grow memory.
        label = metrics.path_label(path)
        counter = self._counters.get((label, status))
        if counter is None:
            counter = self._counters.setdefault((label, status), metrics.REQUESTS.labels(label, str(status)))
        counter.inc()
        histogram = self._histograms.get(label)
        if histogram is None:
            histogram = self._histograms.setdefault(label, metrics.LATENCY.labels(label))
        histogram.observe(seconds)

    async def _invocations(self, scope: Scope, receive: Receive) -> Response:
        if self.in_flight >= self.settings.max_in_flight:
            raise ServingError(
                UNAVAILABLE,
                f"the server is at its limit of {self.settings.max_in_flight} requests in flight; retry later",
                RETRY_AFTER,
            )
        model = self.holder.model
        if model is None:
            raise ServingError(UNAVAILABLE, "the model is not loaded yet", RETRY_AFTER)
        content_type = accept = content_length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value
        kind = media_type(content_type)
        if kind not in (JSON, CSV, JSON_LINES):
            shown = quote_value(kind) if kind else "none"
            raise ServingError(
                UNSUPPORTED_MEDIA_TYPE, f"unsupported Content-Type {shown}; supported: {JSON}, {CSV}, {JSON_LINES}"
            )
        output = negotiate(accept)
        self.in_flight += 1
        metrics.IN_FLIGHT.inc()
        try:
            body = await self._read_body(receive, content_length)
            prepared = model.prepare(body, content_type or kind, self.settings.max_rows)
            try:
                outputs = await self.inference.predict(model, prepared.features)
            except TimeoutError:
                raise ServingError(
                    GATEWAY_TIMEOUT,
                    f"inference did not finish within {self.settings.inference_timeout:g} s",
                ) from None
            answer = model.respond(prepared, outputs, output)
            metrics.ROWS.inc(answer.rows)
            table = answer.observed_table() if self.listeners else None
            if table is not None:
                for listener in self.listeners:
                    try:
                        listener.observe(model.info, table, answer.predictions)
                    except Exception:  # an observer must never cost the client its answer
                        log.exception("prediction listener %s failed", type(listener).__name__)
            return answer.response
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.dec()

    async def _read_body(self, receive: Receive, content_length: bytes | None) -> bytes:
        """The whole body, refused from `Content-Length` alone when too large, cut off at the limit when chunked."""
        limit = self.settings.max_body_bytes
        if content_length is not None:
            try:
                declared = int(content_length)
            except ValueError:
                raise ServingError(BAD_REQUEST, "invalid Content-Length", CLOSE) from None
            if declared > limit:
                raise ServingError(
                    PAYLOAD_TOO_LARGE, f"the body of {declared} bytes exceeds the limit of {limit} bytes", CLOSE
                )
        # No timeout scope here: the connection's protocol cuts off a request that takes too long to arrive.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ServingError(PAYLOAD_TOO_LARGE, f"the body exceeds the limit of {limit} bytes", CLOSE)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _execution_parameters(self) -> Response:
        """Batch Transform's sizing: one request per worker at a time, several records a request, our body limit."""
        document = {
            "MaxConcurrentTransforms": self.settings.workers,
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": max(1, self.settings.max_body_bytes // (1024 * 1024)),
        }
        return Response(200, orjson.dumps(document), JSON)

    def _version(self) -> Response:
        model = self.holder.model
        document: dict[str, Any] = {"status": "ready" if model is not None else "loading"}
        if model is not None:
            document.update(model.info.as_dict())
        else:
            document.update({"name": None, "version": None, "run_id": None, "source": self.holder.source.uri})
            if self.holder.last_error:
                document["error"] = self.holder.last_error
        return Response(200, orjson.dumps(document), JSON)


def _not_allowed(allowed: str) -> Response:
    error = ServingError(METHOD_NOT_ALLOWED, "method not allowed", (("allow", allowed),))
    return error_response(error)


def create_app(settings: Settings | None = None) -> ServingApp:
    """Build one worker's app from the environment (uvicorn calls this in every worker process)."""
    settings = settings or Settings.from_env()
    source = ModelSource.parse(settings.model_uri)
    readiness = Readiness(settings.worker_state_dir, settings.workers)
    capture = CaptureWriter.from_env()  # sampled data capture when MLPLAT_CAPTURE_DESTINATION is set
    return ServingApp(
        settings, ModelHolder(settings, source, readiness), Inference(settings), [capture] if capture else []
    )
