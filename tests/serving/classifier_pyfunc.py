"""MLflow models-from-code: the pandas pyfunc of the test classifier (`mlplat-mlp-classifier/1`), the reference the
fast path is checked against: labels by default, `{label: probability}` per row with `params={"output": ...}`."""

import json
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.pyfunc import PythonModel, PythonModelContext


class ClassifierPyfunc(PythonModel):
    """Raw numeric columns in, class labels (or probabilities) out."""

    def load_context(self, context: PythonModelContext) -> None:
        with open(context.artifacts["mlplat_model"]) as handle:
            self.spec = json.load(handle)
        self.module = torch.export.load(context.artifacts["program"]).module()

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None) -> Any:
        spec = self.spec
        x = model_input[spec["encoded_features"]].to_numpy(dtype=np.float32)
        std = np.asarray(spec["std"], dtype=np.float32)
        x = (x - np.asarray(spec["mean"], dtype=np.float32)) / np.where(std == 0, 1, std)
        with torch.inference_mode():
            logits = self.module(torch.from_numpy(x.astype(np.float32))).numpy().astype(np.float64)
        if (params or {}).get("output", "labels") == "labels":
            return [spec["classes"][index] for index in logits.argmax(axis=1)]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = exp / exp.sum(axis=1, keepdims=True)
        return [dict(zip(map(str, spec["classes"]), row, strict=True)) for row in probabilities.tolist()]


mlflow.models.set_model(ClassifierPyfunc())
