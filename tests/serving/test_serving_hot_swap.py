"""Serving from the registry: 503 until the alias exists, then the alias's version, then a promoted version swapped in
under load without one failed request."""

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from serving_models import register_abalone_model, sample_rows
from serving_support import KeepAliveClient, ServingServer, start_serving, wait_for

MODEL = "abalone-swap"
SHIFT = 100.0  # version 2 predicts exactly this much more than version 1
LOAD_CONNECTIONS = 3


@dataclass
class Registered:
    server: ServingServer
    tracking_uri: str
    work: Path
    ping_before: tuple[int, bytes]
    version_before: dict[str, object]
    first_version: str


@pytest.fixture(scope="module")
def registered(mlflow_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:  # type: ignore[no-untyped-def]
    """A server started on `models:/abalone-swap@champion` before that model exists; then version 1 is registered."""
    work = tmp_path_factory.mktemp("serving-swap")
    server = start_serving(
        "serving-swap",
        f"models:/{MODEL}@champion",
        work,
        env={"MLFLOW_TRACKING_URI": mlflow_server.tracking_uri, "MLPLAT_MODEL_POLL_INTERVAL": "0.5"},
        wait=False,
    )
    try:

        def ping() -> httpx.Response | None:
            try:
                return httpx.get(f"{server.url}/ping", timeout=5)
            except httpx.TransportError:
                return None

        before = wait_for(ping, timeout=120, what="the server to listen")
        version_before = wait_for(
            lambda: (document := httpx.get(f"{server.url}/version", timeout=5).json()).get("error") and document,
            what="the first load attempt to fail",
        )
        first = register_abalone_model(mlflow_server.tracking_uri, MODEL, work / "v1")
        wait_for(lambda: (response := ping()) is not None and response.status_code == 200, what="version 1 to load")
        yield Registered(
            server, mlflow_server.tracking_uri, work, (before.status_code, before.content), version_before, first
        )
    finally:
        server.service.stop()


def test_ping_is_503_with_an_empty_body_until_the_model_is_loaded(registered: Registered) -> None:
    assert registered.ping_before == (503, b"")
    assert registered.version_before["status"] == "loading"
    assert registered.version_before["version"] is None
    assert registered.version_before["source"] == f"models:/{MODEL}@champion"
    assert MODEL in str(registered.version_before["error"])  # why it is not loaded yet: no such model


def test_the_aliased_registry_version_serves_with_its_run_id(registered: Registered) -> None:
    version = httpx.get(f"{registered.server.url}/version").json()
    assert registered.first_version == "1"
    assert version["status"] == "ready"
    assert (version["name"], version["version"], version["flavor"]) == (MODEL, "1", "mlplat-mlp/1")
    assert isinstance(version["run_id"], str) and len(version["run_id"]) == 32


def test_a_promoted_version_is_swapped_in_under_load_without_a_failed_request(registered: Registered) -> None:
    server = registered.server
    body = orjson.dumps({"inputs": sample_rows(1)})
    stop = threading.Event()
    seen: list[list[tuple[int, float]]] = [[] for _ in range(LOAD_CONNECTIONS)]
    errors: list[str] = []

    def load(index: int) -> None:
        connection = KeepAliveClient(server.port)
        for _ in range(100_000):  # bounded; the test stops it much earlier
            if stop.is_set():
                break
            try:
                status, content = connection.post(body)
            except OSError as error:
                errors.append(repr(error))
                return
            value = orjson.loads(content)["predictions"][0] if status == 200 else float("nan")
            seen[index].append((status, value))
        connection.close()

    threads = [threading.Thread(target=load, args=(index,)) for index in range(LOAD_CONNECTIONS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: all(len(answers) > 20 for answers in seen), timeout=30, what="load on version 1")
        second = register_abalone_model(registered.tracking_uri, MODEL, registered.work / "v2", target_shift=SHIFT)
        wait_for(lambda: httpx.get(f"{server.url}/version").json()["version"] == second, timeout=60, what="the swap")
        settled = [len(answers) for answers in seen]
        wait_for(
            lambda: all(len(a) > n + 20 for a, n in zip(seen, settled, strict=True)),
            timeout=30,
            what="load on version 2",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert errors == []
    answers = [answer for per_connection in seen for answer in per_connection]
    assert {status for status, _ in answers} == {200}
    old = seen[0][0][1]
    new = old + SHIFT
    for per_connection in seen:
        values = [value for _, value in per_connection]
        # Each answer is wholly one version's, and once a connection saw the new version it never sees the old one.
        assert all(value == pytest.approx(old, abs=1e-3) or value == pytest.approx(new, abs=1e-3) for value in values)
        first_new = next(i for i, value in enumerate(values) if value == pytest.approx(new, abs=1e-3))
        assert all(value == pytest.approx(new, abs=1e-3) for value in values[first_new:])
        assert first_new > 0

    samples = server.metrics()
    info = {dict(key[1])["version"]: value for key, value in samples.items() if key[0] == "mlplat_serving_model_info"}
    assert info == {"1": 0.0, second: 1.0}
    assert samples[("mlplat_serving_model_swaps_total", ())] == 1
