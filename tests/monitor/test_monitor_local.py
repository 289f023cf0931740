"""End to end on the local platform: real training and serving with data capture, then `mlplat monitor --local`.

One platform for the module: in-distribution traffic -> exit 0; shifted traffic (a mean shift in Length and
WholeWeight) -> exit 3 naming exactly those; `--retrain` -> a new registered version. The serving server refuses a
category training never saw (422), so the new-category case is covered on captures in test_drift.py.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow.tracking import MlflowClient
from monitor_support import FEATURES, abalone, shifted
from typer.testing import CliRunner

from mlplat.cli import app
from mlplat.local import services
from mlplat.local import state as st
from mlplat.local.platform import LocalPlatform, UpOptions
from mlplat.monitor import capture

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[st.LocalEndpoints]:
    home = tmp_path_factory.mktemp("mlplat-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLPLAT_HOME", str(home))
    # The serving process inherits this: captured files land within a second, so the test need not wait long.
    patch.setenv("MLPLAT_CAPTURE_FLUSH_SECONDS", "0.5")
    platform = LocalPlatform(home)
    try:
        platform.up(UpOptions(stack="dev", epochs=3, port=services.free_port()))
        found = st.discover(home)
        # `up` sends one prediction of its own; once it is captured, the tests' windows hold only their traffic.
        _wait_for_rows(found, 1)
        yield found
    finally:
        platform.down()
        patch.undo()


def _send(url: str, frame: Any, batch: int = 25) -> None:
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for start in range(0, len(frame), batch):
            rows = frame.iloc[start : start + batch][FEATURES].values.tolist()
            response = client.post("/invocations", json={"dataframe_split": {"columns": FEATURES, "data": rows}})
            assert response.status_code == 200, response.text


def _captured_rows(local: st.LocalEndpoints) -> int:
    assert local.data_capture_uri is not None
    client = _s3(local)
    found = capture.read_captures(local.data_capture_uri, client=client)
    return capture.to_table(found.records, FEATURES).rows


def _s3(local: st.LocalEndpoints) -> Any:
    import boto3

    env = local.aws_env
    return boto3.client(
        "s3",
        endpoint_url=local.s3_url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def _wait_for_rows(local: st.LocalEndpoints, rows: int, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while _captured_rows(local) < rows:
        assert time.monotonic() < deadline, f"capture did not reach {rows} rows"
        time.sleep(0.25)


def _clear_capture(local: st.LocalEndpoints) -> None:
    client = _s3(local)
    prefix = f"data-capture/{_endpoint(local)}/"
    listed = client.list_objects_v2(Bucket=local.bucket, Prefix=prefix).get("Contents", [])
    for item in listed:
        client.delete_object(Bucket=local.bucket, Key=item["Key"])


def _endpoint(local: st.LocalEndpoints) -> str:
    assert local.data_capture_uri is not None
    return local.data_capture_uri.rstrip("/").rsplit("/", 1)[-1]


def _monitor(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        app, ["monitor", "--local", "--json", "--output-dir", str(tmp_path / "report"), *args], catch_exceptions=False
    )
    assert result.exit_code in (0, 3), result.output
    return result.exit_code, json.loads(result.stdout)


def test_in_distribution_traffic_reports_no_drift(local: st.LocalEndpoints, tmp_path: Path) -> None:
    assert local.serving_url is not None
    _clear_capture(local)
    _send(local.serving_url, abalone().sample(n=400, random_state=31))
    _wait_for_rows(local, 400)
    code, report = _monitor(tmp_path)
    assert code == 0
    assert (report["drifted"], report["drifted_features"], report["rows"]) == (False, [], 400)
    assert report["endpoint"] == "abalone-dev"
    assert report["thresholds"] == {"psi": 0.25, "p_value": 0.01, "min_records": 50}
    run = MlflowClient(tracking_uri=local.mlflow_url).get_run(report["mlflow_run_id"])
    assert run.data.tags["mlplat.model.version"] == report["model"]["version"]


def test_a_category_training_never_saw_is_refused_and_not_captured(local: st.LocalEndpoints) -> None:
    assert local.serving_url is not None
    row = abalone().head(1)[FEATURES].values.tolist()
    row[0][0] = "U"
    response = httpx.post(
        f"{local.serving_url}/invocations", json={"dataframe_split": {"columns": FEATURES, "data": row}}, timeout=30
    )
    assert response.status_code == 422


def test_shifted_traffic_exits_three_naming_exactly_the_shifted_features(
    local: st.LocalEndpoints, tmp_path: Path
) -> None:
    assert local.serving_url is not None
    _clear_capture(local)
    _send(local.serving_url, shifted(abalone().sample(n=400, random_state=32), new_category_every=None))
    _wait_for_rows(local, 400)
    code, report = _monitor(tmp_path)
    assert code == 3
    assert report["drifted_features"] == ["Length", "WholeWeight"]
    assert sorted(Path(p).name for p in report["plots"]) == sorted(
        ["Length.png", "WholeWeight.png"] + (["prediction.png"] if report["prediction_drifted"] else [])
    )


def test_retrain_on_drift_registers_a_new_version(local: st.LocalEndpoints, tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=local.mlflow_url, registry_uri=local.mlflow_url)
    name = local.model_name or "abalone"
    before = max(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    code, report = _monitor(tmp_path, "--retrain", "--epochs", "2")
    assert code == 3
    after = max(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    assert after == before + 1
    assert report["retrain"]["version"] == str(after)
    assert report["retrain"]["dataset"] == f"s3://{local.bucket}/datasets/abalone/v1/"
