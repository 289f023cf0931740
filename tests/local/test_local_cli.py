"""`mlplat up|status|down --local` without the full platform: flags, empty homes, and a step that fails early."""

import json
from pathlib import Path

import pytest
from local_support import mlplat, session_alive

from mlplat.local import services


def test_up_without_local_exits_2_and_says_which_flag_is_missing(tmp_path: Path) -> None:
    result = mlplat("up", "--home", str(tmp_path))

    assert result.exit_code == 2
    assert result.stderr == (
        "error: only the local platform is handled here: add --local (cloud stacks deploy with `pulumi up`)\n"
    )
    assert not (tmp_path / "state.json").exists()


def test_status_of_a_home_where_nothing_runs_says_so_and_exits_1(tmp_path: Path) -> None:
    result = mlplat("status", "--local", "--home", str(tmp_path / ".mlplat"))

    assert result.exit_code == 1
    assert result.stdout == f"the local platform is not running under {tmp_path / '.mlplat'}\n"


def test_status_json_of_an_empty_home_reports_not_running(tmp_path: Path) -> None:
    result = mlplat("status", "--local", "--home", str(tmp_path), "--json")

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert (data["running"], data["healthy"], data["parts"]) == (False, False, [])


def test_down_with_nothing_running_is_a_no_op_that_succeeds(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    home.mkdir()

    first = mlplat("down", "--local", "--home", str(home))
    second = mlplat("down", "--local", "--home", str(home), "--json")

    assert first.exit_code == 0
    assert first.stdout == f"nothing to stop under {home}\n"
    assert second.exit_code == 0
    assert json.loads(second.stdout) == {"home": str(home), "parts": [], "purged": False}
    assert home.is_dir()


def test_down_purge_deletes_the_home_and_its_data(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    (home / "logs").mkdir(parents=True)
    (home / "mlflow.db").write_text("data")

    result = mlplat("down", "--local", "--home", str(home), "--purge")

    assert result.exit_code == 0
    assert not home.exists()


def test_up_with_an_unknown_stack_names_the_missing_stack_file(tmp_path: Path) -> None:
    result = mlplat("up", "--local", "--home", str(tmp_path), "--stack", "nosuch")

    assert result.exit_code == 2
    assert result.stderr == (
        "error: unknown stack 'nosuch': stacks/Pulumi.nosuch.yaml does not exist "
        "(known: dev, prod, staging; or pass --stack-file PATH)\n"
    )


def test_a_missing_postgres_binary_fails_step_2_names_it_and_stops_the_store_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    monkeypatch.setattr(services.glob, "glob", lambda pattern: [])
    started: list[services.Service] = []
    real_spawn = services.spawn

    def recording_spawn(*args, **kwargs):  # type: ignore[no-untyped-def]
        service = real_spawn(*args, **kwargs)
        started.append(service)
        return service

    monkeypatch.setattr(services, "spawn", recording_spawn)
    home = tmp_path / ".mlplat"

    result = mlplat("up", "--local", "--home", str(home), "--db", "postgres")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: step 2/6 (tracking) failed: the PostgreSQL server program 'initdb' was not found; install PostgreSQL's "
        f"server binaries (apt-get install postgresql, or brew install postgresql); see {home}/logs/postgres.log"
    )
    assert [service.name for service in started] == ["s3"]
    assert not session_alive(started[0].pid)
    assert not (home / "state.json").exists()
