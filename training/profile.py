"""The reference profile of the training split, logged as `reference_profile.json` for drift monitoring.

Format `mlplat-profile/1`:

```
{"format": "mlplat-profile/1",
 "n": <training rows>,
 "features": {
   "<numeric column>": {"type": "numeric",
                        "quantiles": [21 values at 0, 0.05, ..., 1.0],
                        "bins": [bin edges at the deciles 0, 0.1, ..., 1.0; duplicates removed, so <= 11 edges],
                        "counts": [rows per bin, len(bins) - 1 of them; the last bin includes its right edge],
                        "mean": float, "std": float,
                        "sample": [up to 500 raw values, a seeded random sample]},
   "<categorical column>": {"type": "categorical", "frequencies": {"M": 0.36, ...}}},
 "prediction": {the numeric form above, over the model's predictions of the training split}}
```
"""

from typing import Any

import numpy as np
import pandas as pd

FORMAT = "mlplat-profile/1"
SAMPLE_SIZE = 500


def numeric_profile(values: np.ndarray, seed: int = 0) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float64)
    quantiles = np.quantile(values, np.linspace(0.0, 1.0, 21))
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, 11)))
    if edges.size < 2:
        edges = np.array([edges[0], edges[0]])
    counts, _ = np.histogram(values, bins=edges)
    rng = np.random.default_rng(seed)
    sample = values if values.size <= SAMPLE_SIZE else rng.choice(values, SAMPLE_SIZE, replace=False)
    return {
        "type": "numeric",
        "quantiles": [float(value) for value in quantiles],
        "bins": [float(value) for value in edges],
        "counts": [int(count) for count in counts],
        "mean": float(values.mean()),
        "std": float(values.std()),
        "sample": [float(value) for value in sample],
    }


def categorical_profile(values: pd.Series) -> dict[str, Any]:
    frequencies = values.astype(str).value_counts(normalize=True).sort_index()
    return {"type": "categorical", "frequencies": {str(key): float(value) for key, value in frequencies.items()}}


def categorical_frequencies(codes: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """The categorical profile of integer codes into `labels` (no text per row is ever built)."""
    counts = np.bincount(codes, minlength=len(labels))
    total = max(int(counts.sum()), 1)
    present = sorted((labels[code], int(count)) for code, count in enumerate(counts) if count)
    return {"type": "categorical", "frequencies": {label: count / total for label, count in present}}


def reference_profile(
    train: pd.DataFrame, numeric: list[str], categorical: list[str], predictions: np.ndarray, seed: int = 0
) -> dict[str, Any]:
    """The profile of the raw training rows (feature columns) and of the model's predictions on them."""
    features: dict[str, Any] = {}
    for column in train.columns:
        if column in numeric:
            features[column] = numeric_profile(train[column].to_numpy(), seed)
        elif column in categorical:
            features[column] = categorical_profile(train[column])
    return with_prediction(features, len(train), predictions, seed)


def with_prediction(features: dict[str, Any], n: int, predictions: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """The whole profile from the features' part (computed while the raw columns exist) and the predictions."""
    return {"format": FORMAT, "n": n, "features": features, "prediction": numeric_profile(predictions, seed)}
