"""A user's source directory as a reproducible `sourcedir.tar.gz`, stored content-addressed under `code/<sha256>/`.

Reproducible: members sorted, owners, permissions and times normalised, gzip without a timestamp; the same files give
the same bytes and so the same key, whoever packs them and when.
"""

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from contracts import bucket as layout

SKIPPED = {"__pycache__", ".git", ".venv", ".mlplat", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
ARCHIVE = layout.SOURCE_ARCHIVE


class SourceError(Exception):
    """The source directory or entry point is unusable; the message names it."""


def pack(directory: Path, entry_point: str) -> tuple[bytes, str]:
    """The archive's bytes and their SHA-256; the entry point (a .py file) must be inside `directory`."""
    if not directory.is_dir():
        raise SourceError(f"--source-dir {directory} is not a directory")
    if entry_point.endswith(".py") and not (directory / entry_point).is_file():
        raise SourceError(f"--entry-point {entry_point} does not exist in {directory}")
    files = sorted(
        path
        for path in directory.rglob("*")
        if path.is_file() and not SKIPPED.intersection(path.relative_to(directory).parts)
    )
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as bundle:
        for path in files:
            info = tarfile.TarInfo(path.relative_to(directory).as_posix())
            data = path.read_bytes()
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            bundle.addfile(info, io.BytesIO(data))
    content = gzip.compress(raw.getvalue(), mtime=0)
    return content, hashlib.sha256(content).hexdigest()


def key(sha256: str) -> str:
    """Where the archive of this digest lives in the stack's bucket."""
    return layout.source_archive_key(sha256)
