"""Operator checks of the running local platform with pytest-testinfra's local backend.

What an operator would check by hand after `mlplat up --local`: the recorded processes run, each listens on
127.0.0.1 only, `.mlplat/` is private, the bucket has the cloud's layout, the endpoint and MLflow answer, and the
`champion` alias points at the version being served.
"""

import stat
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
import testinfra

from mlplat.local import services
from mlplat.local import state as st

pytestmark = pytest.mark.timeout(300)

EXPECTED_COMMANDS = {"s3": "moto.server", "mlflow": "mlflow server", "serving": "-m serving"}


@pytest.fixture(scope="module")
def host() -> Any:
    return testinfra.get_host("local://")


@pytest.fixture(scope="module")
def running(local_platform: Any) -> Iterator[st.State]:
    local_platform.ensure_up()
    state = st.load(local_platform.home)
    assert state is not None
    yield state


def test_each_recorded_part_runs_as_the_process_that_was_started(host: Any, running: st.State) -> None:
    for name, part in running.parts.items():
        process = host.process.get(pid=part.pid)
        assert EXPECTED_COMMANDS[name] in process.args, (name, process.args)
        assert part.is_alive()


def test_each_port_listens_on_127_0_0_1_only(host: Any, running: st.State) -> None:
    listening = host.socket.get_listening_sockets()

    for part in running.parts.values():
        assert host.socket(f"tcp://127.0.0.1:{part.port}").is_listening, part.name
        addresses = {entry.rsplit(":", 1)[0] for entry in listening if entry.endswith(f":{part.port}")}
        assert addresses == {"tcp://127.0.0.1"}, (part.name, addresses)


def test_the_home_and_its_state_logs_and_database_are_private_to_the_owner(host: Any, local_platform: Any) -> None:
    home = local_platform.home
    assert host.file(str(home)).mode == 0o700
    assert host.file(str(home / "state.json")).mode == 0o600
    assert host.file(str(home / "logs")).mode == 0o700
    for log in ("s3", "mlflow", "train", "serving"):
        assert host.file(str(home / "logs" / f"{log}.log")).mode == 0o600, log
    assert host.file(str(home / "mlflow.db")).mode == 0o600
    writable_by_others = [p for p in home.rglob("*") if stat.S_IMODE(p.lstat().st_mode) & 0o022]
    assert writable_by_others == []
    assert [p for p in (home / "job").rglob("*") if stat.S_IMODE(p.lstat().st_mode) & 0o077] == []


def test_the_bucket_exists_with_the_cloud_prefixes_and_the_data_set(running: st.State) -> None:
    env = services.LOCAL_AWS_ENV
    client = boto3.client(
        "s3",
        endpoint_url=running.parts["s3"].url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    keys = {item["Key"] for item in client.list_objects_v2(Bucket=running.bucket)["Contents"]}

    assert {"mlflow/", "datasets/", "checkpoints/", "data-capture/"} <= keys
    assert "datasets/abalone/v1/abalone.csv" in keys
    assert any(key.startswith("mlflow/") and key != "mlflow/" for key in keys)
    assert any(key.startswith("checkpoints/abalone-local-") for key in keys)


def test_the_endpoint_answers_ping_with_200(host: Any, running: st.State) -> None:
    url = running.parts["serving"].url
    code = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {url}/ping")

    assert code == "200"


def test_the_mlflow_api_answers(running: st.State) -> None:
    response = httpx.get(
        f"{running.parts['mlflow'].url}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "mlplat-local-dev"},
    )

    assert response.status_code == 200
    assert response.json()["experiment"]["name"] == "mlplat-local-dev"


def test_the_champion_alias_points_at_the_version_being_served(running: st.State) -> None:
    alias = httpx.get(
        f"{running.parts['mlflow'].url}/api/2.0/mlflow/registered-models/alias",
        params={"name": "abalone", "alias": "champion"},
    ).json()["model_version"]
    served = httpx.get(f"{running.parts['serving'].url}/version").json()

    assert str(served["version"]) == str(alias["version"])
    assert served["name"] == "abalone"
