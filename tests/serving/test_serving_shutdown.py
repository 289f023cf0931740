"""SIGTERM while requests are in flight: every one of them is answered, then the server exits cleanly in time."""

import signal
import subprocess
import threading

import httpx
import orjson
from serving_support import ServingServer, wait_for, wait_ready

from mlplat.local import services

IN_FLIGHT = 6
EXIT_WITHIN_S = 30


def test_sigterm_finishes_every_in_flight_request_and_exits_within_30_s(background) -> None:  # type: ignore[no-untyped-def]
    server = wait_ready(background.sigterm)  # two workers, so the supervisor's shutdown path is the one tested
    _in_flight_then_sigterm(server)


def _in_flight_then_sigterm(server: ServingServer) -> None:
    results: list[tuple[int, object]] = []
    body = orjson.dumps({"dataframe_records": [{"delay": 0.5}]})

    def request() -> None:
        # One connection per request, as independent clients would have.
        response = httpx.post(
            f"{server.url}/invocations", content=body, headers={"content-type": "application/json"}, timeout=60
        )
        results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=request) for _ in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    wait_for(
        lambda: server.metrics()[("mlplat_serving_in_flight_requests", ())] == IN_FLIGHT,
        timeout=20,
        what=f"{IN_FLIGHT} requests in flight",
    )
    server.service.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=EXIT_WITHIN_S)
    try:
        code = server.service.process.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        code = None
    assert results == [(200, {"predictions": [0.5]})] * IN_FLIGHT
    assert code == 0, server.log_text()[-3000:]
    assert services.port_is_free(server.port)
    assert "Traceback" not in server.log_text()
