"""The local platform's state follows what runs: the served version, a revived part's port, an unusable home.

Stand-ins for training and serving (see `test_local_orchestration.py`); the store and the tracking server are real.
"""

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_support import mlplat, standin_options, status_json

from mlplat.local import state as st
from mlplat.local.platform import LocalPlatform, UpReport


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, UpReport]]:
    home = tmp_path_factory.mktemp("truth") / ".mlplat"
    try:
        yield home, LocalPlatform(home).up(standin_options())
    finally:
        LocalPlatform(home).down()


def test_status_reports_the_version_serving_serves_when_the_state_file_is_behind(
    running: tuple[Path, UpReport],
) -> None:
    home, first = running
    recorded = st.load(home)
    assert recorded is not None
    # What `mlplat monitor --retrain` leaves: serving hot-swapped to a version the state file never heard of.
    recorded.model = {**recorded.model, "version": "0", "run_id": "stale-run"}
    st.save(home, recorded)

    code, status = status_json(home)

    assert code == 0
    assert status["model"]["version"] == first.model["version"]
    assert status["model"].get("run_id") != "stale-run"


def test_a_revived_serving_server_keeps_its_recorded_port(running: tuple[Path, UpReport]) -> None:
    home, _ = running
    before = st.load(home)
    assert before is not None
    port = before.parts["serving"].port
    st.stop_part(before.parts["serving"])

    revived = LocalPlatform(home).up(standin_options(port=None))

    assert revived.started == ["serving"]
    after = st.load(home)
    assert after is not None and after.parts["serving"].port == port


def test_up_on_a_home_that_is_not_a_directory_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    home = tmp_path / "file" / ".mlplat"

    result = mlplat("up", "--local", "--home", str(home))

    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"error: {home}: Not a directory (the local platform's home must be a writable directory)"
    )


def test_down_on_a_read_only_home_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / ".mlplat"
    home.mkdir()
    lock = home / st.LOCK_FILE

    def read_only(path: Path) -> Path:
        raise OSError(errno.EROFS, "Read-only file system", str(lock))

    monkeypatch.setattr(st, "ensure_home", read_only)

    result = mlplat("down", "--local", "--home", str(home))

    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: {lock}: Read-only file system (the local platform's home must be a writable directory)"
    )
