"""`/metrics` counts exactly the traffic it was sent, summed over both workers of the session server."""

import httpx
import orjson
from serving_models import sample_rows
from serving_support import ServingServer


def sample(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_by_status_latency_rows_and_in_flight(server: ServingServer) -> None:
    before = server.metrics()
    for _ in range(5):
        assert server.invoke(orjson.dumps({"inputs": sample_rows(3)})).status_code == 200
    assert server.invoke(b"{", content_type="application/json").status_code == 400
    assert server.invoke(b"{}", content_type="text/plain").status_code == 415
    assert httpx.get(f"{server.url}/ping").status_code == 200
    after = server.metrics()

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("mlplat_serving_requests_total", path="/invocations", status="200") == 5
    assert delta("mlplat_serving_requests_total", path="/invocations", status="400") == 1
    assert delta("mlplat_serving_requests_total", path="/invocations", status="415") == 1
    assert delta("mlplat_serving_requests_total", path="/ping", status="200") == 1
    # The first scrape counted itself after it was rendered; the second one is not counted in its own output.
    assert delta("mlplat_serving_requests_total", path="/metrics", status="200") == 1
    assert delta("mlplat_serving_request_duration_seconds_count", path="/invocations") == 7
    assert delta("mlplat_serving_request_duration_seconds_bucket", path="/invocations", le="+Inf") == 7
    assert delta("mlplat_serving_predicted_rows_total") == 15
    assert sample(after, "mlplat_serving_in_flight_requests") == 0
    assert sample(after, "mlplat_serving_model_loaded") == 1


def test_metrics_name_the_loaded_model(server: ServingServer) -> None:
    samples = server.metrics()
    info = {key: value for key, value in samples.items() if key[0] == "mlplat_serving_model_info"}
    assert info == {
        (
            "mlplat_serving_model_info",
            (("flavor", "mlplat-mlp/1"), ("name", "abalone"), ("run_id", ""), ("version", "7")),
        ): 1.0
    }
    assert sample(samples, "mlplat_serving_model_swaps_total") == 0


def test_unknown_paths_share_one_label(server: ServingServer) -> None:
    for path in ("/a", "/b", "/c"):
        assert httpx.get(f"{server.url}{path}").status_code == 404
    samples = server.metrics()
    labels = {dict(key[1]).get("path") for key in samples if key[0] == "mlplat_serving_requests_total"}
    assert labels <= {"/invocations", "/ping", "/metrics", "/version", "other"}
    assert "other" in labels
