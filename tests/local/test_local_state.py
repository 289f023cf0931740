"""The state file, the home directory and `discover()` (the function other tools use to find the platform)."""

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from mlplat.local import services
from mlplat.local import state as st
from mlplat.local.state import Part, State


def _part(name: str, pid: int, port: int) -> Part:
    url = f"http://127.0.0.1:{port}"
    return Part(
        name=name,
        pid=pid,
        fingerprint=services.process_fingerprint(pid) or "",
        port=port,
        url=url,
        health_url=f"{url}/health",
        log=f"logs/{name}.log",
        argv=["x"],
        started_at=0.0,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_is_saved_owner_only_in_an_owner_only_home_and_reads_back(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    state = State(stack="dev", db="sqlite", bucket="mlplat-dev-artifacts", parts={"s3": _part("s3", os.getpid(), 1)})

    st.save(home, state)

    assert _mode(home) == 0o700
    assert _mode(home / "state.json") == 0o600
    assert _mode(home / "logs") == 0o700
    assert st.load(home) == state
    assert [p.name for p in home.iterdir() if p.name.startswith(".state.")] == []


def test_a_looser_existing_home_is_tightened_to_owner_only(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    home.mkdir(mode=0o755)
    home.chmod(0o755)

    st.ensure_home(home)

    assert _mode(home) == 0o700


def test_parts_are_listed_in_start_order_whatever_the_recorded_order(tmp_path: Path) -> None:
    state = State(stack="dev", db="sqlite", bucket="b")
    for name in ("serving", "s3", "mlflow"):
        state.parts[name] = _part(name, os.getpid(), 1)

    assert [name for name, _ in state.ordered_parts()] == ["s3", "mlflow", "serving"]
    assert list(state.to_json()["parts"]) == ["s3", "mlflow", "serving"]


def test_an_unreadable_state_file_is_reported_with_its_path(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    st.ensure_home(home)
    (home / "state.json").write_text("{not json")

    with pytest.raises(st.StateError, match=r"state\.json: cannot read the state file"):
        st.load(home)


def test_a_recorded_pid_that_now_belongs_to_another_process_is_not_alive(tmp_path: Path) -> None:
    part = _part("s3", os.getpid(), 1)
    part.fingerprint = "another-boot:1"

    assert part.is_alive() is False
    assert _part("s3", os.getpid(), 1).is_alive() is True


def test_discover_raises_when_nothing_was_started_under_the_home(tmp_path: Path) -> None:
    with pytest.raises(st.PlatformNotRunning, match="the local platform is not running under"):
        st.discover(tmp_path / "nothing-here")


def test_discover_returns_the_recorded_urls_and_the_client_environment(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    state = State(
        stack="dev",
        db="sqlite",
        bucket="mlplat-dev-artifacts",
        parts={
            name: _part(name, os.getpid(), port) for name, port in (("s3", 1001), ("mlflow", 1002), ("serving", 8080))
        },
        model={"name": "abalone", "uri": "models:/abalone@champion", "endpoint_name": "abalone-dev"},
    )
    st.save(home, state)

    found = st.discover(home, require_healthy=False)

    assert (found.s3_url, found.mlflow_url, found.serving_url) == (
        "http://127.0.0.1:1001",
        "http://127.0.0.1:1002",
        "http://127.0.0.1:8080",
    )
    assert found.data_capture_uri == "s3://mlplat-dev-artifacts/data-capture/abalone-dev/"
    assert found.model_uri == "models:/abalone@champion"
    assert found.aws_env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1001"
    assert found.aws_env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:1002"


def test_discover_refuses_a_platform_whose_store_does_not_answer(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    port = services.free_port()
    st.save(
        home,
        State(stack="dev", db="sqlite", bucket="b", parts={n: _part(n, os.getpid(), port) for n in ("s3", "mlflow")}),
    )

    with pytest.raises(st.PlatformNotRunning, match="the local platform's s3 is not healthy under"):
        st.discover(home)


def test_the_home_default_is_mlplat_home_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLPLAT_HOME", str(tmp_path / "elsewhere"))

    assert st.default_home() == (tmp_path / "elsewhere").resolve()


def test_a_second_command_on_the_same_home_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with st.locked(home):
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(10)
    try:
        with pytest.raises(st.StateError, match="another mlplat command is working on"), st.locked(home):
            pass
    finally:
        release.set()
        holder.join()


def test_the_state_file_is_plain_json_with_the_documented_keys(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    st.save(home, State(stack="dev", db="sqlite", bucket="b", parts={"s3": _part("s3", os.getpid(), 5)}))

    data = json.loads((home / "state.json").read_text())

    assert sorted(data) == ["bucket", "db", "model", "parts", "schema", "stack"]
    assert sorted(data["parts"]["s3"]) == [
        "argv", "fingerprint", "health_url", "log", "name", "pid",
        "port", "started_at", "stop_signal", "upstream", "url",
    ]  # fmt: skip
