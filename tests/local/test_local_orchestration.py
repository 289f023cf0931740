"""`up`'s decisions (reuse, restart, retrain, restore, fail cleanly) with fast stand-ins for training and serving.

The stand-ins take the same flags and honour the same contracts as `python -m training` and `python -m serving`
(result line, registry alias, /ping, /version, /invocations); the store and the tracking server are the real ones.
The real training job and serving server run in `test_local_e2e.py`.
"""

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from local_support import recorded_pids, session_alive, standin_options

from mlplat.local import state as st
from mlplat.local.platform import LocalPlatform, PlatformError, StepFailed, UpReport, s3_client


class Platform:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.platform = LocalPlatform(home)
        self.port = standin_options().port
        self.first: UpReport = self.platform.up(standin_options(port=self.port))


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("standin") / ".mlplat"
    try:
        yield Platform(home)
    finally:
        LocalPlatform(home).down()


def test_up_records_every_part_by_pid_port_and_loopback_url(standin: Platform) -> None:
    state = st.load(standin.home)
    assert state is not None
    assert [name for name, _ in state.ordered_parts()] == ["s3", "mlflow", "serving"]
    assert all(part.url == f"http://127.0.0.1:{part.port}" for part in state.parts.values())
    assert state.parts["serving"].port == standin.port
    assert standin.first.started == ["s3", "mlflow", "serving"]
    assert standin.first.trained is True
    assert standin.first.prediction["prediction"] == 9.5


def test_up_creates_the_bucket_with_the_cloud_layout_and_uploads_the_data_set(standin: Platform) -> None:
    keys = {
        item["Key"]
        for item in s3_client(standin.first.urls["s3"]).list_objects_v2(Bucket="mlplat-dev-artifacts")["Contents"]
    }

    assert {"mlflow/", "datasets/", "checkpoints/", "data-capture/"} <= keys
    assert "datasets/abalone/v1/abalone.csv" in keys


def test_a_second_up_reuses_every_healthy_part_and_does_not_train_again(standin: Platform) -> None:
    before = recorded_pids(standin.home)

    report = standin.platform.up(standin_options(port=standin.port))

    assert report.reused == ["s3", "mlflow", "serving"]
    assert report.started == []
    assert report.trained is False
    assert recorded_pids(standin.home) == before


def test_retrain_promotes_a_new_version_that_the_running_server_swaps_to(standin: Platform) -> None:
    before = recorded_pids(standin.home)

    report = standin.platform.up(standin_options(port=standin.port, retrain=True))

    assert report.trained is True
    assert report.model["version"] == "2"
    assert report.reused == ["s3", "mlflow", "serving"]
    assert recorded_pids(standin.home) == before
    assert httpx.get(f"{report.urls['serving']}/version").json()["version"] == "2"


def test_a_job_the_promotion_gate_keeps_as_challenger_leaves_the_champion_serving(
    standin: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_TRAIN_DECISION", "challenger")

    report = standin.platform.up(standin_options(port=standin.port, retrain=True))

    assert report.trained is True
    assert report.model["version"] == "2"
    assert report.model["last_job"]["version"] == 3
    assert report.model["last_job"]["decision"] == "challenger"
    assert httpx.get(f"{report.urls['serving']}/version").json()["version"] == "2"


def test_a_failed_training_job_fails_step_4_with_its_error_line_and_log(
    standin: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_TRAIN_FAIL", "1")
    before = recorded_pids(standin.home)

    with pytest.raises(StepFailed) as caught:
        standin.platform.up(standin_options(port=standin.port, retrain=True))

    assert str(caught.value) == (
        "step 4/6 (train) failed: the job exited with status 2: error: no CSV files under "
        f"s3://mlplat-dev-artifacts/datasets/abalone/v1/; see {standin.home}/logs/train.log"
    )
    # Nothing was started by that invocation, so the parts it reused still run.
    assert recorded_pids(standin.home) == before


def test_a_busy_serving_port_asked_for_explicitly_is_a_clear_error(standin: Platform) -> None:
    serving = recorded_pids(standin.home)["serving"]
    st.stop_part(st.load(standin.home).parts["serving"])  # type: ignore[union-attr]
    assert not session_alive(serving)

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        with pytest.raises(StepFailed) as caught:
            standin.platform.up(standin_options(port=busy))

    assert str(caught.value) == (
        f"step 5/6 (serve) failed: port {busy} on 127.0.0.1 is busy; choose another --port; "
        f"see {standin.home}/logs/serving.log"
    )
    revived = standin.platform.up(standin_options(port=standin.port))
    assert revived.started == ["serving"]


def test_up_for_another_stack_while_one_runs_is_refused(standin: Platform) -> None:
    with pytest.raises(PlatformError) as caught:
        standin.platform.up(standin_options(port=standin.port, stack="staging"))

    assert str(caught.value) == (
        f"the local platform under {standin.home} runs stack dev with --db sqlite; run `mlplat down --local` "
        "first to switch to stack staging with --db sqlite"
    )


def test_down_keeps_a_bucket_snapshot_that_the_next_up_restores_without_training(standin: Platform) -> None:
    pids = recorded_pids(standin.home)

    stopped = standin.platform.down()

    assert [(r.name, r.outcome) for r in stopped] == [("serving", "stopped"), ("mlflow", "stopped"), ("s3", "stopped")]
    assert not any(session_alive(pid) for pid in pids.values())
    assert (standin.home / "s3" / "mlplat-dev-artifacts" / "datasets" / "abalone" / "v1" / "abalone.csv").is_file()
    assert st.load(standin.home) is None

    report = standin.platform.up(standin_options(port=standin.port))

    assert report.started == ["s3", "mlflow", "serving"]
    assert report.trained is False
    assert report.model["version"] == "2"


def test_a_store_that_died_after_the_last_snapshot_is_refilled_by_training_again(standin: Platform) -> None:
    standin.platform.up(standin_options(port=standin.port, retrain=True))
    before = recorded_pids(standin.home)
    os.kill(before["s3"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while session_alive(before["s3"]) and time.monotonic() < deadline:
        time.sleep(0.1)

    report = standin.platform.up(standin_options(port=standin.port))

    assert report.started == ["s3"]
    assert report.reused == ["mlflow", "serving"]
    assert report.trained is True
    assert report.model["version"] == "5"
