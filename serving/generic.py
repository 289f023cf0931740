"""The generic path: any MLflow model, its requests parsed, validated and answered by MLflow's own scoring code.

Parsing is `mlflow.pyfunc.scoring_server`'s (`_parse_json_data`, `parse_csv_input`), so tensor specs, column specs,
named tensors, `params` (validated against the param schema by `PyFuncModel.predict`), string and bytes columns and
optional columns behave exactly as under `mlflow models serve`, and predictions are written with its
`predictions_to_json` shapes. What differs is ours: the body and row limits (413, 422), error bodies that never
echo the request or a stack trace, CSV answers by `Accept`, and 415 as JSON. The README lists every difference.

Parsing runs with the prediction, off the event loop and under the inference timeout: both are arbitrary pandas and
model code whose cost grows with the body.
"""

import inspect
import io
import json
import logging
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from serving.codec import Table, json_lines, media_type
from serving.model import Answer, ModelInfo, ModelLoadError, Prepared
from serving.protocol import (
    BAD_REQUEST,
    CSV,
    JSON,
    JSON_LINES,
    UNPROCESSABLE,
    UNSUPPORTED_MEDIA_TYPE,
    Response,
    ServingError,
    quote_value,
)

log = logging.getLogger("serving.generic")

# MLflow's message for any exception a model raises; it answers 400, and so do we (never 500 for a model's refusal).
MODEL_FAILED = (
    "Encountered an unexpected error while evaluating the model. Verify that the serialized input Dataframe is "
    "compatible with the model for inference."
)
_MAX_MESSAGE = 1000
# MLflow puts the whole request (or the parsed data) into some messages; those parts are cut out of ours.
_ECHOED_INPUT = re.compile(r"\nInput: \n.*\Z", re.DOTALL)
_ECHOED_DATA = re.compile(r"(Failed to enforce schema) of data '.*?' (with schema ')", re.DOTALL)
_PREDICT_PREFIX = re.compile(r"\AFailed to predict data '.*?'\. \nError: ", re.DOTALL)


@dataclass(frozen=True)
class GenericRequest:
    """A body waiting to be parsed with the prediction, off the event loop."""

    body: bytes
    mime: str


@dataclass(frozen=True)
class GenericResult:
    """The JSON-able predictions, the number of input rows, and the parsed input (for observers)."""

    predictions: Any
    unwrapped: bool
    rows: int
    data: Any


