"""`mlplat release`: deliver a registered model version to a stack's SageMaker endpoints as a pinned artifact.

A release resolves the version (`--alias champion` by default, or `--version N`) in the MLflow registry, packs its
MLflow model directory as a reproducible `model.tar.gz` (sorted entries, zeroed times and owners, so the same version
always packs to the same bytes), uploads it to `models/<name>/<version>/model.tar.gz` in the stack's bucket with its
SHA-256 as object metadata and as S3's own integrity checksum, tags the registry version with that SHA-256, and pins
`modelVersion` and `modelSha256` of every endpoint serving the model in `stacks/Pulumi.<env>.yaml`. The next
`pulumi up` then creates a new Model and EndpointConfiguration and rolls the endpoint over blue/green.

`--promote-from staging` does not touch the registry: it copies the exact artifact staging pins from the staging
bucket to this stack's bucket, refusing it unless its bytes hash to the checksum staging pinned.

Everything that can fail is checked before anything is written: the stack file is edited last, atomically, and only
after the artifact is in the bucket and verified, so a failed release leaves nothing half-done.
"""

import base64
import gzip
import hashlib
import json
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from components import config as stack_config
from contracts import bucket as layout
from contracts.bucket import MODEL_ARCHIVE
from contracts.registry import CHAMPION, TAG_ARTIFACT_PREFIX
from mlplat import clikit
from mlplat.outputs import CloudError, StackOutputs, check_tracking_uri, load_outputs
from mlplat.release_pin import ReleaseError as ReleaseError
from mlplat.release_pin import check_environment, read_stack_file, staging_pin, validate_text
from mlplat.release_pin import pin_text as pin_text
from mlplat.release_pin import write_atomic as write_atomic

SHA256_METADATA = "sha256"  # S3 user metadata key: x-amz-meta-sha256
SHA256_TAG = "mlplat.sha256"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ReleaseResult:
    """What a release did, as printed and as `--json`."""

    stack: str
    model: str
    version: int
    sha256: str
    artifact: str
    stack_file: str
    endpoints: list[str]
    uploaded: bool
    promoted_from: str | None = None


def artifact_key(model: str, version: int) -> str:
    """Where a model version's archive lives in a stack's bucket."""
    return layout.model_archive_key(model, version)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- packing ----------------------------------------------------------------------------------------------------


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Times, owners and umask-dependent modes would make two packs of the same files differ.
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def pack_model_dir(model_dir: Path, archive: Path) -> str:
    """Pack an MLflow model directory (MLmodel at the archive's root, as SageMaker unpacks it into /opt/ml/model)."""
    if not (model_dir / "MLmodel").is_file():
        raise ReleaseError(f"{model_dir} is not an MLflow model directory (no MLmodel file at its root)")
    entries = sorted(p for p in model_dir.rglob("*") if not p.is_symlink())
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in entries:
            tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False, filter=_normalize)
    return sha256_file(archive)


# --- registry -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryVersion:
    """A resolved model version: what the registry says about it."""

    name: str
    version: int
    run_id: str | None
    source: str


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def resolve_version(tracking_uri: str, model: str, alias: str | None, version: int | None) -> RegistryVersion:
    """The registry version named by `version`, else by `alias`; a clear ReleaseError when either is missing."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    where = f"the registry at {tracking_uri}"
    try:
        client.get_registered_model(model)
    except MlflowException as exc:
        if _not_found(exc):
            raise ReleaseError(f"model {model!r} is not in {where}") from None
        raise ReleaseError(f"cannot read model {model!r} from {where}: {exc.message}") from None
    try:
        if version is not None:
            found = client.get_model_version(model, str(version))
        else:
            found = client.get_model_version_by_alias(model, alias or CHAMPION)
    except MlflowException as exc:
        if not _not_found(exc) and "alias" not in str(exc.message).lower():
            raise ReleaseError(f"cannot read model {model!r} from {where}: {exc.message}") from None
        what = f"version {version}" if version is not None else f"alias {alias or CHAMPION!r}"
        raise ReleaseError(f"model {model!r} has no {what} in {where}") from None
    return RegistryVersion(name=model, version=int(found.version), run_id=found.run_id, source=str(found.source))


def download_version(tracking_uri: str, found: RegistryVersion, dest: Path) -> Path:
    """Download the version's MLflow model directory into `dest` and return the directory holding MLmodel."""
    import mlflow.artifacts

    uri = _client(tracking_uri).get_model_version_download_uri(found.name, str(found.version))
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest), tracking_uri=tracking_uri))
    if not (local / "MLmodel").is_file():
        raise ReleaseError(
            f"model {found.name!r} version {found.version} is not an MLflow model directory "
            f"(no MLmodel at the root of {uri})"
        )
    return local


