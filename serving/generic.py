"""The generic path: any MLflow model, its requests parsed, validated and answered by MLflow's own scoring code.

Parsing is `mlflow.pyfunc.scoring_server`'s (`_parse_json_data`, `parse_csv_input`), so tensor specs, column specs,
named tensors, `params` (validated against the param schema by `PyFuncModel.predict`), string and bytes columns and
optional columns behave exactly as under `mlflow models serve`, and predictions are written with its
`predictions_to_json` shapes. What differs is ours: the body and row limits (413, 422), error bodies that never
echo the request or a stack trace, CSV answers by `Accept`, and 415 as JSON. The README lists every difference.

Parsing runs with the prediction, off the event loop and under the inference timeout: both are arbitrary pandas and
model code whose cost grows with the body.

MLflow's parsing costs milliseconds a request, most of it pandas building and re-casting a frame one column at a
time. So the common, well-formed case has a fast parser: a JSON body whose only key is `dataframe_split` (no index)
or `dataframe_records`, for a model whose signature is columns of double, float, long, integer, boolean or string,
every one required, the request naming exactly those columns, each value of the column's JSON type. It builds the
frame MLflow's parser builds (same columns, order, dtypes and values; the conformance suite pins each form), which
then goes through MLflow's `PyFuncModel.predict`, schema enforcement included. Every other body, and every error,
takes MLflow's own parser. For a model that scores rows independently (scikit-learn's predict functions),
concurrent fast-parsed requests are scored as one frame and the predictions split back by rows; if that batch
fails, each request is scored alone so its error is its own.
"""

import inspect
import io
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson

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
UNPARSEABLE = "the body cannot be parsed as an input of this model (see MLflow's scoring protocol)"
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
    """The JSON-able predictions, the number of input rows, and the parsed input (for observers).

    `span` is this request's rows of `data` when `data` is the frame of a batch of requests.
    """

    predictions: Any
    unwrapped: bool
    rows: int
    data: Any
    span: slice | None = None


# A column type the fast parser takes: the JSON values it accepts (bool is an int to Python, so listed apart), the
# numpy dtype MLflow's cast gives the column (None: pandas infers it from the values, as MLflow's frame does), and
# the range of integers it takes exactly (beyond it MLflow's parser and cast decide).
@dataclass(frozen=True)
class _ColumnKind:
    accepts: tuple[type, ...]
    dtype: str | None
    int_range: tuple[int, int] | None = None


# Integers a float column takes exactly: within them every int converts without rounding, whatever the route.
_FAST_KINDS = {
    "double": _ColumnKind((float, int), "float64", (-(2**53), 2**53)),
    "float": _ColumnKind((float, int), "float32", (-(2**24), 2**24)),
    "long": _ColumnKind((int,), "int64", (-(2**63), 2**63 - 1)),
    "integer": _ColumnKind((int,), "int32", (-(2**31), 2**31 - 1)),
    "boolean": _ColumnKind((bool,), "bool"),
    "string": _ColumnKind((str,), None),
}
# scikit-learn's prediction functions score each row on its own (`score` does not: it is one number per call).
_ROW_WISE_SKLEARN = frozenset({"predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba"})


@dataclass(frozen=True)
class FastInput:
    """A body the fast parser took: its columns in the request's order, and each column's values."""

    names: tuple[str, ...]
    columns: tuple[list[Any], ...]
    rows: int


