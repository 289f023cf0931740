"""Interruptions on the MLflow run: the EC2 spot notice, SIGTERM, what was interrupted and what the restart cost.

The runtime stops the same way for every notice: SIGTERM (sent by SageMaker before it stops a spot job, by the
kubelet before it kills a pod) reaches `training.main.StopSignals`, the loop writes a checkpoint at once and the
process exits 143. On EC2 the spot notice comes two minutes earlier than the kubelet's SIGTERM, from instance
metadata: with `MLPLAT_WATCH_SPOT=1` a thread asks IMDSv2 for `/latest/meta-data/spot/instance-action` (404 until a
notice exists) and, on a notice, sends the process its own SIGTERM, so the checkpoint is written while there is time.

Each interruption is recorded on the run: the tag `mlplat.last_interruption` (JSON: time, kind, capacity type, epoch
reached), the artifact `interruptions/interruption-<n>.json` and the tag `mlplat.interruptions` (how many). When the
job resumes the same run from its checkpoint, `resumed` sets `mlplat.attempts` and adds the time between the
interruption and the restart to `mlplat.time_lost_seconds` (also logged as the metric `time_lost_seconds`).

Endpoints and timings are overridable for tests: `MLPLAT_IMDS_ENDPOINT` (default `http://169.254.169.254`) and
`MLPLAT_SPOT_POLL_SECONDS` (default 5).
"""

import json
import logging
import os
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("training")

EXIT_CODE_FILE_ENV = "MLPLAT_EXIT_CODE_FILE"
WATCH_SPOT_ENV = "MLPLAT_WATCH_SPOT"
IMDS_ENDPOINT_ENV = "MLPLAT_IMDS_ENDPOINT"
SPOT_POLL_ENV = "MLPLAT_SPOT_POLL_SECONDS"
CAPACITY_TYPE_ENV = "MLPLAT_CAPACITY_TYPE"
DEFAULT_IMDS = "http://169.254.169.254"
TOKEN_PATH = "/latest/api/token"  # noqa: S105 (a URL path, not a secret)
SPOT_ACTION_PATH = "/latest/meta-data/spot/instance-action"
LIFECYCLE_PATH = "/latest/meta-data/instance-life-cycle"

LAST_TAG = "mlplat.last_interruption"
COUNT_TAG = "mlplat.interruptions"
ATTEMPTS_TAG = "mlplat.attempts"
LOST_TAG = "mlplat.time_lost_seconds"
ARTIFACT_DIR = "interruptions"


def note_exit(code: int, environ: Mapping[str, str] = os.environ) -> None:
    """Leave the exit status for `training.gang`, which torchrun would otherwise hide; no-op outside it."""
    path = environ.get(EXIT_CODE_FILE_ENV)
    if path:
        try:
            Path(path).write_text(str(code), encoding="utf-8")
        except OSError as exc:
            log.warning("could not record exit status %d in %s: %s", code, path, exc)


