"""The local platform's processes: who a pid is (boot id and start time, so a reused pid is not mistaken for ours),
the members of a process session, and stopping a whole session.
"""

import contextlib
import os
import platform
import signal
import subprocess
import time
from pathlib import Path


def process_fingerprint(pid: int) -> str | None:
    """What tells this pid's process apart from a later one that reuses the number: boot id and start time.

    None when no live (non-zombie) process has this pid.
    """
    if pid <= 0:
        return None
    stat = _proc_stat(pid)
    if stat is not None:
        if stat["state"] == "Z":
            return None
        return f"{_boot_id()}:{stat['starttime']}"
    if platform.system() == "Linux":
        return None
    result = subprocess.run(["ps", "-o", "stat=,lstart=", "-p", str(pid)], capture_output=True, text=True, check=False)
    line = result.stdout.strip()
    if result.returncode != 0 or not line or line.startswith("Z"):
        return None
    return line.split(None, 1)[1] if " " in line else line


def is_same_process(pid: int, fingerprint: str) -> bool:
    """True when `pid` still is the live process that was fingerprinted as `fingerprint`."""
    return process_fingerprint(pid) == fingerprint


def process_cmdline(pid: int) -> list[str]:
    """The argv of `pid`, or [] when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        result = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)
        return result.stdout.split()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is `sid`: a server started by `spawn` and all it forked."""
    if Path("/proc/self/stat").exists():
        members = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat["session"] == sid and stat["state"] != "Z":
                members.append(int(entry.name))
        return sorted(members)
    result = subprocess.run(["ps", "-A", "-o", "pid=,sess=,stat="], capture_output=True, text=True, check=False)
    found = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == str(sid) and not fields[2].startswith("Z"):
            found.append(int(fields[0]))
    return sorted(found)


def stop_session(sid: int, timeout: float = 15.0, sig: int = signal.SIGTERM) -> list[int]:
    """Send `sig` to every process of session `sid`, wait up to `timeout`, then SIGKILL what is left.

    Returns the pids that were signalled. The caller has checked that `sid` is a session this tool started: a
    session id stays reserved while any member lives, so its leftovers cannot belong to anyone else.
    """
    members = session_members(sid)
    for pid in members:
        _signal(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(sid)
        if not session_members(sid):
            return members
        time.sleep(0.1)
    for pid in session_members(sid):
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while session_members(sid) and time.monotonic() < deadline:
        _reap(sid)
        time.sleep(0.1)
    return members


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    # When this very process spawned the server (tests, `up --smoke`), its exit leaves a zombie until reaped.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _proc_stat(pid: int) -> dict[str, str | int] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields after its last ')' are fixed.
    fields = raw[raw.rfind(")") + 2 :].split()
    return {"state": fields[0], "session": int(fields[3]), "starttime": fields[19]}


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "boot"
