"""End to end with the real parts: moto, `mlflow server`, `python -m training` and `python -m serving`.

The session's platform (`local_platform` in tests/conftest.py) is brought up once by `mlplat up --local`; these tests
use it, kill a part of it, revive it and finally bring it down. `--smoke` runs once more from a clean home.
"""

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from local_support import mlplat, recorded_pids, session_alive, status_json

from mlplat.local import services
from mlplat.local import state as st
from mlplat.local.platform import LocalPlatform, StepFailed, UpOptions

pytestmark = pytest.mark.timeout(300)
# The session platform (tests/conftest.py) trains this few epochs too: wiring is tested here, not model quality.
SMOKE_EPOCHS = 5

PREDICTION_LINE = re.compile(
    r"^prediction: (?P<value>[0-9.]+) for Sex=M, Length=0\.455, Diameter=0\.365, Height=0\.095, WholeWeight=0\.514, "
    r"ShuckedWeight=0\.2245, VisceraWeight=0\.101, ShellWeight=0\.15 \(actual 15\.000\)$"
)


def _wait_dead(pid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while session_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not session_alive(pid)


def test_up_ends_with_a_prediction_from_the_served_model_and_a_summary(local_platform: Any) -> None:
    assert local_platform.up_exit_code == 0, local_platform.up_stderr
    lines = local_platform.up_stdout.splitlines()

    match = PREDICTION_LINE.match(lines[0])
    assert match is not None, lines[0]
    assert 1.0 <= float(match["value"]) <= 30.0
    summary = local_platform.up_stdout
    state = st.load(local_platform.home)
    assert state is not None
    assert f"endpoint         │ http://127.0.0.1:{local_platform.port}/invocations" in summary
    assert f"MLflow           │ {state.parts['mlflow'].url}" in summary
    assert f"run id           │ {state.model['run_id']}" in summary
    assert "model            │ models:/abalone@champion = version 1" in summary
    assert re.search(r"test RMSE        │ [0-9.]+ \([0-9.]+ of the mean\)", summary)
    assert re.search(r"cloud cost \(dev\) │ (\$[0-9,.]+/month idle|not available)", summary)
    assert lines[-1] == f"stop it with: mlplat down --local --home {local_platform.home}"
    for step in ("1/6 S3-compatible store", "4/6 training job", "6/6 first prediction"):
        assert step in local_platform.up_stderr


def test_the_served_champion_answers_predictions_over_http(local_platform: Any) -> None:
    local_platform.ensure_up()
    url = f"http://127.0.0.1:{local_platform.port}"
    columns = ["Sex", "Length", "Diameter", "Height", "WholeWeight", "ShuckedWeight", "VisceraWeight", "ShellWeight"]
    rows = [
        ["M", 0.455, 0.365, 0.095, 0.514, 0.2245, 0.101, 0.15],
        ["F", 0.53, 0.42, 0.135, 0.677, 0.2565, 0.1415, 0.21],
    ]

    response = httpx.post(f"{url}/invocations", json={"dataframe_split": {"columns": columns, "data": rows}})

    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 2
    assert all(1.0 <= float(p if not isinstance(p, list) else p[0]) <= 30.0 for p in predictions)
    assert httpx.get(f"{url}/ping").status_code == 200


def test_status_reports_each_part_healthy_with_its_pid_and_port(local_platform: Any) -> None:
    local_platform.ensure_up()

    code, data = status_json(local_platform.home)
    table = mlplat("status", "--local", "--home", str(local_platform.home))

    assert code == 0
    assert [(p["name"], p["alive"], p["healthy"]) for p in data["parts"]] == [
        ("s3", True, True),
        ("mlflow", True, True),
        ("serving", True, True),
    ]
    assert {p["name"]: p["pid"] for p in data["parts"]} == recorded_pids(local_platform.home)
    assert data["parts"][2]["port"] == local_platform.port
    assert table.exit_code == 0
    assert table.stdout.count("healthy") == 3


def test_a_failing_training_job_fails_step_4_and_leaves_the_running_parts_alone(
    local_platform: Any,
) -> None:
    local_platform.ensure_up()
    before = recorded_pids(local_platform.home)

    with pytest.raises(StepFailed) as caught:
        LocalPlatform(local_platform.home).up(UpOptions(port=local_platform.port, epochs=0, retrain=True))

    assert str(caught.value) == (
        "step 4/6 (train) failed: the job exited with status 2: error: --epochs must be an integer >= 1 "
        f"(got '0'); see {local_platform.home}/logs/train.log"
    )
    assert recorded_pids(local_platform.home) == before
    assert all(session_alive(pid) for pid in before.values())


def test_a_killed_serving_process_shows_in_status_and_a_second_up_revives_only_it(
    local_platform: Any,
) -> None:
    local_platform.ensure_up()
    before = recorded_pids(local_platform.home)
    os.kill(before["serving"], signal.SIGKILL)
    _wait_dead(before["serving"])

    code, data = status_json(local_platform.home)
    assert code == 1
    assert [(p["name"], p["alive"], p["healthy"]) for p in data["parts"]] == [
        ("s3", True, True),
        ("mlflow", True, True),
        ("serving", False, False),
    ]

    args = ["--home", str(local_platform.home), "--port", str(local_platform.port), "--json"]
    result = mlplat("up", "--local", *args)

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["started"], report["reused"], report["trained"]) == (["serving"], ["s3", "mlflow"], False)
    after = recorded_pids(local_platform.home)
    assert (after["s3"], after["mlflow"]) == (before["s3"], before["mlflow"])
    assert after["serving"] != before["serving"]
    assert status_json(local_platform.home)[0] == 0


def test_down_stops_every_process_it_started_leaves_none_behind_and_keeps_the_data(
    local_platform: Any,
) -> None:
    local_platform.ensure_up()
    pids = recorded_pids(local_platform.home)

    result = mlplat("down", "--local", "--home", str(local_platform.home))

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"serving: stopped (pid {pids['serving']})",
        f"mlflow: stopped (pid {pids['mlflow']})",
        f"s3: stopped (pid {pids['s3']})",
    ]
    assert not any(session_alive(pid) for pid in pids.values())
    assert not (local_platform.home / "state.json").exists()
    assert (local_platform.home / "mlflow.db").is_file()
    assert (local_platform.home / "s3" / "mlplat-dev-artifacts" / "mlflow").is_dir()
    again = mlplat("down", "--local", "--home", str(local_platform.home))
    assert (again.exit_code, again.stdout) == (0, f"nothing to stop under {local_platform.home}\n")


def test_smoke_up_from_a_clean_state_predicts_then_leaves_nothing_running(tmp_path: Path) -> None:
    home = tmp_path / ".mlplat"
    port = services.free_port()

    result = mlplat(
        "up",
        "--local",
        "--smoke",
        "--json",
        "--home",
        str(home),
        "--port",
        str(port),
        "--epochs",
        str(SMOKE_EPOCHS),
    )

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["started"] == ["s3", "mlflow", "serving"]
    assert report["trained"] is True
    assert report["model"]["version"] == "1"
    assert report["prediction"]["url"] == f"http://127.0.0.1:{port}/invocations"
    value = report["prediction"]["prediction"]
    assert 1.0 <= float(value[0] if isinstance(value, list) else value) <= 30.0
    assert [(r["name"], r["outcome"]) for r in report["stopped"]] == [
        ("serving", "stopped"),
        ("mlflow", "stopped"),
        ("s3", "stopped"),
    ]
    assert not any(session_alive(pid) for pid in report["pids"].values())
    assert not (home / "state.json").exists()
