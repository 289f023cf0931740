"""The wire contract of the serving container: paths, media types, limits and the typed error and response."""

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

# SageMaker hosting contract (and what Kubernetes probes and the local platform use too).
PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
METRICS_PATH = "/metrics"
VERSION_PATH = "/version"
# SageMaker Batch Transform asks this once, to size its requests (MaxPayloadInMB) and concurrency.
EXECUTION_PARAMETERS_PATH = "/execution-parameters"

JSON = "application/json"
CSV = "text/csv"
# One JSON value (a row or a record) per line: Batch Transform's SplitType=Line for JSON.
JSON_LINES = "application/jsonlines"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

DEFAULT_PORT = 8080
DEFAULT_MODEL_URI = "/opt/ml/model"
# SageMaker caps a real-time invocation payload at 6 MB; we use the same ceiling everywhere.
MAX_BODY_BYTES = 6 * 1024 * 1024

# JSON request keys, as in MLflow's scoring protocol (and TF-Serving's `instances`).
KEY_INPUTS = "inputs"
KEY_INSTANCES = "instances"
KEY_DATAFRAME_SPLIT = "dataframe_split"
KEY_DATAFRAME_RECORDS = "dataframe_records"
KEY_PREDICTIONS = "predictions"
KEY_PARAMS = "params"

# Statuses: shape and syntax problems are 400; values that parse but cannot be scored are 422.
BAD_REQUEST = 400
REQUEST_TIMEOUT = 408
PAYLOAD_TOO_LARGE = 413
UNSUPPORTED_MEDIA_TYPE = 415
NOT_ACCEPTABLE = 406
NOT_FOUND = 404
METHOD_NOT_ALLOWED = 405
UNPROCESSABLE = 422
INTERNAL_ERROR = 500
UNAVAILABLE = 503
GATEWAY_TIMEOUT = 504


class ServingError(Exception):
    """A request that cannot be answered with predictions; `status` is the HTTP status, `message` is safe to return.

    The message never contains the request body: at most a column name and a short, quoted offending value.
    """

    def __init__(
        self, status: int, message: str, headers: tuple[tuple[str, str], ...] = (), code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        # MLflow's error code (`BAD_REQUEST`, `INVALID_PARAMETER_VALUE`) when the generic path answers for MLflow.
        self.code = code


@dataclass(frozen=True)
class Response:
    """What the HTTP layer writes: status, body bytes, media type and any extra headers."""

    status: int
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...] = field(default=())


def quote_value(value: object, limit: int = 32) -> str:
    """A short, printable rendering of one offending value for an error message (never the whole body)."""
    text = repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quote_names(names: Sequence[object], limit: int = 5) -> str:
    """A few quoted names for an error message, and how many more there are (a body may carry thousands)."""
    shown = ", ".join(quote_value(name) for name in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def error_response(error: ServingError) -> Response:
    """The JSON body of every error: `{"error": "<message>"}`, with the error's status and headers; errors of the
    generic path also carry MLflow's `error_code` and `message`, so MLflow's clients read them as they read MLflow's."""
    document = {"error": error.message}
    if error.code is not None:
        document.update(error_code=error.code, message=error.message)
    return Response(error.status, orjson.dumps(document), JSON, error.headers)
