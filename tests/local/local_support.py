"""Helpers for the local platform's tests: the CLI runner, process checks, and the fast stand-in commands."""

import json
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from mlplat.cli import app
from mlplat.local import services
from mlplat.local import state as st
from mlplat.local.platform import UpOptions

STANDINS = Path(__file__).resolve().parent / "standins"


def mlplat(*args: str) -> Result:
    """Run the real command line in-process."""
    return CliRunner().invoke(app, list(args))


def standin_options(**overrides: Any) -> UpOptions:
    """`up` options with the fast stand-in training job and serving server (same flags, same contracts)."""
    values: dict[str, Any] = {
        "training_command": (sys.executable, str(STANDINS / "standin_train.py")),
        "serving_command": (sys.executable, str(STANDINS / "standin_serve.py")),
        "port": services.free_port(),
        **overrides,
    }
    return UpOptions(**values)


def recorded_pids(home: Path) -> dict[str, int]:
    state = st.load(home)
    return {} if state is None else {name: part.pid for name, part in state.parts.items()}


def session_alive(pid: int) -> bool:
    """True while the process `pid` or any worker of its session lives."""
    return services.process_fingerprint(pid) is not None or bool(services.session_members(pid))


def status_json(home: Path) -> tuple[int, dict[str, Any]]:
    result = mlplat("status", "--local", "--home", str(home), "--json")
    return result.exit_code, json.loads(result.stdout)
