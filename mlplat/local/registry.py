"""What the local tracking server and serving server say about the model: the champion, and the version served."""

import time
from pathlib import Path
from typing import Any

import httpx

from contracts.registry import CHAMPION
from mlplat.local.bucket import sample_request
from mlplat.local.state import State


def champion_info(tracking_uri: str, model_name: str, alias: str = CHAMPION) -> dict[str, Any] | None:
    """The model version behind `model_name@alias` (version, run id, source) with its run's metrics, or None."""
    response = httpx.get(
        f"{tracking_uri}/api/2.0/mlflow/registered-models/alias",
        params={"name": model_name, "alias": alias},
        timeout=10.0,
    )
    if response.status_code == 404 or (response.status_code >= 400 and "RESOURCE_DOES_NOT_EXIST" in response.text):
        return None
    response.raise_for_status()
    version = response.json()["model_version"]
    info: dict[str, Any] = {
        "version": str(version["version"]),
        "run_id": version.get("run_id"),
        "source": version.get("source"),
    }
    if info["run_id"]:
        run = httpx.get(f"{tracking_uri}/api/2.0/mlflow/runs/get", params={"run_id": info["run_id"]}, timeout=10.0)
        if run.status_code == 200:
            metrics = run.json().get("run", {}).get("data", {}).get("metrics", [])
            info["metrics"] = {m["key"]: m["value"] for m in metrics}
    return info


def wait_for_version(serving_url: str, version: str, timeout: float) -> bool:
    """Wait until the serving server reports `version` at /version; False after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if served_version(serving_url) == version:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)


def served_version(serving_url: str) -> str | None:
    """The model version the serving server reports at /version."""
    try:
        response = httpx.get(f"{serving_url}/version", timeout=5.0)
        return str(response.json().get("version")) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def predict_once(serving_url: str, data: Path) -> dict[str, Any]:
    """One real request to /invocations with the first row of `data`; ValueError naming what the server answered."""
    body, truths = sample_request(data)
    split = body["dataframe_split"]
    return {
        "url": f"{serving_url}/invocations",
        "input": dict(zip(split["columns"], split["data"][0], strict=True)),
        "prediction": _first_prediction(serving_url, body),
        "actual": float(truths[0]),
    }


def _first_prediction(serving_url: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{serving_url}/invocations", json=body, timeout=30.0)
    if response.status_code != 200:
        raise ValueError(f"/invocations answered {response.status_code}: {response.text[:200]}")
    predictions = response.json().get("predictions")
    if not isinstance(predictions, list) or not predictions:
        raise ValueError("/invocations answered without predictions")
    return predictions[0]


def served_model(state: State) -> dict[str, Any]:
    """The recorded model, with the version the live serving server reports (and that version's run and metrics
    when it is the champion); the recorded model unchanged when serving does not answer or serves the same."""
    serving = state.parts.get("serving")
    served = served_version(serving.url) if serving is not None and serving.is_alive() else None
    if served is None or served == str(state.model.get("version")):
        return state.model
    # What the job reported (run, metrics, gate) described the recorded version; only the endpoint's facts carry over.
    model: dict[str, Any] = {k: state.model[k] for k in ("name", "alias", "uri", "endpoint_name") if k in state.model}
    mlflow = state.parts.get("mlflow")
    name = state.model.get("name")
    try:
        champion = champion_info(mlflow.url, str(name)) if mlflow is not None and name else None
    except httpx.HTTPError:
        champion = None
    if champion is not None and champion["version"] == served:
        model |= champion
    return {**model, "version": served}


# MLflow writes it beside a model logged with an `input_example`: a request body `/invocations` accepts.
EXAMPLE_FILE = "serving_input_example.json"


def serving_example(tracking_uri: str, model_name: str, version: str) -> dict[str, Any]:
    """The registered version's `serving_input_example.json`, through the tracking server's artifact proxy.

    ValueError saying how to fix it when the model has none.
    """
    located = httpx.get(
        f"{tracking_uri}/api/2.0/mlflow/model-versions/get-download-uri",
        params={"name": model_name, "version": version},
        timeout=10.0,
    )
    located.raise_for_status()
    artifact_uri = str(located.json()["artifact_uri"])
    scheme = "mlflow-artifacts:"
    if not artifact_uri.startswith(scheme):
        raise ValueError(f"model {model_name} v{version} is stored at {artifact_uri}, not behind the tracking server")
    path = artifact_uri[len(scheme) :].strip("/")
    artifacts = f"{tracking_uri}/api/2.0/mlflow-artifacts/artifacts"
    # The proxy answers a missing file with a 500 from the store: list the model's files first.
    listed = httpx.get(artifacts, params={"path": path}, timeout=10.0)
    listed.raise_for_status()
    names = {str(entry.get("path", "")).rsplit("/", 1)[-1] for entry in listed.json().get("files", [])}
    if EXAMPLE_FILE not in names:
        raise ValueError(
            f"model {model_name} v{version} has no {EXAMPLE_FILE} to predict with: log it with an input example "
            '(e.g. mlflow.pytorch.log_model(model, name="model", input_example=batch))'
        )
    response = httpx.get(f"{artifacts}/{path}/{EXAMPLE_FILE}", timeout=30.0)
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError(f"model {model_name} v{version}: {EXAMPLE_FILE} is not a JSON object")
    return body


def predict_example(serving_url: str, tracking_uri: str, model_name: str, version: str) -> dict[str, Any]:
    """One real request to /invocations with the model's own serving example; ValueError naming what went wrong."""
    prediction = _first_prediction(serving_url, serving_example(tracking_uri, model_name, version))
    return {"url": f"{serving_url}/invocations", "input": {"example": EXAMPLE_FILE}, "prediction": prediction,
            "actual": None}  # fmt: skip
