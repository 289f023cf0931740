"""What the local tracking server and serving server say about the model: the champion, and the version served."""

import time
from typing import Any

import httpx

from contracts.registry import CHAMPION


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
