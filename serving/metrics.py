"""Prometheus metrics of the server, aggregated over worker processes when there are several.

With more than one worker, `serving.server.run` points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before the
workers start, so each worker writes its samples there and any worker's `/metrics` shows the sum of all.
"""

import os

from serving.config import MULTIPROC_ENV

# prometheus_client turns file-backed multi-process values on when the variable merely exists, so an empty value
# (a common way to "clear" it) would write counter_<pid>.db files into the working directory. Empty means unset.
if os.environ.get(MULTIPROC_ENV) == "":
    del os.environ[MULTIPROC_ENV]

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from serving.model import ModelInfo

# Fine buckets below 10 ms, where the fast path lives; coarse ones up to the inference timeout.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("mlplat_serving_requests", "HTTP requests answered, by path and status.", ("path", "status"))
LATENCY = Histogram(
    "mlplat_serving_request_duration_seconds",
    "Time from the start of a request to its response, by path.",
    ("path",),
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "mlplat_serving_in_flight_requests", "Invocations being processed right now.", multiprocess_mode="livesum"
)
ROWS = Counter("mlplat_serving_predicted_rows", "Rows scored.")
MODEL_INFO = Gauge(
    "mlplat_serving_model_info",
    "1 for the model version that serves, 0 for versions it replaced.",
    ("name", "version", "run_id", "flavor"),
    multiprocess_mode="livemax",
)
MODEL_LOADED = Gauge("mlplat_serving_model_loaded", "1 once a model is loaded and warmed.", multiprocess_mode="livemin")
SWAPS = Counter("mlplat_serving_model_swaps", "Times a newly promoted model version was swapped in.")
LOAD_FAILURES = Counter("mlplat_serving_model_load_failures", "Model loads that failed (initial or swap).")

_KNOWN_PATHS = frozenset({"/ping", "/invocations", "/metrics", "/version"})


def path_label(path: str) -> str:
    """The path as a label, with every unknown path folded into one, so clients cannot grow the series."""
    return path if path in _KNOWN_PATHS else "other"


def show_model(new: ModelInfo, old: ModelInfo | None) -> None:
    """Mark `new` as the serving model, and `old` (if any) as replaced."""
    if old is not None:
        _info(old).set(0)
    _info(new).set(1)
    MODEL_LOADED.set(1)


def _info(info: ModelInfo) -> Gauge:
    return MODEL_INFO.labels(info.name, info.version or "", info.run_id or "", info.flavor)


def render() -> bytes:
    """The Prometheus text exposition of every metric (every worker's, in multiprocess mode)."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


def worker_exited(pid: int) -> None:
    """Drop a stopped worker's live gauges from the aggregate."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
