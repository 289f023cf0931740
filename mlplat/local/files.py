"""Files under the local platform's home: private by default, and shown to the user relative to where they are."""

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Everything `up` and `down` write under the home (snapshots, job directories) is private to the user."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def tighten(root: Path) -> None:
    """Make everything under `root` private to the user (copies keep their source's mode despite the umask)."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & 0o700)


def display(path: Path) -> str:
    """A path as the user should read it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