class PyfuncModel:
    """Any MLflow model through `mlflow.pyfunc.load_model`: slower than a fast path, but it answers as MLflow does."""

    batchable = False

    def __init__(self, model_dir: Path, info: ModelInfo, max_rows: int) -> None:
        import mlflow.pyfunc  # deferred: fast-path workers never import mlflow or pandas

        self.info = info
        self.max_rows = max_rows
        try:
            self._model = mlflow.pyfunc.load_model(str(model_dir))
        except Exception as error:
            raise ModelLoadError(f"mlflow cannot load {model_dir}: {type(error).__name__}: {error}") from None
        self._input_schema = self._model.metadata.get_input_schema()
        self._takes_params = "params" in inspect.signature(self._model.predict).parameters
        self._fast_kinds = _fast_kinds(self._model.metadata, self._input_schema)
        self.row_wise = _row_wise(self._model.metadata)

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
        """Parse (fast parser, else MLflow's scoring code), enforce the row limit, predict; refusals are 4xx."""
        return self._predict_one(request, self.fast_parse(request))

    def predict_many(self, requests: Sequence[GenericRequest], combine: bool = True) -> list[Any]:
        """Each request's `GenericResult`, or the exception it answers with, in order.

        With `combine` and a row-wise model, fast-parsed requests are scored together, up to `max_rows` rows a
        batch; any failure of a batch scores its requests one by one, through the same code as `predict`.
        """
        parsed = [self.fast_parse(request) for request in requests]
        outcomes: list[Any] = [None] * len(requests)
        if combine and self.row_wise:
            for batch in self._batches(parsed):
                items = [item for index in batch if (item := parsed[index]) is not None]
                for index, result in zip(batch, self._predict_batch(items), strict=True):
                    outcomes[index] = result
        for index, request in enumerate(requests):
            if outcomes[index] is None:
                try:
                    outcomes[index] = self._predict_one(request, parsed[index])
                except Exception as error:
                    outcomes[index] = error
        return outcomes

    def _batches(self, parsed: Sequence["FastInput | None"]) -> list[list[int]]:
        """Indexes of fast-parsed requests with the same column order, at most `max_rows` rows a batch."""
        batches: list[list[int]] = []
        open_batches: dict[tuple[str, ...], tuple[list[int], list[int]]] = {}
        for index, item in enumerate(parsed):
            if item is None or item.rows > self.max_rows:
                continue
            current = open_batches.get(item.names)
            if current is None or current[1][0] + item.rows > self.max_rows:
                current = ([], [0])
                open_batches[item.names] = current
                batches.append(current[0])
            current[0].append(index)
            current[1][0] += item.rows
        return [batch for batch in batches if len(batch) > 1]

    def _predict_batch(self, items: Sequence[FastInput]) -> list[GenericResult | None]:
        """One prediction over several requests' rows, split back; all None (score each alone) if anything fails."""
        names = items[0].names
        columns = tuple([value for item in items for value in item.columns[i]] for i in range(len(names)))
        try:
            frame = self._frame(FastInput(names, columns, sum(item.rows for item in items)))
            raw = self._model.predict(frame, params=None) if self._takes_params else self._model.predict(frame)
        except Exception:
            return [None] * len(items)
        if not isinstance(raw, np.ndarray) or raw.ndim == 0 or raw.shape[0] != len(frame):
            log.info("a batched prediction did not answer one row per row; scoring each request alone")
            return [None] * len(items)
        results: list[GenericResult | None] = []
        start = 0
        for item in items:
            span = slice(start, start + item.rows)
            results.append(GenericResult(raw[span].tolist(), False, item.rows, frame, span))
            start += item.rows
        return results

    def _predict_one(self, request: GenericRequest, fast: "FastInput | None") -> GenericResult:
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc import scoring_server
        from mlflow.utils.proto_json_utils import _get_jsonable_obj

        try:
            if fast is not None:
                data, params, unwrapped = self._frame(fast), None, False
            else:
                data, params, unwrapped = self._parse(request, scoring_server)
        except MlflowException as error:
            raise _client_error(error) from None
        except ServingError:
            raise
        except Exception as error:  # MLflow's parsers let some malformed inputs escape as plain exceptions
            log.info("MLflow's parser raised %s on an input", type(error).__name__)
            raise ServingError(BAD_REQUEST, UNPARSEABLE, code="BAD_REQUEST") from None
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

    def fast_parse(self, request: GenericRequest) -> FastInput | None:
        """The body's columns when it is in the fast parser's envelope (see the module docstring), else None."""
        kinds = self._fast_kinds
        if kinds is None or request.mime != JSON:
            return None
        try:
            document = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return None
        if type(document) is not dict or len(document) != 1:
            return None
        if "dataframe_split" in document:
            found = _split_columns(document["dataframe_split"], kinds)
        elif "dataframe_records" in document:
            found = _records_columns(document["dataframe_records"], kinds)
        else:
            return None
        if found is None:
            return None
        names, columns = found
        for name, values in zip(names, columns, strict=True):
            if not _values_fit(values, kinds[name]):
                return None
        return FastInput(names, columns, len(columns[0]))

    def _frame(self, fast: FastInput) -> Any:
        """The DataFrame MLflow's parser and cast build for this input."""
        import pandas as pd

        kinds = self._fast_kinds
        assert kinds is not None
        data = {}
        for name, values in zip(fast.names, fast.columns, strict=True):
            dtype = kinds[name].dtype
            data[name] = values if dtype is None else np.array(values, dtype=dtype)
        return pd.DataFrame(data, columns=list(fast.names))

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
        table = partial(_as_table, outputs.data, outputs.span)
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


