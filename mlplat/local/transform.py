"""Batch transform on the local platform: SageMaker Batch Transform's contract run over the local S3 store.

A serving process for one registered version answers `GET /execution-parameters`; every object under the input
prefix is split by line (SplitType=Line), sent as MultiRecord batches under MaxPayloadInMB, and its answers are
assembled one line per record, in order, into `<output prefix>/<name>.out` (AssembleWith=Line), as SageMaker names
them.
"""

import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from contracts import registry
from mlplat.clikit import BadInput, Failed
from mlplat.local import services
from mlplat.local.bucket import s3_client
from mlplat.local.state import LocalEndpoints

CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/jsonlines"}
MAX_RECORDS_PER_REQUEST = 1000
"""Records per request at most. SageMaker caps a MultiRecord batch by payload only; the serving image also refuses
more rows than `MLPLAT_MAX_ROWS` (10,000) in one request, so batches stay well below that too."""
OUTPUT_SUFFIX = ".out"
_MODEL = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:/(?P<version>[1-9][0-9]*)|@(?P<alias>[A-Za-z0-9_-]+))?$")
_S3 = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")


@dataclass(frozen=True)
class ModelRef:
    """`NAME`, `NAME/VERSION` or `NAME@ALIAS`; a bare name means the champion."""

    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"{self.name}/{self.version}" if self.version else f"{self.name}@{self.alias or registry.CHAMPION}"


def parse_model(text: str) -> ModelRef:
    """The model reference `--model` names; BadInput when it is not NAME, NAME/VERSION or NAME@ALIAS."""
    match = _MODEL.match(text)
    if match is None:
        raise BadInput(f"--model must be NAME, NAME/VERSION or NAME@ALIAS (got {text!r})")
    return ModelRef(match["name"], match["version"], match["alias"])


def parse_s3_uri(uri: str, option: str) -> tuple[str, str]:
    """(bucket, prefix) of an s3:// URI; BadInput naming the option otherwise."""
    match = _S3.match(uri)
    if match is None:
        raise BadInput(f"{option} must be an s3://bucket/prefix URI (got {uri!r})")
    return match["bucket"], match["prefix"] or ""


def resolve_version(tracking_uri: str, ref: ModelRef) -> str:
    """The registered version `ref` names, asked of the local tracking server; BadInput when there is none."""

    def ask(path: str, **params: str) -> httpx.Response | None:
        """The answer, or None when the registry says there is no such thing (MLflow answers 404 or 400)."""
        response = httpx.get(f"{tracking_uri}/api/2.0/mlflow/{path}", params=params, timeout=10.0)
        if 400 <= response.status_code < 500:
            return None
        return response.raise_for_status()

    if ask("registered-models/get", name=ref.name) is None:
        raise BadInput(f"model {ref.name!r} is not registered in the local registry")
    if ref.version is not None:
        if ask("model-versions/get", name=ref.name, version=ref.version) is None:
            raise BadInput(f"model {ref.name!r} has no version {ref.version} in the local registry")
        return ref.version
    alias = ref.alias or registry.CHAMPION
    found = ask("registered-models/alias", name=ref.name, alias=alias)
    if found is None:
        raise BadInput(f"model {ref.name!r} has no alias {alias!r} in the local registry")
    return str(found.json()["model_version"]["version"])


def output_key(input_prefix: str, key: str, output_prefix: str) -> str:
    """Where SageMaker writes the transform of `key`: its path below the input prefix's folder, plus `.out`, under
    the output prefix (`in/` + `in/a/b.csv` -> `out/a/b.csv.out`; `in/b.csv` as the prefix -> `out/b.csv.out`)."""
    folder = input_prefix.rsplit("/", 1)[0] + "/" if "/" in input_prefix else ""
    base = output_prefix if not output_prefix or output_prefix.endswith("/") else output_prefix + "/"
    return base + key[len(folder) :] + OUTPUT_SUFFIX


def batches(records: Sequence[bytes], max_bytes: int, max_records: int = MAX_RECORDS_PER_REQUEST) -> Iterator[bytes]:
    """MultiRecord bodies: consecutive records, one a line, each body under `max_bytes` and `max_records` (a record
    alone above `max_bytes` is still sent alone, for the server to refuse with 413 as SageMaker's would)."""
    body: list[bytes] = []
    size = 0
    for record in records:
        line = record + b"\n"
        if body and (size + len(line) > max_bytes or len(body) >= max_records):
            yield b"".join(body)
            body, size = [], 0
        body.append(line)
        size += len(line)
    if body:
        yield b"".join(body)


@dataclass
class TransformReport:
    """What a local transform did."""

    model: str
    version: str
    records: int = 0
    requests: int = 0
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "records": self.records,
            "requests": self.requests,
            "outputs": self.outputs,
            "seconds": round(self.seconds, 3),
        }


def _input_keys(s3: Any, bucket: str, prefix: str, uri: str) -> list[str]:
    """The objects under `prefix` (S3Prefix), folder markers left out; BadInput when there are none."""
    try:
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix))
    except s3.exceptions.NoSuchBucket:
        raise BadInput(f"--input {uri}: no bucket {bucket!r} in the local S3 store") from None
    keys = [item["Key"] for page in pages for item in page.get("Contents", []) if not item["Key"].endswith("/")]
    if not keys:
        raise BadInput(f"--input {uri} holds no objects")
    return keys


