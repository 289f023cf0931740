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
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from components import config as stack_config
from mlplat import clikit
from mlplat.outputs import CloudError, StackOutputs, check_tracking_uri, load_outputs

MODEL_ARCHIVE = "model.tar.gz"
SHA256_METADATA = "sha256"  # S3 user metadata key: x-amz-meta-sha256
SHA256_TAG = "mlplat.sha256"
ARTIFACT_TAG_PREFIX = "mlplat.artifact."  # + environment: where that stack's copy lives
_CHUNK = 1024 * 1024


class ReleaseError(CloudError):
    """A release that cannot go ahead; nothing has been changed when it is raised before the upload."""


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
    return f"models/{model}/{version}/{MODEL_ARCHIVE}"


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
            found = client.get_model_version_by_alias(model, alias or "champion")
    except MlflowException as exc:
        if not _not_found(exc) and "alias" not in str(exc.message).lower():
            raise ReleaseError(f"cannot read model {model!r} from {where}: {exc.message}") from None
        what = f"version {version}" if version is not None else f"alias {alias or 'champion'!r}"
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
    client.set_model_version_tag(found.name, str(found.version), ARTIFACT_TAG_PREFIX + environment, artifact)


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


# --- the stack file -----------------------------------------------------------------------------------------------

_ENDPOINTS_KEY = re.compile(r"^(?P<indent> *)mlplat:endpoints:\s*(#.*)?$")
_ITEM = re.compile(r"^(?P<dash> *)-( +|$)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _endpoint_items(lines: list[str], source: str) -> list[tuple[int, int, int]]:
    """(first line, end line, key indent) of each item of the block list under `mlplat:endpoints:`."""
    start = next((i for i, line in enumerate(lines) if _ENDPOINTS_KEY.match(line.rstrip("\n"))), None)
    if start is None:
        raise ReleaseError(f"{source}: mlplat:endpoints must be a block list (one `- name: ...` item per endpoint)")
    base = _indent(lines[start])
    items: list[list[int]] = []
    dash_indent: int | None = None
    end = len(lines)
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = _indent(lines[i])
        is_item = _ITEM.match(lines[i]) is not None
        if indent < base or (indent == base and not is_item):
            end = i
            break
        if is_item and (dash_indent is None or indent == dash_indent):
            dash_indent = indent
            after_dash = lines[i][indent + 1 :]
            items.append([i, -1, indent + 1 + _indent(after_dash)])
    for n, item in enumerate(items):
        item[1] = items[n + 1][0] if n + 1 < len(items) else end
    return [(a, b, c) for a, b, c in items]


def _set_key(lines: list[str], item: tuple[int, int, int], key: str, value: str, after: str) -> None:
    """Set `key: value` at the item's top level, keeping a trailing comment, or insert it after key `after`."""
    first, end, key_indent = item
    pattern = re.compile(rf"^(?P<prefix>( {{{key_indent}}}|{' ' * (key_indent - 2)}- ){key}:)[^#\n]*(?P<rest>#.*)?")
    for i in range(first, end):
        match = pattern.match(lines[i].rstrip("\n"))
        if match:
            comment = f"  {match.group('rest')}" if match.group("rest") else ""
            lines[i] = f"{match.group('prefix')} {value}{comment}\n"
            return
    anchor = re.compile(rf"^( {{{key_indent}}}|{' ' * (key_indent - 2)}- ){after}:")
    at = next((i for i in range(first, end) if anchor.match(lines[i])), first)
    lines.insert(at + 1, f"{' ' * key_indent}{key}: {value}\n")


def pin_text(text: str, model: str, version: int, sha256: str, source: str) -> tuple[str, list[str]]:
    """The stack file's text with every endpoint serving `model` pinned; the endpoint names. Only those keys change."""
    document = yaml.safe_load(text) or {}
    endpoints = (document.get("config") or {}).get(f"{stack_config.NAMESPACE}:endpoints") or []
    targets = [i for i, ep in enumerate(endpoints) if isinstance(ep, dict) and ep.get("model") == model]
    if not targets:
        raise ReleaseError(f"{source}: no endpoint serves model {model!r} (no mlplat:endpoints[*].model is {model!r})")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    items = _endpoint_items(lines, source)
    if len(items) != len(endpoints):
        raise ReleaseError(f"{source}: mlplat:endpoints must be a block list (one `- name: ...` item per endpoint)")
    # Bottom-up, so inserting lines into one item does not move the items above it.
    for index in sorted(targets, reverse=True):
        first, end, key_indent = items[index]
        before = len(lines)
        _set_key(lines, items[index], "modelVersion", str(version), after="model")
        grown = (first, end + len(lines) - before, key_indent)
        _set_key(lines, grown, "modelSha256", f'"{sha256}"', after="modelVersion")
    new_text = "".join(lines)
    expected = json.loads(json.dumps(document))
    for index in targets:
        expected["config"][f"{stack_config.NAMESPACE}:endpoints"][index].update(
            {"modelVersion": version, "modelSha256": sha256}
        )
    if yaml.safe_load(new_text) != expected:
        raise ReleaseError(f"{source}: cannot pin model {model!r} without changing other keys; pin it by hand")
    return new_text, [str(endpoints[i].get("name")) for i in targets]


def validate_text(text: str, source: str) -> stack_config.StackConfig:
    """Validate stack-file text as `load_stack_file` does, so a pin never leaves an invalid stack behind."""
    document = yaml.safe_load(text) or {}
    return stack_config.validate(stack_config.raw_from_stack_yaml(document, source), source)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, keeping its mode; a crash leaves the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_stack_file(path: Path) -> tuple[str, stack_config.StackConfig]:
    cfg = stack_config.load_stack_file(path)  # raises ConfigError "…: no such stack file" for an unknown stack
    return path.read_text(), cfg


def _check_environment(cfg: stack_config.StackConfig, stack: str, source: str) -> None:
    if cfg.environment != stack:
        raise ReleaseError(f"{source} is the stack file of {cfg.environment!r}, not {stack!r}")


def staging_pin(path: Path, model: str) -> tuple[int, str]:
    """The (version, sha256) a stack file pins for `model`; every endpoint serving it must agree."""
    source = stack_config.display_path(path)
    cfg = stack_config.load_stack_file(path)
    pins = {(ep.model_version, ep.model_sha256) for ep in cfg.endpoints if ep.model == model}
    if not pins:
        raise ReleaseError(f"{source}: no endpoint serves model {model!r}")
    if len(pins) > 1:
        raise ReleaseError(f"{source}: endpoints serving model {model!r} pin different versions; release one first")
    version, sha256 = pins.pop()
    if sha256 is None:
        raise ReleaseError(
            f"{source} pins no released artifact for model {model!r} (modelSha256 is unset); "
            f"run `mlplat release --stack {cfg.environment} --model {model}` first"
        )
    return version, sha256


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
    text, cfg = _read_stack_file(stack_file)
    _check_environment(cfg, stack, source)
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
    text, cfg = _read_stack_file(stack_file)
    _check_environment(cfg, stack, source)
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