def _as_table(data: Any, span: slice | None = None) -> Table | None:
    """A parsed DataFrame as a `Table` for observers (data capture); other inputs are not captured as tables."""
    columns = getattr(data, "columns", None)
    if columns is None or not hasattr(data, "to_dict"):
        return None
    if span is not None:
        data = data.iloc[span]
    values = data.to_dict(orient="list")
    return Table(
        names=tuple(str(name) for name in columns),
        columns=tuple(values[name] for name in columns),
        n_rows=len(data),
    )


def _fast_kinds(metadata: Any, schema: Any) -> dict[str, _ColumnKind] | None:
    """Each input column's kind, when the signature is one the fast parser covers; None otherwise."""
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    from_type_hint = getattr(metadata, "_is_signature_from_type_hint", None)
    if from_type_hint is not None and from_type_hint():
        return None
    kinds: dict[str, _ColumnKind] = {}
    for spec in schema.inputs:
        name = getattr(getattr(spec, "type", None), "name", None)
        kind = _FAST_KINDS.get(name) if isinstance(name, str) else None
        if kind is None or not spec.required or not isinstance(spec.name, str) or spec.name in kinds:
            return None
        kinds[spec.name] = kind
    return kinds or None


def _row_wise(metadata: Any) -> bool:
    """Whether the model scores each row on its own, so that requests may share one prediction."""
    flavor = metadata.flavors.get("python_function") or {}
    return flavor.get("loader_module") == "mlflow.sklearn" and flavor.get("predict_fn", "predict") in _ROW_WISE_SKLEARN


def _split_columns(split: Any, kinds: dict[str, _ColumnKind]) -> tuple[tuple[str, ...], tuple[list[Any], ...]] | None:
    if type(split) is not dict or split.keys() != {"columns", "data"}:
        return None
    names, rows = split["columns"], split["data"]
    if type(names) is not list or len(names) != len(kinds) or set(names) != kinds.keys():
        return None
    if type(rows) is not list or not rows:
        return None
    width = len(names)
    for row in rows:
        if type(row) is not list or len(row) != width:
            return None
    return tuple(names), tuple(list(column) for column in zip(*rows, strict=True))


def _records_columns(
    records: Any, kinds: dict[str, _ColumnKind]
) -> tuple[tuple[str, ...], tuple[list[Any], ...]] | None:
    if type(records) is not list or not records or type(records[0]) is not dict:
        return None
    names = tuple(records[0])
    if len(names) != len(kinds) or set(names) != kinds.keys():
        return None
    for record in records:
        # pandas orders a frame's columns as the records name them: the same order in every record keeps it simple.
        if type(record) is not dict or tuple(record) != names:
            return None
    return names, tuple([record[name] for record in records] for name in names)


def _values_fit(values: list[Any], kind: _ColumnKind) -> bool:
    accepts = kind.accepts
    if kind.int_range is None:
        return all(type(value) in accepts for value in values)
    low, high = kind.int_range
    for value in values:
        kind_of = type(value)
        if kind_of is int:
            if not low <= value <= high:
                return False
        elif kind_of not in accepts:
            return False
    return True
