"""Request bodies to column-major tables, and predictions to response bodies, without pandas.

Every JSON shape MLflow's scoring server accepts (plus TF-Serving's `instances` and plain CSV) is normalised to one
`Table`: either named columns or positional rows already transposed into columns. The model then checks the table
against its own schema; this module only checks syntax and shape that holds for every model.
"""

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson

from contracts.capture import is_csv_header
from serving.protocol import (
    BAD_REQUEST,
    CSV,
    JSON,
    JSON_LINES,
    KEY_DATAFRAME_RECORDS,
    KEY_DATAFRAME_SPLIT,
    KEY_INPUTS,
    KEY_INSTANCES,
    KEY_PARAMS,
    KEY_PREDICTIONS,
    NOT_ACCEPTABLE,
    UNPROCESSABLE,
    UNSUPPORTED_MEDIA_TYPE,
    ServingError,
    quote_names,
    quote_value,
)

FLOAT32_MAX = float(np.finfo(np.float32).max)
JSON_KEYS = (KEY_INPUTS, KEY_INSTANCES, KEY_DATAFRAME_SPLIT, KEY_DATAFRAME_RECORDS)
_SHAPE_HELP = (
    "the JSON body must be an object with one of 'inputs', 'instances', 'dataframe_split', 'dataframe_records'"
)


@dataclass(frozen=True)
class Table:
    """A request's rows, column-major.

    `names` is None when the client sent positional rows; the model then maps them to its columns in order.
    `text` is True when every value is a string that still has to be parsed (CSV).
    """

    names: tuple[str, ...] | None
    columns: tuple[Sequence[Any], ...]
    n_rows: int
    text: bool = False
    # The request's `params` object (MLflow's scoring protocol), when it sent one.
    params: dict[str, Any] | None = None


def media_type(header: str | None) -> str:
    """The bare, lower-case media type of a Content-Type header (parameters such as charset dropped)."""
    if not header:
        return ""
    return header.split(";", 1)[0].strip().lower()


def negotiate(accept: str | None) -> str:
    """The response media type for an Accept header: JSON unless the client prefers CSV; 406 when neither fits."""
    if not accept:
        return JSON
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        parts = item.split(";")
        kind = parts[0].strip().lower()
        quality = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if kind in (JSON, "application/*", "*/*", "*"):
            offer = JSON
        elif kind in (CSV, "text/*"):
            offer = CSV
        elif kind == JSON_LINES:
            offer = JSON_LINES
        else:
            continue
        candidate = (-quality, position, offer)
        if best is None or candidate < best:
            best = candidate
    if best is None:
        raise ServingError(NOT_ACCEPTABLE, f"cannot produce any type in Accept; supported: {JSON}, {CSV}, {JSON_LINES}")
    return best[2]


def decode(body: bytes, content_type: str | None, max_rows: int) -> Table:
    """Parse a request body of a supported media type into a `Table` of at most `max_rows` rows."""
    kind = media_type(content_type)
    if kind == JSON:
        return decode_json(body, max_rows)
    if kind == CSV:
        return decode_csv(body, max_rows)
    if kind == JSON_LINES:
        return _from_rows(json_lines(body), max_rows)
    shown = quote_value(kind) if kind else "none"
    raise ServingError(
        UNSUPPORTED_MEDIA_TYPE, f"unsupported Content-Type {shown}; supported: {JSON}, {CSV}, {JSON_LINES}"
    )


def _check_rows(n_rows: int, max_rows: int) -> None:
    if n_rows == 0:
        raise ServingError(BAD_REQUEST, "the request has no rows")
    if n_rows > max_rows:
        raise ServingError(UNPROCESSABLE, f"{n_rows} rows exceed the limit of {max_rows} rows per request")