class _Server:
    """The serving process for one version, and the transform calls it answers."""

    def __init__(self, url: str, content_type: str, client: httpx.Client) -> None:
        self.url = url
        self.headers = {"Content-Type": content_type, "Accept": content_type}
        self.client = client

    def execution_parameters(self) -> tuple[int, int]:
        """(MaxConcurrentTransforms, MaxPayloadInMB in bytes), as SageMaker asks before the first request."""
        found = self.client.get(f"{self.url}/execution-parameters").raise_for_status().json()
        return int(found["MaxConcurrentTransforms"]), int(found["MaxPayloadInMB"]) * 1024 * 1024

    def invoke(self, batch: tuple[int, bytes]) -> list[bytes]:
        """The answer lines to the records of `batch` (its first line's number, its body). A refusal names the lines:
        a 4xx is the input's fault (BadInput), anything else the server's (Failed)."""
        first, body = batch
        sent = body.count(b"\n")
        response = self.client.post(f"{self.url}/invocations", content=body, headers=self.headers)
        where = f"lines {first}-{first + sent - 1}"
        if response.status_code != 200:
            error = BadInput if 400 <= response.status_code < 500 else Failed
            raise error(f"{where}: /invocations answered {response.status_code}: {response.text.strip()[:300]}")
        lines = response.content.splitlines()
        if len(lines) != sent:
            raise Failed(f"{where}: /invocations answered {len(lines)} lines for {sent} records")
        return lines


def _numbered(bodies: list[bytes]) -> list[tuple[int, bytes]]:
    """Each body with the number of its first line in the object (from 1)."""
    numbered: list[tuple[int, bytes]] = []
    first = 1
    for body in bodies:
        numbered.append((first, body))
        first += body.count(b"\n")
    return numbered


def transform_objects(
    server_url: str, s3: Any, keys: list[str], source: tuple[str, str], target: tuple[str, str], content_type: str
) -> tuple[int, int, list[str]]:
    """Transform each object in `keys` (bucket and prefix of `source`) into `target`; (records, requests, outputs)."""
    records = requests = 0
    outputs: list[str] = []
    with httpx.Client(timeout=120.0) as client:
        server = _Server(server_url, content_type, client)
        concurrency, max_bytes = server.execution_parameters()
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for key in keys:
                lines = s3.get_object(Bucket=source[0], Key=key)["Body"].read().splitlines()
                bodies = _numbered(list(batches(lines, max_bytes)))
                try:
                    answered = [line for chunk in pool.map(server.invoke, bodies) for line in chunk]
                except (BadInput, Failed) as exc:
                    raise type(exc)(f"s3://{source[0]}/{key} {exc}") from None
                out = output_key(source[1], key, target[1])
                s3.put_object(Bucket=target[0], Key=out, Body=b"".join(line + b"\n" for line in answered))
                records += len(lines)
                requests += len(bodies)
                outputs.append(f"s3://{target[0]}/{out}")
    return records, requests, outputs


def run_transform(
    endpoints: LocalEndpoints,
    model: str,
    input_uri: str,
    output_uri: str,
    data_format: str = "csv",
    serving_command: list[str] | None = None,
    on_step: Callable[[str], None] = lambda _: None,
) -> TransformReport:
    """Start a serving process for the registered version `model` names, transform every object under `input_uri`
    into `output_uri`, and stop the process again."""
    if data_format not in CONTENT_TYPES:
        raise BadInput(f"--format must be one of {', '.join(CONTENT_TYPES)} (got {data_format!r})")
    ref = parse_model(model)
    source = parse_s3_uri(input_uri, "--input")
    target = parse_s3_uri(output_uri, "--output")
    started = time.monotonic()
    try:
        version = resolve_version(endpoints.mlflow_url, ref)
    except httpx.HTTPError as exc:
        raise Failed(f"the local tracking server did not answer: {exc}") from None
    s3 = s3_client(endpoints.s3_url)
    keys = _input_keys(s3, source[0], source[1], input_uri)
    try:
        s3.head_bucket(Bucket=target[0])
    except s3.exceptions.ClientError:
        raise BadInput(f"--output {output_uri}: no bucket {target[0]!r} in the local S3 store") from None
    on_step(f"starting a server for {ref.name}/{version}")
    log = endpoints.home / "logs" / f"transform-{ref.name}-{version}.log"
    try:
        server = services.start_serving(
            services.free_port(),
            log,
            tracking_uri=endpoints.mlflow_url,
            model_uri=registry.version_uri(ref.name, version),
            env={**endpoints.aws_env, "MLPLAT_MODEL_CACHE": str(endpoints.home / "model-cache")},
            command=serving_command,
            cwd=_workdir(endpoints.home),
        )
    except services.ServiceError as exc:
        raise Failed(str(exc)) from None
    try:
        on_step(f"transforming {len(keys)} object(s) from {input_uri}")
        records, requests, outputs = transform_objects(server.url, s3, keys, source, target, CONTENT_TYPES[data_format])
    except httpx.HTTPError as exc:
        raise Failed(f"the transform's server stopped answering: {exc}; see {log}") from None
    finally:
        server.stop()
    return TransformReport(ref.name, version, records, requests, outputs, time.monotonic() - started)


def _workdir(home: Path) -> Path:
    """An empty working directory, so nothing in it shadows a package the server imports."""
    work = home / "work"
    work.mkdir(mode=0o700, exist_ok=True)
    return work
