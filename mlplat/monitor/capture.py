"""Reading endpoint data capture: SageMaker's JSON Lines layout, from a local directory or an S3 prefix.

One line is one invocation, a record of SageMaker's format (its fields are named in `contracts.capture`).

Files live under `data-capture/<endpoint>/[<variant>/]YYYY/MM/DD/HH/*.jsonl`; SageMaker adds the variant directory,
mlplat's own serving writer does not, and both are read. mlplat's writer keeps the model name and version in
`eventMetadata`; records from elsewhere may carry them as `customAttributes` (`model-version=3;model-name=abalone`).
Request bodies in every shape the serving container accepts (JSON or CSV) become feature rows.
"""

import base64
import binascii
import csv
import io
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contracts import capture as rec

_HOUR_PATH = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+\.jsonl$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class CaptureError(ValueError):
    """Capture that cannot be read at all (no such place, nothing in the window); the message says which."""


@dataclass(frozen=True)
class CapturePayload:
    """One side of an invocation as captured: the body text, its encoding and the observed content type."""

    data: str
    encoding: str
    content_type: str

    def body(self) -> bytes:
        """The body bytes, base64 undone when the capture encoded it."""
        if self.encoding.upper() == "BASE64":
            return base64.b64decode(self.data, validate=False)
        return self.data.encode("utf-8")


@dataclass(frozen=True)
class CaptureRecord:
    """One captured invocation."""

    event_id: str
    time: datetime
    request: CapturePayload
    response: CapturePayload | None
    model_name: str | None = None
    model_version: str | None = None


@dataclass
class CaptureSet:
    """The records of a window and what could not be read, with where they came from."""

    location: str
    records: list[CaptureRecord] = field(default_factory=list)
    files: int = 0
    unreadable: int = 0

    @property
    def model_versions(self) -> dict[tuple[str | None, str | None], int]:
        """How many records each (model name, model version) served, most first."""
        counts: dict[tuple[str | None, str | None], int] = {}
        for record in self.records:
            key = (record.model_name, record.model_version)
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))