def decode_json(body: bytes, max_rows: int) -> Table:
    """A JSON body in any of the accepted shapes (see `JSON_KEYS`), or a bare list of rows or records."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        near = body[max(0, error.pos - 1) : error.pos + 9]
        if b"NaN" in near or b"Infinity" in near or "infinity" in error.msg:
            raise ServingError(UNPROCESSABLE, f"NaN or infinity is not allowed ({where})") from None
        raise ServingError(BAD_REQUEST, f"malformed JSON: {error.msg} ({where})") from None
    if isinstance(payload, list):
        return _from_rows(payload, max_rows)
    if not isinstance(payload, dict):
        raise ServingError(BAD_REQUEST, _SHAPE_HELP)
    present = [key for key in JSON_KEYS if key in payload]
    if len(present) != 1:
        if len(present) > 1:
            raise ServingError(BAD_REQUEST, f"the JSON body has more than one of {', '.join(present)}")
        raise ServingError(BAD_REQUEST, _SHAPE_HELP)
    key = present[0]
    value = payload[key]
    params = payload.get(KEY_PARAMS)
    if params is not None and not isinstance(params, dict):
        raise ServingError(BAD_REQUEST, f"'{KEY_PARAMS}' must be an object of parameter names and values")
    if key == KEY_DATAFRAME_SPLIT:
        table = _from_split(value, max_rows)
    elif key in (KEY_INPUTS, KEY_INSTANCES) and isinstance(value, dict):
        table = _from_columnar(key, value, max_rows)
    elif not isinstance(value, list):
        raise ServingError(BAD_REQUEST, f"'{key}' must be a list of rows")
    else:
        table = _from_rows(value, max_rows)
    return table if params is None else replace(table, params=params)


def json_lines(body: bytes) -> list[Any]:
    """The values of a JSON Lines body, one per non-blank line, in order."""
    values = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values.append(orjson.loads(line))
        except orjson.JSONDecodeError as error:
            raise ServingError(BAD_REQUEST, f"malformed JSON Lines at line {number}: {error.msg}") from None
    return values


def _from_rows(rows: list[Any], max_rows: int) -> Table:
    """A list of positional rows (lists) or of records (objects keyed by column name)."""
    _check_rows(len(rows), max_rows)
    first = rows[0]
    if isinstance(first, dict):
        return _from_records(rows)
    if not isinstance(first, list):
        raise ServingError(BAD_REQUEST, "each row must be a list of values or an object keyed by column name")
    width = len(first)
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            raise ServingError(BAD_REQUEST, f"row {index} is not a list of values")
        if len(row) != width:
            raise ServingError(BAD_REQUEST, f"row {index} has {len(row)} values; row 0 has {width}")
    if width == 0:
        raise ServingError(BAD_REQUEST, "row 0 has no values")
    return Table(names=None, columns=tuple(zip(*rows, strict=True)), n_rows=len(rows))


def _from_records(records: list[Any]) -> Table:
    first = records[0]
    names = tuple(first)
    keys = first.keys()
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ServingError(BAD_REQUEST, f"row {index} is not an object keyed by column name")
        if record.keys() != keys:
            missing = sorted(set(keys) - set(record))
            extra = sorted(set(record) - set(keys))
            problem = f"lacks {quote_names(missing)}" if missing else f"has extra {quote_names(extra)}"
            raise ServingError(BAD_REQUEST, f"row {index} {problem} compared with row 0")
    columns = tuple([record[name] for record in records] for name in names)
    return Table(names=names, columns=columns, n_rows=len(records))


def _from_split(value: Any, max_rows: int) -> Table:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise ServingError(BAD_REQUEST, "'dataframe_split' must be an object with 'columns' and 'data'")
    names = value.get("columns")
    table = _from_rows(value["data"], max_rows)
    if table.names is not None:
        raise ServingError(BAD_REQUEST, "'dataframe_split.data' must be a list of lists")
    if names is None:
        return table
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ServingError(BAD_REQUEST, "'dataframe_split.columns' must be a list of column names")
    if len(names) != len(table.columns):
        raise ServingError(
            BAD_REQUEST, f"'dataframe_split' names {len(names)} columns but its rows have {len(table.columns)} values"
        )
    _check_unique(names)
    return Table(names=tuple(names), columns=table.columns, n_rows=table.n_rows)


def _from_columnar(key: str, value: dict[str, Any], max_rows: int) -> Table:
    """`{"inputs": {"col": [v, ...], ...}}`: MLflow's columnar tensor input."""
    if not value:
        raise ServingError(BAD_REQUEST, "the request has no rows")
    columns = []
    n_rows: int | None = None
    for name, column in value.items():
        if not isinstance(column, list):
            raise ServingError(BAD_REQUEST, f"'{key}' column {quote_value(name)} must be a list of values")
        if n_rows is None:
            n_rows = len(column)
            _check_rows(n_rows, max_rows)
        elif len(column) != n_rows:
            raise ServingError(BAD_REQUEST, f"'{key}' columns have different lengths")
        columns.append(column)
    assert n_rows is not None
    return Table(names=tuple(value), columns=tuple(columns), n_rows=n_rows)


