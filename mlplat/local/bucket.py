"""The local platform's bucket: its name and layout, the reference data set, and snapshots that survive `down`."""

import csv
import json
import shutil
import time
from pathlib import Path
from typing import Any

from contracts import bucket as layout
from mlplat.local import services
from mlplat.local import state as st

DATASET_NAME = "abalone"
DATASET_VERSION = "v1"
TARGET_COLUMN = "Rings"


def bucket_name(stack: str) -> str:
    """The local bucket of a stack (the cloud auto-names its bucket; locally one name per stack is enough)."""
    return f"mlplat-{stack}-artifacts"


def reference_data() -> Path:
    """The reference data set shipped with the training package (in the project, or the installed package)."""
    shipped = st.PROJECT_ROOT / "training" / "data" / f"{DATASET_NAME}.csv"
    if shipped.is_file():
        return shipped
    from importlib.resources import files

    return Path(str(files("training") / "data" / f"{DATASET_NAME}.csv"))


def sample_request(data: Path, rows: int = 1) -> tuple[dict[str, Any], list[str]]:
    """A real invocation body (`dataframe_split`) from the first `rows` of the data set, and their true targets."""
    with data.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        target = header.index(TARGET_COLUMN)
        body_rows: list[list[Any]] = []
        truths: list[str] = []
        for row in reader:
            values: list[Any] = [_number_or_text(v) for i, v in enumerate(row) if i != target]
            body_rows.append(values)
            truths.append(row[target])
            if len(body_rows) >= rows:
                break
    columns = [c for i, c in enumerate(header) if i != target]
    return {"dataframe_split": {"columns": columns, "data": body_rows}}, truths


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def s3_client(endpoint_url: str) -> Any:
    import boto3

    env = services.LOCAL_AWS_ENV
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def ensure_bucket(client: Any, bucket: str) -> None:
    """The bucket and its four prefixes (folder markers), as the cloud lays them out; idempotent."""
    try:
        client.head_bucket(Bucket=bucket)
    except client.exceptions.ClientError:
        client.create_bucket(Bucket=bucket)
    for prefix in layout.FOLDERS:
        client.put_object(Bucket=bucket, Key=prefix, Body=b"")


def snapshot_bucket(client: Any, bucket: str, target: Path) -> int:
    """Copy every object of `bucket` under `target` (replacing it); returns the object count."""
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue
            path = staging / key
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            client.download_file(bucket, key, str(path))
            path.chmod(0o600)
            count += 1
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    _snapshot_marker(target).write_text(json.dumps({"taken_at": time.time(), "objects": count}) + "\n")
    return count


def restore_bucket(client: Any, bucket: str, source: Path) -> float | None:
    """Upload a snapshot taken by `down` into a fresh bucket; returns when it was taken, None when there is none."""
    marker = _snapshot_marker(source)
    if not source.is_dir() or not marker.is_file():
        return None
    for path in source.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, path.relative_to(source).as_posix())
    return float(json.loads(marker.read_text())["taken_at"])


def _snapshot_marker(snapshot: Path) -> Path:
    return snapshot.with_name(snapshot.name + ".json")
