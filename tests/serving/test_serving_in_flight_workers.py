"""The in-flight gauge a cluster autoscaler scales on (`autoscaling: {metric: inflight}`): one number per pod, the
sum over its workers, whichever worker answers `/metrics`."""

import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from serving_support import ServingServer, start_serving, wait_for

REQUESTS = 4


@pytest.fixture(scope="module")
def two_workers(slow_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingServer]:
    server = start_serving("serving-in-flight", str(slow_model_dir), tmp_path_factory.mktemp("in-flight"), workers=2)
    yield server
    server.service.stop()


def _in_flight(server: ServingServer) -> float:
    return server.metrics()[("mlplat_serving_in_flight_requests", ())]


def test_every_worker_reports_the_pods_total_in_flight_requests(two_workers: ServingServer) -> None:
    body = orjson.dumps({"dataframe_records": [{"delay": 1.5}]})
    threads = [threading.Thread(target=two_workers.invoke, args=(body,)) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    wait_for(lambda: _in_flight(two_workers) == REQUESTS, timeout=10, what=f"{REQUESTS} requests in flight")
    # Each scrape lands on either worker; every one of them must see all four, not only its own.
    seen = {_in_flight(two_workers) for _ in range(8)}
    for thread in threads:
        thread.join()
    assert seen == {REQUESTS}
    wait_for(lambda: _in_flight(two_workers) == 0, timeout=10, what="no request in flight")
