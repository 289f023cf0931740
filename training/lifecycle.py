"""The lifecycle of a user's script: start it in its own process group, forward SIGTERM, keep its last stderr lines.

Kept apart from the script runner so that other stop reasons (a spot interruption notice, a watchdog) can reuse
`Child.stop`: the group gets SIGTERM, and SIGKILL after the grace period.
"""

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

TAIL_LINES = 20


class Child:
    """A process group running the script; its stderr is copied through and its last lines kept."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.signum = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.process = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self._pump = threading.Thread(target=self._copy_stderr, daemon=True)
        self._pump.start()

    def _copy_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            self.tail.append(line.rstrip("\n"))

    def install_signal_handlers(self) -> None:
        def forward(signum: int, frame: FrameType | None) -> None:
            self.signum = signum
            threading.Thread(target=self.stop, args=(signum,), daemon=True).start()

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Signal the whole group; SIGKILL whatever is left after the grace period."""
        self._signal_group(signum)
        deadline = time.monotonic() + self.grace_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return
            time.sleep(0.1)
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def wait(self) -> int:
        code = self.process.wait()
        self._pump.join(timeout=5)
        # A shell's convention: 128 + the signal for a process a signal ended.
        return 128 - code if code < 0 else code

    def failure_text(self) -> str:
        return "\n".join(self.tail)


def write_failure(path: Path, text: str) -> None:
    """SageMaker's FailureReason contract: the reason in /opt/ml/output/failure (best effort)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    except OSError:
        pass
