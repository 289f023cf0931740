"""Builders shared by the monitoring tests: reference profiles in training's format and capture records."""

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
ABALONE = REPO_ROOT / "training" / "data" / "abalone.csv"
FEATURES = ["Sex", "Length", "Diameter", "Height", "WholeWeight", "ShuckedWeight", "VisceraWeight", "ShellWeight"]


def abalone() -> pd.DataFrame:
    return pd.read_csv(ABALONE)


def numeric_profile(values: Sequence[float], seed: int = 0) -> dict[str, Any]:
    array = np.asarray(values, dtype=float)
    counts, edges = np.histogram(array, bins=10)
    rng = np.random.default_rng(seed)
    sample = rng.choice(array, size=min(500, len(array)), replace=False)
    return {
        "type": "numeric",
        "quantiles": np.quantile(array, np.linspace(0, 1, 21)).tolist(),
        "bins": edges.tolist(),
        "counts": counts.tolist(),
        "mean": float(array.mean()),
        "std": float(array.std()),
        "sample": sample.tolist(),
    }


def build_profile(frame: pd.DataFrame, prediction: Sequence[float] | None = None) -> dict[str, Any]:
    """A `mlplat-profile/1` document of `frame`'s features, as training logs it."""
    features: dict[str, Any] = {}
    for name in FEATURES:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            shares = frame[name].value_counts(normalize=True)
            features[name] = {"type": "categorical", "frequencies": {str(k): float(v) for k, v in shares.items()}}
        else:
            features[name] = numeric_profile(frame[name].to_numpy())
    return {
        "format": "mlplat-profile/1",
        "features": features,
        "prediction": numeric_profile(prediction) if prediction is not None else None,
        "n": len(frame),
    }


def capture_record(
    request: bytes,
    content_type: str,
    response: bytes,
    when: datetime,
    model_version: str | None = "1",
    model_name: str | None = "abalone",
    base64_encode: bool = False,
) -> dict[str, Any]:
    """One SageMaker data-capture record."""

    def side(body: bytes, kind: str, mode: str) -> dict[str, str]:
        if base64_encode:
            return {
                "observedContentType": kind,
                "mode": mode,
                "data": base64.b64encode(body).decode(),
                "encoding": "BASE64",
            }
        encoding = "CSV" if kind.startswith("text/csv") else "JSON"
        return {"observedContentType": kind, "mode": mode, "data": body.decode(), "encoding": encoding}

    meta: dict[str, Any] = {"eventId": str(uuid.uuid4()), "inferenceTime": when.astimezone(UTC).isoformat()}
    if model_name:
        meta["modelName"] = model_name
    if model_version:
        meta["modelVersion"] = model_version
    return {
        "captureData": {
            "endpointInput": side(request, content_type, "INPUT"),
            "endpointOutput": side(response, "application/json", "OUTPUT"),
        },
        "eventMetadata": meta,
        "eventVersion": "0",
    }


def frame_records(frame: pd.DataFrame, when: datetime, batch: int = 20, **kwargs: Any) -> list[dict[str, Any]]:
    """Capture records of `frame`'s rows sent as JSON `dataframe_split` batches, predictions from Rings."""
    out = []
    for start in range(0, len(frame), batch):
        part = frame.iloc[start : start + batch]
        body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": part[FEATURES].values.tolist()}}).encode()
        predictions = json.dumps({"predictions": part["Rings"].astype(float).tolist()}).encode()
        out.append(capture_record(body, "application/json", predictions, when, **kwargs))
    return out


def write_capture(root: Path, endpoint: str, records: list[dict[str, Any]], when: datetime, name: str = "part") -> Path:
    """Records as one JSON Lines file under `root/data-capture/<endpoint>/YYYY/MM/DD/HH/`."""
    directory = root / "data-capture" / endpoint / when.strftime("%Y/%m/%d/%H")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{uuid.uuid4().hex[:8]}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def shifted(frame: pd.DataFrame, new_category_every: int | None = 5) -> pd.DataFrame:
    """Mean shift in Length and WholeWeight, and (optionally) a Sex value training never saw."""
    out = frame.copy()
    out["Length"] = out["Length"] + 0.12
    out["WholeWeight"] = out["WholeWeight"] * 1.6
    if new_category_every:
        out.loc[out.index[::new_category_every], "Sex"] = "U"
    return out
