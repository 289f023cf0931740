"""The logged model's pyfunc: raw columns in (a DataFrame, `Sex` as text), predictions out.

A regressor answers target units. A classifier (`"task": "classification"` in its JSON) answers the labels as the
data spells them, or with `params={"output": "probabilities"}` one row per input mapping each class label (as a
string) to its probability: a DataFrame whose columns are the labels, which MLflow's scoring server writes as
`{"predictions": [{"benign": 0.93, "malignant": 0.07}]}`.

MLflow stores this file inside the model ("models from code"), so loading the model needs torch, numpy, pandas and
mlflow, but neither the `training` package nor a pickle. It reads the two artifacts described in
`training/export.py`: `mlplat_model.json` (how to encode) and `model.pt2` (the exported network).
"""

import json
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types.type_hints import TypeFromExample


def encode(frame: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    """Raw columns → standardised float32 matrix, in the order of `spec["encoded_features"]`."""
    missing = [column for column in spec["columns"] if column not in frame.columns]
    if missing:
        raise ValueError(f"missing input columns: {', '.join(missing)}")
    parts = [frame[spec["numeric"]].to_numpy(dtype=np.float64).reshape(len(frame), -1)]
    for column, categories in spec["categorical"].items():
        values = frame[column].astype(str).str.strip().to_numpy()
        parts.append(np.stack([values == category for category in categories], axis=1).astype(np.float64))
    encoded = np.concatenate(parts, axis=1)
    return ((encoded - np.asarray(spec["mean"])) / np.asarray(spec["std"])).astype(np.float32)


class MlplatModel(PythonModel):
    """Encode with the JSON, run the exported program."""

    def load_context(self, context: PythonModelContext) -> None:
        with open(context.artifacts["metadata"], encoding="utf-8") as handle:
            self.spec = json.load(handle)
        self.program = torch.export.load(context.artifacts["program"]).module()

    # TypeFromExample: mlflow hands predict() the input converted to the logged example's type (a DataFrame).
    def predict(
        self, context: PythonModelContext, model_input: TypeFromExample, params: dict[str, Any] | None = None
    ) -> pd.Series | pd.DataFrame | list[Any]:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        features = torch.from_numpy(encode(frame, self.spec))
        if self.spec.get("task") == "classification":
            return self._classify(features, (params or {}).get("output", "labels"))
        with torch.no_grad():
            output = self.program(features).reshape(-1).double().numpy()
        if self.spec.get("target_mean") is not None:
            output = output * float(self.spec["target_std"]) + float(self.spec["target_mean"])
        return pd.Series(output, name=self.spec["target"])

    def _classify(self, features: torch.Tensor, output: str) -> list[Any] | pd.DataFrame:
        if output not in {"labels", "probabilities"}:
            raise ValueError(f"params output must be 'labels' or 'probabilities' (got {output!r})")
        with torch.no_grad():
            probabilities = torch.softmax(self.program(features).double(), dim=1).numpy()
        classes = self.spec["classes"]
        if output == "probabilities":
            return pd.DataFrame(probabilities, columns=[str(label) for label in classes])
        # A plain list: labels are str or int, and a list is what every JSON writer takes as it is.
        return [classes[int(index)] for index in probabilities.argmax(axis=1)]


mlflow.models.set_model(MlplatModel())
