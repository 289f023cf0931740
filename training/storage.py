"""Local paths and s3:// URIs behind one small interface: fetch the data's CSV files, copy checkpoints up and down.

S3 goes through boto3 and honours `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, so an S3-compatible store (moto,
MinIO) works exactly like AWS. Timeouts and retries are short: an unreachable store is reported in seconds.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.errors import InputError

S3_SCHEME = "s3://"


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (or key prefix)."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> "S3Location":
        rest = uri[len(S3_SCHEME) :]
        bucket, _, key = rest.partition("/")
        return cls(bucket=bucket, key=key)

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"

    def child(self, name: str) -> "S3Location":
        prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Location(self.bucket, prefix + name)


def s3_client() -> Any:
    """A boto3 S3 client with short timeouts, pointed at AWS_ENDPOINT_URL(_S3) when set."""
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a boto3/botocore failure."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        code = error.get("Code", "Error")
        message = error.get("Message") or {"404": "Not Found", "403": "Forbidden"}.get(str(code), "")
        return f"{code}: {message}" if message else str(code)
    return " ".join(str(exc).split()) or type(exc).__name__


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def fetch_csv_files(data: str, workdir: Path) -> list[tuple[Path, str]]:
    """The data's CSV files as (local path, name to show in messages), sorted by name; raise InputError if none."""
    if data.startswith(S3_SCHEME):
        return _fetch_s3(data, workdir)
    path = Path(data)
    if not path.exists():
        raise InputError(f"training data not found: {path} does not exist (set --data or SM_CHANNEL_TRAIN)")
    if path.is_file():
        return [(path, str(path))]
    files = sorted(candidate for candidate in path.rglob("*.csv") if candidate.is_file())
    if not files:
        raise InputError(f"training data not found: no .csv files in {path}")
    return [(file, str(file)) for file in files]


def _fetch_s3(uri: str, workdir: Path) -> list[tuple[Path, str]]:
    location = S3Location.parse(uri)
    if not location.bucket:
        raise InputError(f"cannot read {uri}: no bucket in the URI")
    client = s3_client()
    try:
        keys = _csv_keys(client, location)
        if not keys:
            raise InputError(f"training data not found: no .csv objects under {uri}")
        fetched = []
        for key in keys:
            local = workdir / "data" / key
            local.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(location.bucket, key, str(local))
            fetched.append((local, f"{S3_SCHEME}{location.bucket}/{key}"))
        return fetched
    except _aws_errors() as exc:
        raise InputError(f"cannot read {uri}: {describe_error(exc)}") from None


def _csv_keys(client: Any, location: S3Location) -> list[str]:
    """The object itself when the URI names one, else every .csv object below it as a prefix."""
    from botocore.exceptions import ClientError

    if location.key and not location.key.endswith("/"):
        try:
            client.head_object(Bucket=location.bucket, Key=location.key)
            return [location.key]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
                raise
        prefix = location.key + "/"
    else:
        prefix = location.key
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(".csv")]
    return sorted(keys)


def upload(client: Any, local: Path, location: S3Location) -> None:
    client.upload_file(str(local), location.bucket, location.key)


def download(client: Any, location: S3Location, local: Path) -> None:
    local.parent.mkdir(parents=True, exist_ok=True)
    client.download_file(location.bucket, location.key, str(local))


def list_keys(client: Any, prefix: S3Location) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return sorted(keys)


def delete(client: Any, location: S3Location) -> None:
    client.delete_object(Bucket=location.bucket, Key=location.key)