class PyfuncModel:
    """Any MLflow model through `mlflow.pyfunc.load_model`: slower than a fast path, but it answers as MLflow does."""

    batchable = False

    def __init__(self, model_dir: Path, info: ModelInfo, max_rows: int = 10_000) -> None:
        import mlflow.pyfunc  # deferred: fast-path workers never import mlflow or pandas

        self.info = info
        self.max_rows = max_rows
        try:
            self._model = mlflow.pyfunc.load_model(str(model_dir))
        except Exception as error:
            raise ModelLoadError(f"mlflow cannot load {model_dir}: {type(error).__name__}: {error}") from None
        self._input_schema = self._model.metadata.get_input_schema()
        self._takes_params = "params" in inspect.signature(self._model.predict).parameters

    def prepare(self, body: bytes, content_type: str, max_rows: int) -> Prepared:
        """Check the media type and its parameters as MLflow does; the body is parsed later, with the prediction."""
        mime = media_type(content_type)
        parameters = {
            key.strip().lower(): value.strip()
            for key, _, value in (part.partition("=") for part in content_type.split(";")[1:])
        }
        charset = parameters.get("charset", "utf-8").lower()
        if charset != "utf-8":
            raise ServingError(UNSUPPORTED_MEDIA_TYPE, f"unsupported charset {quote_value(charset)}; only utf-8")
        unexpected = sorted(set(parameters) - {"charset"})
        if unexpected:
            shown = ", ".join(quote_value(name) for name in unexpected)
            raise ServingError(UNSUPPORTED_MEDIA_TYPE, f"unrecognized Content-Type parameter(s) {shown}")
        return Prepared(GenericRequest(body, mime))

    def predict(self, request: GenericRequest) -> GenericResult:
        """Parse with MLflow's scoring code, enforce the row limit, predict; every refusal is a 4xx `ServingError`."""
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc import scoring_server
        from mlflow.utils.proto_json_utils import _get_jsonable_obj

        try:
            data, params, unwrapped = self._parse(request, scoring_server)
        except MlflowException as error:
            raise _client_error(error) from None
        rows = _count_rows(data)
        if rows > self.max_rows:
            raise ServingError(UNPROCESSABLE, f"{rows} rows exceed the limit of {self.max_rows} rows per request")
        try:
            raw = self._model.predict(data, params=params) if self._takes_params else self._model.predict(data)
        except MlflowException as error:
            raise _client_error(error) from None
        except Exception:
            log.warning("the model raised on an input", exc_info=True)
            raise ServingError(BAD_REQUEST, MODEL_FAILED, code="BAD_REQUEST") from None
        return GenericResult(_get_jsonable_obj(raw, pandas_orient="records"), unwrapped, rows, data)

    def _parse(self, request: GenericRequest, scoring_server: Any) -> tuple[Any, Any, bool]:
        if request.mime == CSV:
            try:
                text = request.body.decode("utf-8")
            except UnicodeDecodeError:
                raise ServingError(
                    BAD_REQUEST, "malformed CSV: the body is not valid UTF-8", code="BAD_REQUEST"
                ) from None
            return scoring_server.parse_csv_input(io.StringIO(text), schema=self._input_schema), None, False
        body = request.body
        if request.mime == JSON_LINES:
            # Batch Transform's records, one a line, as MLflow's `instances` (rows, or records keyed by column).
            body = json.dumps({"instances": json_lines(body)}).encode()
        parsed = scoring_server._parse_json_data(body, self._model.metadata, self._input_schema)
        return parsed.data, parsed.params, bool(parsed.is_unified_llm_input)

    def respond(self, prepared: Prepared, outputs: GenericResult, output_type: str) -> Answer:
        """MLflow's `{"predictions": ...}` (or the bare value for its unified LLM input), or CSV when asked for."""
        from mlflow.utils.proto_json_utils import NumpyEncoder

        if output_type in (CSV, JSON_LINES) and not outputs.unwrapped:
            from serving.codec import encode

            body, media = encode(outputs.predictions, output_type)
        else:
            document = outputs.predictions if outputs.unwrapped else {"predictions": outputs.predictions}
            body, media = json.dumps(document, cls=NumpyEncoder).encode(), JSON
        table = partial(_as_table, outputs.data)
        return Answer(Response(200, body, media), outputs.rows, None, outputs.predictions, table)

    def warm(self) -> None:
        """Nothing generic to run: a pyfunc model's valid input is only known from its signature or example."""


def _client_error(error: Any) -> ServingError:
    """An `MlflowException` as our error: MLflow's status and error code, its message without the echoed input."""
    message = _PREDICT_PREFIX.sub("", str(error.message))
    message = _ECHOED_INPUT.sub("", message)
    message = _ECHOED_DATA.sub(r"\1 \2", message)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    status = int(error.get_http_status_code())
    # A refusal of the input is the client's to fix; an MLflow error mapped to 5xx here would be our defect.
    if status >= 500:
        log.warning("MLflow raised %s (%s) on an input", error.error_code, status)
        status = BAD_REQUEST
    return ServingError(status, message, code=str(error.error_code))


def _count_rows(data: Any) -> int:
    if isinstance(data, dict):
        lengths = [len(value) for value in data.values() if hasattr(value, "__len__") and not isinstance(value, str)]
        return max(lengths, default=1)
    shape = getattr(data, "shape", None)
    if shape:
        return int(shape[0])
    return len(data) if isinstance(data, list) else 1


def _as_table(data: Any) -> Table | None:
    """A parsed DataFrame as a `Table` for observers (data capture); other inputs are not captured as tables."""
    columns = getattr(data, "columns", None)
    if columns is None or not hasattr(data, "to_dict"):
        return None
    values = data.to_dict(orient="list")
    return Table(
        names=tuple(str(name) for name in columns),
        columns=tuple(values[name] for name in columns),
        n_rows=len(data),
    )