def decode_csv(body: bytes, max_rows: int) -> Table:
    """CSV with or without a header row: a first row made only of non-numeric cells is taken as the header."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ServingError(BAD_REQUEST, "malformed CSV: the body is not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        rows = [row for row in reader if row]
    except csv.Error as error:
        raise ServingError(BAD_REQUEST, f"malformed CSV at line {reader.line_num}: {error}") from None
    names: tuple[str, ...] | None = None
    if rows and is_csv_header(rows[0]):
        names = tuple(cell.strip() for cell in rows[0])
        rows = rows[1:]
        _check_unique(names)
    _check_rows(len(rows), max_rows)
    width = len(names) if names is not None else len(rows[0])
    for index, row in enumerate(rows):
        if len(row) != width:
            expected = "the header has" if names is not None else "row 0 has"
            raise ServingError(BAD_REQUEST, f"row {index} has {len(row)} values; {expected} {width}")
    return Table(names=names, columns=tuple(zip(*rows, strict=True)), n_rows=len(rows), text=True)


def _check_unique(names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ServingError(BAD_REQUEST, f"column {quote_value(name)} appears more than once")
        seen.add(name)


def numeric_block(names: Sequence[str], columns: Sequence[Sequence[Any]], text: bool) -> np.ndarray:
    """Several columns as one float64 [columns, rows] array, strictly: numbers only (CSV cells parsed), no booleans,
    no NaN or infinity. One conversion for all columns; a failure is then pinned to its column and row."""
    if text:
        try:
            block = np.array([[float(value) for value in column] for column in columns], dtype=np.float64)
        except ValueError:
            for name, column in zip(names, columns, strict=True):
                numeric_column(name, column, text)
            raise  # pragma: no cover - numeric_column raised for the offending column
    else:
        kinds: set[type] = set()
        for column in columns:
            kinds.update(map(type, column))
        if not kinds <= {int, float}:
            for name, column in zip(names, columns, strict=True):
                numeric_column(name, column, text)
        try:
            block = np.array(columns, dtype=np.float64)
        except OverflowError:
            for name, column in zip(names, columns, strict=True):
                numeric_column(name, column, text)
            raise  # pragma: no cover
    finite = np.isfinite(block)
    if not finite.all():
        for name, ok in zip(names, finite, strict=True):
            if not ok.all():
                index = int(np.argmin(ok))
                raise ServingError(
                    UNPROCESSABLE, f"column {quote_value(name)}, row {index}: NaN or infinity is not allowed"
                )
    # The network computes in float32: a larger value would silently become infinity there.
    fits = np.abs(block) <= FLOAT32_MAX
    if not fits.all():
        for name, ok, column in zip(names, fits, block, strict=True):
            if not ok.all():
                index = int(np.argmin(ok))
                raise ServingError(
                    UNPROCESSABLE,
                    f"column {quote_value(name)}, row {index}: {float(column[index]):g} is outside the float32 range",
                )
    return block


def numeric_column(name: str, values: Sequence[Any], text: bool) -> np.ndarray:
    """One column as float64, with the same rules (and messages) as `numeric_block`."""
    if text:
        try:
            array = np.array([float(value) for value in values], dtype=np.float64)
        except ValueError:
            index, bad = _first_unparseable(values)
            raise ServingError(
                UNPROCESSABLE, f"column {quote_value(name)}, row {index}: expected a number, got {quote_value(bad)}"
            ) from None
    else:
        kinds = set(map(type, values))
        if not kinds <= {int, float}:
            index = next(i for i, value in enumerate(values) if type(value) not in (int, float))
            raise ServingError(
                UNPROCESSABLE,
                f"column {quote_value(name)}, row {index}: expected a number, got {quote_value(values[index])}",
            )
        try:
            array = np.array(values, dtype=np.float64)
        except OverflowError:
            index = next(i for i, value in enumerate(values) if not _fits(value))
            raise ServingError(
                UNPROCESSABLE, f"column {quote_value(name)}, row {index}: NaN or infinity is not allowed"
            ) from None
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.argmin(finite))
        raise ServingError(UNPROCESSABLE, f"column {quote_value(name)}, row {index}: NaN or infinity is not allowed")
    return array


def _fits(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _first_unparseable(values: Sequence[Any]) -> tuple[int, Any]:
    for index, value in enumerate(values):
        try:
            float(value)
        except ValueError:
            return index, value
    return 0, values[0]  # pragma: no cover - only called after a parse failed


def encode(predictions: Any, accept: str) -> tuple[bytes, str]:
    """Predictions (a numpy array or plain list) as a JSON `{"predictions": [...]}` body or CSV, one row a line."""
    if accept == CSV:
        return _encode_csv(predictions), CSV
    if accept == JSON_LINES:
        items = predictions.tolist() if isinstance(predictions, np.ndarray) else list(predictions)
        return b"".join(orjson.dumps(item) + b"\n" for item in items), JSON_LINES
    return orjson.dumps({KEY_PREDICTIONS: predictions}, option=orjson.OPT_SERIALIZE_NUMPY), JSON


def _encode_csv(predictions: Any) -> bytes:
    if isinstance(predictions, np.ndarray) and predictions.ndim == 1:
        # str() of a numpy scalar is its shortest round-trip form, the same digits the JSON body has.
        return "".join([str(value) + "\n" for value in predictions]).encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    rows = predictions.tolist() if isinstance(predictions, np.ndarray) else list(predictions)
    if rows and isinstance(rows[0], dict):
        header = list(rows[0])
        writer.writerow(header)
        writer.writerows([row.get(name) for name in header] for row in rows)
    else:
        writer.writerows(row if isinstance(row, list | tuple) else [row] for row in rows)
    return out.getvalue().encode()
