"""`--db postgres`: MLflow's backend in a PostgreSQL cluster under the home, from this machine's own binaries.

Runs where PostgreSQL can: its server programs installed, a driver importable, and not as root (PostgreSQL refuses
root; that refusal and a missing program are tested in test_local_services.py and test_local_cli.py).
"""

import os
from pathlib import Path

import pytest
from local_support import recorded_pids, session_alive, standin_options

from mlplat.local import services
from mlplat.local import state as st
from mlplat.local.platform import LocalPlatform


def _postgres_usable() -> str | None:
    try:
        services.check_postgres_prerequisites()
    except services.MissingDependency as exc:
        return str(exc)
    return None


@pytest.mark.skipif(_postgres_usable() is not None, reason=str(_postgres_usable()))
def test_up_with_postgres_runs_mlflow_on_a_private_cluster_and_down_stops_it(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    platform = LocalPlatform(home)
    try:
        report = platform.up(standin_options(db="postgres"))

        state = st.load(home)
        assert state is not None
        assert report.started == ["s3", "postgres", "mlflow", "serving"]
        assert state.parts["postgres"].url == f"postgresql://127.0.0.1:{state.parts['postgres'].port}/mlflow"
        assert (home / "postgres" / "data" / "PG_VERSION").is_file()
        assert os.stat(home / "postgres" / "password").st_mode & 0o777 == 0o600
        assert "password" not in " ".join(state.parts["mlflow"].argv)
    finally:
        pids = recorded_pids(home)
        platform.down()
    assert not any(session_alive(pid) for pid in pids.values())
