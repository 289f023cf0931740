"""The generic (pyfunc) path, the in-flight bound and the inference timeout, on a model that sleeps on request."""

import threading

import httpx
import orjson
import pytest
from serving_support import CSV, ServingServer, wait_for, wait_ready
from serving_support import SLOW_INFERENCE_TIMEOUT as INFERENCE_TIMEOUT
from serving_support import SLOW_MAX_IN_FLIGHT as MAX_IN_FLIGHT


@pytest.fixture(scope="module")
def slow_server(background) -> ServingServer:  # type: ignore[no-untyped-def]
    """The session's pyfunc server, with the in-flight bound and inference timeout these tests exercise."""
    return wait_ready(background.slow)


def delays(*values: float) -> bytes:
    return orjson.dumps({"dataframe_records": [{"delay": value} for value in values]})


def in_flight(server: ServingServer) -> float:
    return server.metrics()[("mlplat_serving_in_flight_requests", ())]


def test_a_model_without_fast_path_files_is_served_through_mlflows_pyfunc_loader(slow_server: ServingServer) -> None:
    version = httpx.get(f"{slow_server.url}/version").json()
    assert (version["status"], version["flavor"]) == ("ready", "python_function")
    response = slow_server.invoke(delays(0, 0.01))
    assert (response.status_code, response.json()) == (200, {"predictions": [0.0, 0.01]})


def test_the_pyfunc_path_takes_csv_and_answers_csv(slow_server: ServingServer) -> None:
    response = slow_server.invoke("delay\n0\n0.02\n", content_type=CSV, accept=CSV)
    assert (response.status_code, response.text) == (200, "0.0\n0.02\n")


def test_past_the_in_flight_bound_requests_get_503_with_retry_after_at_once(slow_server: ServingServer) -> None:
    results: list[int] = []

    def slow_request() -> None:
        results.append(slow_server.invoke(delays(0.6)).status_code)

    threads = [threading.Thread(target=slow_request) for _ in range(MAX_IN_FLIGHT)]
    for thread in threads:
        thread.start()
    wait_for(lambda: in_flight(slow_server) == MAX_IN_FLIGHT, timeout=10, what="two requests in flight")
    refused = slow_server.invoke(delays(0), timeout=1.0)  # "at once": well before the slow ones finish
    for thread in threads:
        thread.join()
    assert (refused.status_code, refused.json()) == (
        503,
        {"error": f"the server is at its limit of {MAX_IN_FLIGHT} requests in flight; retry later"},
    )
    assert refused.headers["retry-after"] == "1"
    assert results == [200] * MAX_IN_FLIGHT


def test_inference_past_the_timeout_gets_504(slow_server: ServingServer) -> None:
    response = slow_server.invoke(delays(INFERENCE_TIMEOUT + 0.5))
    assert (response.status_code, response.json()) == (
        504,
        {"error": f"inference did not finish within {INFERENCE_TIMEOUT} s"},
    )
    # The server keeps serving once the abandoned inference is over.
    wait_for(lambda: slow_server.invoke(delays(0)).status_code == 200, timeout=10, what="the server to recover")
