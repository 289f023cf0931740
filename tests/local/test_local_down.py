"""`down` stops exactly what `up` started: never a pid now owned by someone else, always a dead server's workers."""

import signal
import sys
import time
from pathlib import Path

from local_support import session_alive

from mlplat.local import services
from mlplat.local import state as st
from mlplat.local.platform import LocalPlatform
from mlplat.local.state import Part, State


def _record(home: Path, service: services.Service, fingerprint: str) -> None:
    part = Part(
        name="serving",
        pid=service.pid,
        fingerprint=fingerprint,
        port=1,
        url="http://127.0.0.1:1",
        health_url="http://127.0.0.1:1/ping",
        log=str(service.log),
        argv=[],
        started_at=0.0,
    )
    st.save(home, State(stack="dev", db="sqlite", bucket="b", parts={"serving": part}))


def test_down_leaves_alone_a_recorded_pid_that_now_belongs_to_another_process(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    stranger = services.spawn("stranger", ["sleep", "30"], 0, tmp_path / "stranger.log")
    _record(home, stranger, fingerprint="an-earlier-boot:12345")
    try:
        results = LocalPlatform(home).down()

        assert [(r.name, r.outcome, r.signalled) for r in results] == [("serving", "skipped", [])]
        assert stranger.process.poll() is None
        assert st.load(home) is None
    finally:
        stranger.stop()


def test_down_stops_the_workers_a_dead_server_left_behind(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    script = "import subprocess, time; [subprocess.Popen(['sleep', '60']) for _ in range(2)]; time.sleep(60)"
    server = services.spawn("serving", [sys.executable, "-c", script], 0, tmp_path / "serving.log")
    deadline = time.monotonic() + 10
    while len(services.session_members(server.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    _record(home, server, fingerprint=services.process_fingerprint(server.pid) or "")
    workers = [pid for pid in services.session_members(server.pid) if pid != server.pid]
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()

    results = LocalPlatform(home).down()

    assert [(r.name, r.outcome, sorted(r.signalled)) for r in results] == [("serving", "stopped", sorted(workers))]
    assert not session_alive(server.pid)


def test_down_of_a_recorded_process_that_already_exited_reports_it_already_stopped(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    gone = services.spawn("serving", ["true"], 0, tmp_path / "serving.log")
    fingerprint = services.process_fingerprint(gone.pid) or "recorded-at-start"
    gone.process.wait()
    _record(home, gone, fingerprint=fingerprint)

    results = LocalPlatform(home).down()

    assert [(r.name, r.outcome) for r in results] == [("serving", "already stopped")]
