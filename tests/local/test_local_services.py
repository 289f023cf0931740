"""Process identity, stopping a whole server session, ports, and the PostgreSQL prerequisites."""

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from mlplat.local import processes, services


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes._reap(pid)
        if services.process_fingerprint(pid) is None:
            return True
        time.sleep(0.05)
    return False


def test_a_live_process_keeps_its_fingerprint_and_a_dead_one_has_none(tmp_path: Path) -> None:
    service = services.spawn("sleeper", ["sleep", "30"], 0, tmp_path / "sleeper.log")
    first = services.process_fingerprint(service.pid)

    assert first is not None
    assert services.process_fingerprint(service.pid) == first
    assert services.is_same_process(service.pid, first)

    os.kill(service.pid, signal.SIGKILL)
    service.process.wait()

    assert services.process_fingerprint(service.pid) is None
    assert not services.is_same_process(service.pid, first)


def test_stopping_a_session_stops_the_server_and_every_worker_it_forked(tmp_path: Path) -> None:
    script = "import subprocess, time; [subprocess.Popen(['sleep', '60']) for _ in range(2)]; time.sleep(60)"
    service = services.spawn("forker", [sys.executable, "-c", script], 0, tmp_path / "forker.log")
    deadline = time.monotonic() + 10
    while len(services.session_members(service.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    members = services.session_members(service.pid)
    assert len(members) == 3

    signalled = services.stop_session(service.pid, timeout=5)

    assert sorted(signalled) == members
    assert services.session_members(service.pid) == []
    assert all(_wait_gone(pid) for pid in members)


def test_a_server_log_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    service = services.spawn("echo", ["echo", "hello"], 0, tmp_path / "logs" / "echo.log")
    service.process.wait()

    log = tmp_path / "logs" / "echo.log"
    assert log.read_text() == "hello\n"
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_listening_port_is_busy_and_a_closed_one_is_free() -> None:
    with socket.socket() as listener:
        listener.bind((services.LOOPBACK, 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert services.port_is_free(port) is False
    assert services.port_is_free(port) is True


def test_probe_checks_http_status_and_tcp_connections() -> None:
    with socket.socket() as listener:
        listener.bind((services.LOOPBACK, 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert services.probe(f"tcp://127.0.0.1:{port}") is True
    assert services.probe(f"tcp://127.0.0.1:{port}") is False
    assert services.probe(f"http://127.0.0.1:{port}/ping", timeout=0.5) is False


def test_a_missing_postgres_program_is_named_with_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    monkeypatch.setattr(services.glob, "glob", lambda pattern: [])

    with pytest.raises(services.MissingDependency) as caught:
        services.check_postgres_prerequisites()

    assert str(caught.value) == (
        "the PostgreSQL server program 'initdb' was not found; install PostgreSQL's server binaries "
        "(apt-get install postgresql, or brew install postgresql)"
    )


def test_postgres_programs_are_found_in_the_distribution_directory_when_not_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for version in ("13", "15"):
        program = tmp_path / "postgresql" / version / "bin" / "initdb"
        program.parent.mkdir(parents=True)
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    monkeypatch.setattr(
        services.glob,
        "glob",
        lambda pattern: (
            [str(p) for p in (tmp_path / "postgresql").glob("*/bin/initdb")] if "/usr/lib/" in pattern else []
        ),
    )

    assert services.find_postgres_bin("initdb") == tmp_path / "postgresql" / "15" / "bin" / "initdb"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root is refused by PostgreSQL")
def test_postgres_as_root_is_refused_with_the_sqlite_alternative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "find_postgres_bin", lambda name: Path(f"/usr/bin/{name}"))

    with pytest.raises(services.MissingDependency) as caught:
        services.check_postgres_prerequisites()

    assert str(caught.value) == (
        "PostgreSQL refuses to run as root; run `mlplat up --local --db postgres` as a regular user, "
        "or use the default --db sqlite"
    )
