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
    response = httpx.post(f"{serving_url}/invocations", json=body, timeout=30.0)
    if response.status_code != 200:
        raise ValueError(f"/invocations answered {response.status_code}: {response.text[:200]}")
    predictions = response.json().get("predictions")
    if not isinstance(predictions, list) or not predictions:
        raise ValueError("/invocations answered without predictions")
    split = body["dataframe_split"]
    return {
        "url": f"{serving_url}/invocations",
        "input": dict(zip(split["columns"], split["data"][0], strict=True)),
        "prediction": predictions[0],
        "actual": float(truths[0]),
    }


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
