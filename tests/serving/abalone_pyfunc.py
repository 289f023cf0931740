"""MLflow models-from-code: the pandas pyfunc of the test model, which reads the same spec and program as the fast path.

It stands in for what the training container logs, so `mlflow models serve` (and our generic fallback) can serve the
model too, and so tests can check that the fast path gives the same numbers as the pandas path.
"""

import json
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.pyfunc import PythonModel, PythonModelContext


class AbalonePyfunc(PythonModel):
    """Raw columns in, rings out."""

    def load_context(self, context: PythonModelContext) -> None:
        with open(context.artifacts["mlplat_model"]) as handle:
            self.spec = json.load(handle)
        self.module = torch.export.load(context.artifacts["program"]).module()

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        spec = self.spec
        encoded = []
        for feature in spec["encoded_features"]:
            column, _, value = feature.partition("=")
            if value:
                encoded.append((model_input[column] == value).to_numpy(dtype=np.float32))
            else:
                encoded.append(model_input[column].to_numpy(dtype=np.float32))
        x = np.stack(encoded, axis=1)
        std = np.asarray(spec["std"], dtype=np.float32)
        x = (x - np.asarray(spec["mean"], dtype=np.float32)) / np.where(std == 0, 1, std)
        with torch.inference_mode():
            out = self.module(torch.from_numpy(x.astype(np.float32))).numpy().reshape(-1)
        if spec.get("target_mean") is not None:
            out = out * np.float32(spec["target_std"]) + np.float32(spec["target_mean"])
        return out


mlflow.models.set_model(AbalonePyfunc())