def tag_version(tracking_uri: str, found: RegistryVersion, sha256: str, environment: str, artifact: str) -> None:
    """Record the archive's checksum, and where this stack's copy lives, on the registry version."""
    client = _client(tracking_uri)
    client.set_model_version_tag(found.name, str(found.version), SHA256_TAG, sha256)
    client.set_model_version_tag(found.name, str(found.version), TAG_ARTIFACT_PREFIX + environment, artifact)


# --- the bucket ---------------------------------------------------------------------------------------------------


def s3_client(outputs: StackOutputs) -> Any:
    import boto3

    return boto3.client("s3", region_name=outputs.region)


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return dict(s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED"))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def upload_artifact(
    s3: Any, outputs: StackOutputs, key: str, archive: Path, sha256: str, metadata: dict[str, str]
) -> bool:
    """Put the archive under `key` (SSE-KMS, checksum enforced by S3) and verify it; False when already there."""
    uri = f"s3://{outputs.bucket_name}/{key}"
    existing = _head(s3, outputs.bucket_name, key)
    if existing is not None:
        held = existing.get("Metadata", {}).get(SHA256_METADATA)
        if held == sha256:
            return False
        raise ReleaseError(
            f"checksum mismatch: {uri} already holds a different artifact (sha256 {held}, expected {sha256}); "
            "nothing was released"
        )
    checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
    with archive.open("rb") as body:
        s3.put_object(
            Bucket=outputs.bucket_name,
            Key=key,
            Body=body,
            ContentType="application/gzip",
            Metadata={SHA256_METADATA: sha256, **metadata},
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=outputs.kms_key_arn,
            ChecksumSHA256=checksum,  # S3 refuses the upload if the bytes it receives hash differently
        )
    stored = _head(s3, outputs.bucket_name, key) or {}
    held = stored.get("Metadata", {}).get(SHA256_METADATA)
    # S3 reports the checksum it verified on upload; a store that does not (S3-compatible servers) is read back.
    held_checksum = stored.get("ChecksumSHA256")
    intact = held_checksum == checksum if held_checksum else _sha256_object(s3, outputs.bucket_name, key) == sha256
    if held != sha256 or not intact:
        raise ReleaseError(f"checksum mismatch: {uri} does not hold what was uploaded (sha256 {sha256})")
    return True