def parse_duration(text: str) -> timedelta:
    """`30m`, `24h`, `7d`, `2w`, `90s` as a timedelta; raises ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"{text!r} is not a duration like 30m, 24h or 7d")
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _custom_attributes(value: Any) -> dict[str, str]:
    parts: list[str] = []
    if isinstance(value, str):
        parts = re.split(r"[;,]", value)
    elif isinstance(value, list):
        parts = [p for item in value if isinstance(item, str) for p in re.split(r"[;,]", item)]
    pairs = (p.split("=", 1) for p in parts if "=" in p)
    return {k.strip().lower(): v.strip() for k, v in pairs}


def _payload(value: Any) -> CapturePayload | None:
    if not isinstance(value, Mapping) or not isinstance(value.get(rec.DATA), str):
        return None
    return CapturePayload(
        data=value[rec.DATA],
        encoding=str(value.get(rec.ENCODING) or rec.ENCODING_BASE64),
        content_type=str(value.get(rec.CONTENT_TYPE) or ""),
    )


def parse_record(line: str) -> CaptureRecord | None:
    """One JSON Lines record, or None when it is not a capture record with a request and a time."""
    try:
        document = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(document, Mapping):
        return None
    capture = document.get(rec.CAPTURE_DATA)
    meta = document.get(rec.EVENT_METADATA)
    if not isinstance(capture, Mapping) or not isinstance(meta, Mapping):
        return None
    request = _payload(capture.get(rec.ENDPOINT_INPUT))
    time = _parse_time(meta.get(rec.INFERENCE_TIME) or meta.get("inferenceTimestamp"))
    if request is None or time is None:
        return None
    custom = _custom_attributes(meta.get(rec.CUSTOM_ATTRIBUTES))
    name = meta.get(rec.MODEL_NAME) or custom.get("model-name")
    version = meta.get(rec.MODEL_VERSION) or custom.get("model-version")
    return CaptureRecord(
        event_id=str(meta.get(rec.EVENT_ID) or ""),
        time=time,
        request=request,
        response=_payload(capture.get(rec.ENDPOINT_OUTPUT)),
        model_name=str(name) if name else None,
        model_version=str(version) if version is not None and version != "" else None,
    )


def _hour_of(path: str) -> datetime | None:
    match = _HOUR_PATH.search(path)
    if not match:
        return None
    year, month, day, hour = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None


def _in_window(path: str, since: datetime | None) -> bool:
    """Skip whole hour directories that ended before the window started (records are checked again later)."""
    hour = _hour_of(path)
    return since is None or hour is None or hour + timedelta(hours=1) > since


def s3_client() -> Any:
    """A boto3 S3 client; `AWS_ENDPOINT_URL` (the local platform's moto server) is honoured."""
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` as (bucket, prefix)."""
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise CaptureError(f"{uri!r} is not an s3://bucket/prefix URI")
    return bucket, prefix


def _lines_s3(uri: str, since: datetime | None, client: Any) -> Iterator[tuple[str, Iterator[str]]]:
    bucket, prefix = split_s3_uri(uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as error:
        raise CaptureError(f"cannot list {uri}: {error}") from None
    for key in sorted(keys):
        if key.endswith(".jsonl") and _in_window(key, since):
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")
            yield f"s3://{bucket}/{key}", iter(body.splitlines())


def _lines_dir(root: Path, since: datetime | None) -> Iterator[tuple[str, Iterator[str]]]:
    if not root.is_dir():
        raise CaptureError(f"{root} is not a directory")
    for path in sorted(root.rglob("*.jsonl")):
        relative = path.relative_to(root).as_posix()
        if _in_window(relative, since):
            yield str(path), iter(path.read_text(encoding="utf-8", errors="replace").splitlines())


def read_captures(
    location: str, since: timedelta | None = None, now: datetime | None = None, client: Any = None
) -> CaptureSet:
    """Every capture record under `location` (a directory or `s3://bucket/prefix`) newer than `now - since`."""
    cutoff = None if since is None else (now or datetime.now(UTC)) - since
    if location.startswith("s3://"):
        files = _lines_s3(location, cutoff, client or s3_client())
    else:
        files = _lines_dir(Path(location), cutoff)
    result = CaptureSet(location=location)
    for _, lines in files:
        result.files += 1
        for line in lines:
            if not line.strip():
                continue
            record = parse_record(line)
            if record is None:
                result.unreadable += 1
            elif cutoff is None or record.time >= cutoff:
                result.records.append(record)
    result.records.sort(key=lambda r: r.time)
    return result


# --- bodies to feature rows ------------------------------------------------------------------------------------


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _csv_rows(text: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    rows = [row for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if row]
    if not rows:
        return []
    names: Sequence[str] = columns
    # As the server does: a first row of non-numeric cells only is the header.
    if rec.is_csv_header(rows[0]):
        names = [cell.strip() for cell in rows.pop(0)]
    return [dict(zip(names, _csv_values(row), strict=False)) for row in rows]


def _csv_values(row: Sequence[str]) -> list[Any]:
    out: list[Any] = []
    for cell in row:
        try:
            out.append(float(cell))
        except ValueError:
            out.append(cell.strip())
    return out


def _json_rows(payload: Any, columns: Sequence[str]) -> list[dict[str, Any]]:
    if isinstance(payload, Mapping):
        if "dataframe_split" in payload:
            split = payload["dataframe_split"]
            if not isinstance(split, Mapping):
                return []
            names = split.get("columns") or columns
            return [dict(zip(names, row, strict=False)) for row in split.get("data") or [] if isinstance(row, list)]
        for key in ("inputs", "instances", "dataframe_records"):
            if key in payload:
                value = payload[key]
                if isinstance(value, Mapping):
                    lists = {k: v for k, v in value.items() if isinstance(v, list)}
                    length = max((len(v) for v in lists.values()), default=0)
                    return [{k: v[i] for k, v in lists.items() if i < len(v)} for i in range(length)]
                return _json_rows(value, columns)
        return []
    if isinstance(payload, list):
        rows: list[dict[str, Any]] = []
        for row in payload:
            if isinstance(row, Mapping):
                rows.append(dict(row))
            elif isinstance(row, list):
                rows.append(dict(zip(columns, row, strict=False)))
        return rows
    return []


def _decoded(payload: CapturePayload) -> tuple[str, bool] | None:
    """The body as text and whether it is CSV; None when it does not decode."""
    try:
        text = payload.body().decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    kind = _media(payload.content_type)
    return text, kind == "text/csv" or (not kind and payload.encoding.upper() == "CSV")


def request_rows(payload: CapturePayload, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The feature rows of a captured request; positional rows are named by `columns` (the training order)."""
    decoded = _decoded(payload)
    if decoded is None:
        return []
    text, is_csv = decoded
    if is_csv:
        return _csv_rows(text, columns)
    try:
        return _json_rows(json.loads(text), columns)
    except json.JSONDecodeError:
        return []


def response_predictions(payload: CapturePayload) -> list[Any]:
    """The predictions of a captured response: `{"predictions": [...]}`, a bare list, or CSV one a line."""
    decoded = _decoded(payload)
    if decoded is None:
        return []
    text, is_csv = decoded
    if is_csv:
        return [_first(_csv_values(row)) for row in csv.reader(io.StringIO(text)) if row]
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return []
    values = document.get("predictions") if isinstance(document, Mapping) else document
    if not isinstance(values, list):
        return []
    return [_first(v) for v in values]


def _first(value: Any) -> Any:
    """A scalar prediction: the first element of a one-output row (`[3.2]`) or the value itself."""
    if isinstance(value, list | tuple):
        return value[0] if value else None
    if isinstance(value, Mapping):
        return next(iter(value.values()), None)
    return value


@dataclass(frozen=True)
class CaptureTable:
    """Capture turned into columns of feature values, plus the predictions, ready for `drift.compare`."""

    columns: dict[str, list[Any]]
    predictions: list[Any]
    rows: int
    unparsed: int


def to_table(records: Sequence[CaptureRecord], columns: Sequence[str]) -> CaptureTable:
    """All records' rows as columns; `columns` names positional values and orders the result."""
    out: dict[str, list[Any]] = {name: [] for name in columns}
    predictions: list[Any] = []
    rows = 0
    unparsed = 0
    for record in records:
        parsed = request_rows(record.request, columns)
        if not parsed:
            unparsed += 1
            continue
        for row in parsed:
            for name, value in row.items():
                out.setdefault(str(name), []).append(value)
        rows += len(parsed)
        if record.response is not None:
            predictions.extend(p for p in response_predictions(record.response) if p is not None)
    return CaptureTable(
        columns={k: v for k, v in out.items() if v}, predictions=predictions, rows=rows, unparsed=unparsed
    )