class Imds:
    """The two instance-metadata reads the runtime needs, over IMDSv2 (a session token on every request)."""

    def __init__(self, endpoint: str, timeout: float = 2.0) -> None:
        if not endpoint.startswith("http://"):
            raise ValueError(f"{IMDS_ENDPOINT_ENV} must be an http:// URL (got {endpoint!r})")
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._token: str | None = None

    def _request(self, path: str, method: str = "GET", headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        # The endpoint is IMDS (or a test's stand-in), checked to be http in __init__: no file: or custom scheme.
        request = urllib.request.Request(self.endpoint + path, method=method, headers=dict(headers or {}))  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return int(response.status), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), ""

    def _get(self, path: str) -> tuple[int, str]:
        if self._token is None:
            status, token = self._request(TOKEN_PATH, "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
            if status != 200:
                raise OSError(f"IMDSv2 token request answered {status}")
            self._token = token
        status, body = self._request(path, headers={"X-aws-ec2-metadata-token": self._token})
        if status == 401:  # the token expired: ask again once
            self._token = None
            return self._get(path)
        return status, body

    def spot_action(self) -> dict[str, Any] | None:
        """The spot interruption notice (`{"action": "terminate", "time": ...}`), None while there is none."""
        status, body = self._get(SPOT_ACTION_PATH)
        if status != 200:
            return None
        try:
            notice = json.loads(body)
        except ValueError:
            return {"action": body.strip()}
        return notice if isinstance(notice, dict) else {"action": str(notice)}

    def capacity_type(self) -> str:
        """`spot` or `on-demand` (the instance's life cycle)."""
        status, body = self._get(LIFECYCLE_PATH)
        return body.strip() if status == 200 and body.strip() else "unknown"


@dataclass
class Notice:
    """What stopped the job, once known."""

    kind: str = ""
    received: str = ""
    capacity_type: str = ""
    detail: dict[str, Any] | None = None


class SpotWatcher:
    """Polls IMDS for the spot notice on a daemon thread; on a notice, records it and sends this process SIGTERM."""

    def __init__(self, imds: Imds, interval: float, notice: Notice, kill: Callable[[], None] | None = None) -> None:
        self.imds = imds
        self.interval = interval
        self.notice = notice
        self.kill = kill or (lambda: os.kill(os.getpid(), signal.SIGTERM))
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mlplat-spot-watch", daemon=True)

    def start(self) -> "SpotWatcher":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                action = self.imds.spot_action()
            except OSError as exc:
                log.debug("instance metadata unavailable: %s", exc)
                action = None
            if action is not None:
                self.notice.kind = "spot"
                self.notice.received = _now()
                self.notice.detail = action
                log.warning(
                    "spot interruption notice (%s at %s): checkpointing now", action.get("action"), action.get("time")
                )
                self.kill()
                return
            self.stopped.wait(self.interval)


NOTICE = Notice()
_watcher: SpotWatcher | None = None


def watch(environ: Mapping[str, str] = os.environ) -> None:
    """Start the spot watcher when `MLPLAT_WATCH_SPOT=1`, and learn the capacity type."""
    global _watcher
    NOTICE.capacity_type = environ.get(CAPACITY_TYPE_ENV, "")
    if environ.get(WATCH_SPOT_ENV) != "1" or _watcher is not None:
        return
    try:
        imds = Imds(environ.get(IMDS_ENDPOINT_ENV) or DEFAULT_IMDS)
    except ValueError as exc:
        log.warning("not watching for spot notices: %s", exc)
        return
    if not NOTICE.capacity_type:
        try:
            NOTICE.capacity_type = imds.capacity_type()
        except OSError:
            NOTICE.capacity_type = "unknown"
    _watcher = SpotWatcher(imds, float(environ.get(SPOT_POLL_ENV) or 5), NOTICE).start()


def record(client: Any, run_id: str | None, signum: int, epoch: int | None) -> dict[str, Any] | None:
    """Record the interruption on the run (tag, count, JSON artifact); returns the record. Never raises."""
    if client is None or run_id is None:
        return None
    event = {
        "event": "interrupted",
        "time": NOTICE.received or _now(),
        "kind": NOTICE.kind or signal.Signals(signum).name.lower(),
        "capacity_type": NOTICE.capacity_type or "unknown",
        "epoch": epoch,
        "notice": NOTICE.detail,
    }
    try:
        tags = client.get_run(run_id).data.tags
        count = int(tags.get(COUNT_TAG, "0")) + 1
        client.set_tag(run_id, LAST_TAG, json.dumps(event, sort_keys=True))
        client.set_tag(run_id, COUNT_TAG, str(count))
        client.log_dict(run_id, event, f"{ARTIFACT_DIR}/interruption-{count}.json")
    except Exception as exc:
        log.warning("could not record the interruption on MLflow run %s: %s", run_id, exc)
        return None
    log.info("recorded the interruption on run %s: %s", run_id, json.dumps(event))
    return event


def resumed(client: Any, run_id: str, attempt: int) -> float:
    """On a restart of the same run: its attempt number, and the time lost since the interruption (returned, s)."""
    tags = client.get_run(run_id).data.tags
    lost = 0.0
    last = tags.get(LAST_TAG)
    if last:
        try:
            since = datetime.fromisoformat(json.loads(last)["time"])
            lost = max(0.0, (datetime.now(UTC) - since).total_seconds())
        except (ValueError, KeyError, TypeError):
            lost = 0.0
    total = float(tags.get(LOST_TAG, "0") or 0) + lost
    client.set_tag(run_id, ATTEMPTS_TAG, str(attempt))
    client.set_tag(run_id, LOST_TAG, f"{total:.1f}")
    client.log_metric(run_id, "time_lost_seconds", total, step=attempt)
    return lost


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def checkpoint_epoch(name: str | None) -> int | None:
    """The epochs done of a checkpoint name (`ckpt-000003-000120.pt` -> 3)."""
    if not name:
        return None
    parts = name.removesuffix(".pt").split("-")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