def _sha256_object(s3: Any, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def fetch_verified(s3: Any, bucket: str, key: str, expected: str, dest: Path) -> None:
    """Download an artifact and refuse it unless its bytes and its metadata both match `expected`."""
    from botocore.exceptions import ClientError

    uri = f"s3://{bucket}/{key}"
    try:
        s3.download_file(bucket, key, str(dest))
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound"):
            raise ReleaseError(f"{uri} does not exist; nothing was released") from None
        raise
    actual = sha256_file(dest)
    if actual != expected:
        raise ReleaseError(f"checksum mismatch for {uri}: expected {expected}, got {actual}; nothing was released")
    held = head.get("Metadata", {}).get(SHA256_METADATA)
    if held != expected:
        raise ReleaseError(
            f"checksum mismatch for {uri}: its metadata says sha256 {held}, expected {expected}; nothing was released"
        )


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mlplat-release-") as tmp:
        yield Path(tmp)


def release(
    stack: str,
    model: str,
    outputs: StackOutputs,
    stack_file: Path,
    tracking_uri: str,
    alias: str | None = None,
    version: int | None = None,
) -> ReleaseResult:
    """Resolve, pack, upload and verify, tag, then pin; see the module docstring."""
    source = stack_config.display_path(stack_file)
    text, cfg = read_stack_file(stack_file)
    check_environment(cfg, stack, source)
    found = resolve_version(tracking_uri, model, alias, version)
    with _workdir() as work:
        model_dir = download_version(tracking_uri, found, work / "download")
        archive = work / MODEL_ARCHIVE
        sha256 = pack_model_dir(model_dir, archive)
        new_text, endpoints = pin_text(text, model, found.version, sha256, source)
        validate_text(new_text, source)
        key = artifact_key(model, found.version)
        metadata = {"mlflow-model": model, "mlflow-version": str(found.version), "mlflow-run-id": found.run_id or ""}
        uploaded = upload_artifact(s3_client(outputs), outputs, key, archive, sha256, metadata)
    uri = f"s3://{outputs.bucket_name}/{key}"
    tag_version(tracking_uri, found, sha256, stack, uri)
    write_atomic(stack_file, new_text)
    return ReleaseResult(stack, model, found.version, sha256, uri, source, endpoints, uploaded)


def promote(
    stack: str,
    model: str,
    outputs: StackOutputs,
    stack_file: Path,
    source_stack: str,
    source_outputs: StackOutputs,
    source_stack_file: Path,
) -> ReleaseResult:
    """Copy the artifact `source_stack` pins into this stack's bucket, checksum verified, and pin it here too."""
    source = stack_config.display_path(stack_file)
    text, cfg = read_stack_file(stack_file)
    check_environment(cfg, stack, source)
    if source_stack == stack:
        raise ReleaseError(f"--promote-from {source_stack} is the stack being released to; name another stack")
    version, sha256 = staging_pin(source_stack_file, model)
    new_text, endpoints = pin_text(text, model, version, sha256, source)
    validate_text(new_text, source)
    key = artifact_key(model, version)
    with _workdir() as work:
        archive = work / MODEL_ARCHIVE
        fetch_verified(s3_client(source_outputs), source_outputs.bucket_name, key, sha256, archive)
        metadata = {"mlflow-model": model, "mlflow-version": str(version), "promoted-from": source_stack}
        uploaded = upload_artifact(s3_client(outputs), outputs, key, archive, sha256, metadata)
    write_atomic(stack_file, new_text)
    uri = f"s3://{outputs.bucket_name}/{key}"
    return ReleaseResult(stack, model, version, sha256, uri, source, endpoints, uploaded, promoted_from=source_stack)


# --- command line -------------------------------------------------------------------------------------------------


def release_command(
    model: Annotated[str, typer.Option("--model", help="the registered model name (the endpoints' `model`)")],
    stack: clikit.StackOption = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="release the version holding this alias [default: champion]")
    ] = None,
    version: Annotated[int | None, typer.Option("--version", min=1, help="release this version number")] = None,
    promote_from: Annotated[
        str | None, typer.Option("--promote-from", help="copy the artifact this stack pins (e.g. staging)")
    ] = None,
    outputs: clikit.OutputsOption = None,
    from_outputs: Annotated[
        Path | None, typer.Option("--from-outputs", help="outputs of the --promote-from stack as JSON")
    ] = None,
    stack_file: clikit.StackFileOption = None,
    from_stack_file: Annotated[
        Path | None, typer.Option("--from-stack-file", help="the --promote-from stack's file [default: stacks/…]")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri", help="MLflow registry (http URL or SageMaker ARN)", envvar="MLFLOW_TRACKING_URI"
        ),
    ] = None,
    as_json: clikit.JsonFlag = False,
) -> None:
    """Pack a registered model version, put it in the stack's bucket with its SHA-256, and pin the stack's endpoints.

    Run `pulumi up` afterwards: the endpoints roll over to the pinned artifact blue/green.
    """
    try:
        if promote_from is not None and (alias is not None or version is not None):
            raise ReleaseError("--promote-from copies the version the other stack pins; drop --alias and --version")
        if alias is not None and version is not None:
            raise ReleaseError("pass --alias or --version, not both")
        stack, path = clikit.resolve_stack(stack, stack_file)
        stack_outputs = load_outputs(stack, outputs)
        if promote_from is not None:
            result = promote(
                stack,
                model,
                stack_outputs,
                path,
                promote_from,
                load_outputs(promote_from, from_outputs),
                from_stack_file or stack_config.stack_file(promote_from),
            )
        else:
            uri = check_tracking_uri(tracking_uri or stack_outputs.tracking_server_arn)
            result = release(stack, model, stack_outputs, path, uri, alias, version)
    except (CloudError, stack_config.ConfigError) as exc:
        raise typer.Exit(clikit.report(exc)) from None
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    origin = f" (promoted from {result.promoted_from})" if result.promoted_from else ""
    state = "uploaded" if result.uploaded else "already in the bucket"
    typer.echo(f"released {result.model} version {result.version} to {result.stack}{origin}")
    typer.echo(f"  artifact  {result.artifact} ({state})")
    typer.echo(f"  sha256    {result.sha256}")
    typer.echo(f"  pinned    {', '.join(result.endpoints)} in {result.stack_file}")
    typer.echo(f"next: pulumi up --stack {result.stack}  (blue/green rollout, rolls back on alarms)")


def register(app: typer.Typer) -> None:
    """Add `mlplat release` to the root app."""
    clikit.command(app, "release", release_command, panel=clikit.CLOUD)
