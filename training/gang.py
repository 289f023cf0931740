"""`python -m training.gang torchrun ...`: run torchrun and exit with the training runtime's own exit status.

torchrun ends with status 1 whenever a worker fails, so the Job's podFailurePolicy could not tell bad input (the
runtime's exit 2, which no retry can fix) from a crash. This launcher gives torchrun's workers a file to write their
status into (`MLPLAT_EXIT_CODE_FILE`, written by `training.interruptions.note_exit`), forwards SIGTERM and SIGINT to
torchrun (the kubelet signals only PID 1), and exits with the status written there, or torchrun's own.
"""

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from training.interruptions import EXIT_CODE_FILE_ENV


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the status to exit with."""
    command = list(sys.argv[1:] if argv is None else argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("error: usage: python -m training.gang <command> [args...]", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mlplat-gang-") as scratch:
        status_file = Path(scratch) / "exit-code"
        try:
            child = subprocess.Popen(command, env={**os.environ, EXIT_CODE_FILE_ENV: str(status_file)})
        except OSError as exc:
            print(f"error: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
            return 127

        def forward(signum: int, _frame: FrameType | None) -> None:
            child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = child.wait()
        written = status_file.read_text(encoding="utf-8").strip() if status_file.is_file() else ""
    if written.isdigit():
        return int(written)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    raise SystemExit(main())
