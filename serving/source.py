"""Where the model comes from: a local MLflow model directory, or the MLflow registry by alias or version.

Registry sources are resolved to one concrete version before anything is downloaded, so the files, `/version` and
the swap decision always agree on which version serves.
"""

import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the supervisor parses a source but never loads one: the model stack stays out of it
    from serving.model import Model

log = logging.getLogger("serving.source")

_REGISTRY = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[0-9]+))$")


@dataclass(frozen=True)
class ModelSource:
    """A parsed `--model-uri`: either `path`, or registry `name` with an `alias` or a fixed `version`."""

    uri: str
    path: Path | None = None
    name: str | None = None
    alias: str | None = None
    version: str | None = None

    @property
    def follows_alias(self) -> bool:
        """True when the source can move (an alias), so it is worth polling."""
        return self.alias is not None

    @classmethod
    def parse(cls, uri: str) -> "ModelSource":
        """`models:/<name>@<alias>`, `models:/<name>/<version>`, `file://<dir>` or a directory path."""
        match = _REGISTRY.match(uri)
        if match:
            return cls(uri=uri, name=match["name"], alias=match["alias"], version=match["version"])
        if uri.startswith("models:/"):
            raise ValueError(f"model URI {uri!r} must look like models:/<name>@<alias> or models:/<name>/<version>")
        if "://" in uri and not uri.startswith("file://"):
            raise ValueError(f"model URI {uri!r}: only a local directory or a models:/ registry URI is supported")
        return cls(uri=uri, path=Path(uri.removeprefix("file://")))


def resolve_version(source: ModelSource) -> tuple[str, str | None]:
    """The registry version the source points at now, and its run id (`MLFLOW_TRACKING_URI` says which registry)."""
    from mlflow.tracking import MlflowClient

    assert source.name is not None
    client = MlflowClient()
    if source.alias is not None:
        found = client.get_model_version_by_alias(source.name, source.alias)
    else:
        found = client.get_model_version(source.name, str(source.version))
    return str(found.version), found.run_id


def load(
    source: ModelSource, max_rows: int, cache_dir: Path | None, name: str | None, version: str | None
) -> "tuple[Model, Path | None]":
    """Load what `source` names now: a directory as is, a registry source pinned to its current version.

    `name`/`version` label a directory's model in `/version` and `/metrics` (a directory does not know them).
    Returns the model and the download directory it came from (None for a directory the server was given).
    """
    from serving.model import ModelLoadError, load_model_dir

    if source.path is not None:
        if not source.path.is_dir():
            raise ModelLoadError(f"model directory {source.path} does not exist")
        label = name or source.path.name or "model"
        return load_model_dir(source.path, label, version, source.uri, max_rows), None
    current, _ = resolve_version(source)
    return load_version(source, current, max_rows, cache_dir)


def load_version(source: ModelSource, version: str, max_rows: int, cache_dir: Path | None) -> "tuple[Model, Path]":
    """Download one registry version into a fresh directory and load it; the model and that directory."""
    import mlflow.artifacts

    from serving.model import load_model_dir

    assert source.name is not None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{source.name}-v{version}-", dir=cache_dir))
    pinned = f"models:/{source.name}/{version}"
    log.info("downloading %s", pinned)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=pinned, dst_path=str(target)))
    model_dir = local if (local / "MLmodel").is_file() else _find_model_dir(local)
    try:
        return load_model_dir(model_dir, source.name, version, source.uri, max_rows), target
    except Exception:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _find_model_dir(root: Path) -> Path:
    from serving.model import ModelLoadError

    for mlmodel in sorted(root.glob("**/MLmodel")):
        return mlmodel.parent
    raise ModelLoadError(f"the downloaded model has no MLmodel file under {root}")
