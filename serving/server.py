"""Running the app under uvicorn: worker processes, graceful shutdown, and a deadline on slow request headers.

uvicorn already stops accepting on SIGTERM and lets in-flight requests finish; what it lacks is a bound on how long
a client may take to send its request, which `DeadlineHttpToolsProtocol` adds.
"""

import asyncio
import copy
import math
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.config import MULTIPROC_ENV, WORKER_STATE_ENV, Settings


@cache
def _request_timeout() -> float:
    return Settings.from_env().request_timeout


@cache
def _timeout_response(seconds: float) -> bytes:
    body = orjson.dumps({"error": f"the request was not received within {seconds:g} s"})
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a deadline on receiving each request, from its first byte to its last.

    A connection is armed when it opens and whenever a request begins, and disarmed once the request (headers and
    body) has arrived. A client that is too slow gets 408 and the connection closes; if the app already answered
    (say 413 before reading the body), the connection just closes. One timer per request is cheaper than a timeout
    scope around every body read in the app.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(_request_timeout(), self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_timeout_response(_request_timeout()))
        self.transport.close()


def _log_config(level: str) -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["serving"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; returns once every worker has finished its in-flight requests."""
    state_dir = None
    if settings.workers > 1:
        # Shared by the workers: their readiness marks (so /ping waits for all of them) and their metric samples
        # (so any worker's /metrics shows the sum).
        state_dir = Path(tempfile.mkdtemp(prefix="mlplat-serving-"))
        (state_dir / "ready").mkdir()
        os.environ[WORKER_STATE_ENV] = str(state_dir / "ready")
        if not os.environ.get(MULTIPROC_ENV):
            (state_dir / "metrics").mkdir()
            os.environ[MULTIPROC_ENV] = str(state_dir / "metrics")
    try:
        uvicorn.run(
            "serving.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http=f"{__name__}:DeadlineHttpToolsProtocol",
            ws="none",
            lifespan="on",
            access_log=settings.access_log,
            log_level=settings.log_level,
            log_config=_log_config(settings.log_level),
            timeout_keep_alive=settings.keep_alive_timeout,
            timeout_graceful_shutdown=math.ceil(settings.graceful_timeout),
            server_header=False,
            # Nothing here reads the client's address, so X-Forwarded-* need not be parsed on every request.
            proxy_headers=False,
        )
    finally:
        if state_dir is not None:
            shutil.rmtree(state_dir, ignore_errors=True)
