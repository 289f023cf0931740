"""Test models in the format the training container logs (a pyfunc plus `model.pt2` and `mlplat_model.json`).

Used by the serving tests' fixtures and by `bench/serve.py`, until the training package produces the real thing.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
ABALONE_CSV = HERE.parents[1] / "training" / "data" / "abalone.csv"
COLUMNS = ["Sex", "Length", "Diameter", "Height", "WholeWeight", "ShuckedWeight", "VisceraWeight", "ShellWeight"]
NUMERIC = COLUMNS[1:]
CATEGORIES = {"Sex": ["F", "I", "M"]}
ENCODED = NUMERIC + [f"Sex={value}" for value in CATEGORIES["Sex"]]


def abalone_frame(rows: int | None = None) -> pd.DataFrame:
    """The raw abalone columns (and target), optionally only the first `rows`."""
    frame = pd.read_csv(ABALONE_CSV)
    return frame if rows is None else frame.head(rows)


def sample_rows(count: int) -> list[list[Any]]:
    """`count` raw rows in column order, cycling through the data set."""
    frame = abalone_frame()[COLUMNS]
    records = frame.to_numpy(dtype=object).tolist()
    return [[row[0], *(float(value) for value in row[1:])] for row in (records[i % len(records)] for i in range(count))]


def _encode(frame: pd.DataFrame) -> np.ndarray:
    parts = [frame[column].to_numpy(dtype=np.float32) for column in NUMERIC]
    parts += [(frame["Sex"] == value).to_numpy(dtype=np.float32) for value in CATEGORIES["Sex"]]
    return np.stack(parts, axis=1)


def build_artifacts(out_dir: Path, seed: int = 0, target_shift: float = 0.0, steps: int = 150) -> dict[str, str]:
    """Train a small MLP on abalone for a few steps, export it, write its spec; returns pyfunc `artifacts`.

    `target_shift` moves every prediction by that much, so two versions of the model are easy to tell apart.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    frame = abalone_frame()
    x = _encode(frame)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1
    target = frame["Rings"].to_numpy(dtype=np.float32)
    target_mean, target_std = float(target.mean()), float(target.std())
    inputs = torch.from_numpy((x - mean) / std)
    labels = torch.from_numpy((target - target_mean) / target_std).unsqueeze(1)
    net = torch.nn.Sequential(torch.nn.Linear(len(ENCODED), 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(net(inputs), labels)
        loss.backward()
        optimiser.step()
    net.eval()
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    program = torch.export.export(net, (inputs[:4],), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(out_dir / "model.pt2"))
    spec = {
        "format": "mlplat-mlp/1",
        "target": "Rings",
        "columns": COLUMNS,
        "numeric": NUMERIC,
        "categorical": CATEGORIES,
        "encoded_features": ENCODED,
        "mean": [float(value) for value in mean],
        "std": [float(value) for value in std],
        "target_mean": target_mean + target_shift,
        "target_std": target_std,
        "program": "model.pt2",
    }
    (out_dir / "mlplat_model.json").write_text(json.dumps(spec, indent=2))
    return {"mlplat_model": str(out_dir / "mlplat_model.json"), "program": str(out_dir / "model.pt2")}


def _signature() -> Any:
    from mlflow.models import infer_signature

    sample = abalone_frame(5)[COLUMNS]
    return infer_signature(sample, np.zeros(len(sample), dtype=np.float32))


def save_abalone_model(model_dir: Path, work_dir: Path, **build: Any) -> Path:
    """An MLflow model directory (as `/opt/ml/model` would hold it) of the abalone test model."""
    import mlflow.pyfunc

    artifacts = build_artifacts(work_dir, **build)
    mlflow.pyfunc.save_model(
        path=str(model_dir),
        python_model=str(HERE / "abalone_pyfunc.py"),
        artifacts=artifacts,
        signature=_signature(),
    )
    return model_dir


def save_slow_model(model_dir: Path) -> Path:
    """An MLflow model directory of the generic (no spec) model that sleeps for its input's `delay`."""
    import mlflow.pyfunc

    mlflow.pyfunc.save_model(path=str(model_dir), python_model=str(HERE / "slow_pyfunc.py"))
    return model_dir


def register_abalone_model(
    tracking_uri: str, name: str, work_dir: Path, aliases: Sequence[str] = ("champion",), **build: Any
) -> str:
    """Log the abalone model in a run, register a new version under `name`, point `aliases` at it; its version."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("serving-tests")
    artifacts = build_artifacts(work_dir, **build)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(HERE / "abalone_pyfunc.py"),
            artifacts=artifacts,
            signature=_signature(),
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    client = MlflowClient(tracking_uri)
    for alias in aliases:
        client.set_registered_model_alias(name, alias, version)
    return version


IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_frame() -> pd.DataFrame:
    """The iris measurements and their species, as a classification data set names its columns."""
    import sklearn.datasets

    iris = sklearn.datasets.load_iris()
    frame = pd.DataFrame(iris.data, columns=IRIS_COLUMNS)
    frame["species"] = np.asarray(iris.target_names, dtype=object)[iris.target]
    return frame


def save_iris_classifier(model_dir: Path, work_dir: Path, steps: int = 60) -> Path:
    """A `mlplat-mlp-classifier/1` model directory: a tiny exported network over the iris columns, its spec, and the
    pandas pyfunc of the same contract (the reference)."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema

    work_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    frame = iris_frame()
    classes = sorted(frame["species"].unique())
    x = frame[IRIS_COLUMNS].to_numpy(dtype=np.float32)
    mean, std = x.mean(axis=0), x.std(axis=0)
    target = torch.tensor([classes.index(label) for label in frame["species"]])
    inputs = torch.from_numpy((x - mean) / std)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, len(classes)))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), target).backward()
        optimiser.step()
    net.eval()
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    program = torch.export.export(net, (inputs[:4],), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(work_dir / "model.pt2"))
    spec = {
        "format": "mlplat-mlp-classifier/1",
        "task": "classification",
        "target": "species",
        "classes": classes,
        "columns": IRIS_COLUMNS,
        "numeric": IRIS_COLUMNS,
        "categorical": {},
        "encoded_features": IRIS_COLUMNS,
        "mean": [float(value) for value in mean],
        "std": [float(value) for value in std],
        "program": "model.pt2",
    }
    (work_dir / "mlplat_model.json").write_text(json.dumps(spec, indent=2))
    signature = ModelSignature(
        inputs=Schema([ColSpec(DataType.double, name) for name in IRIS_COLUMNS]),
        params=ParamSchema([ParamSpec("output", DataType.string, "labels")]),
    )
    mlflow.pyfunc.save_model(
        path=str(model_dir),
        python_model=str(HERE / "classifier_pyfunc.py"),
        artifacts={"mlplat_model": str(work_dir / "mlplat_model.json"), "program": str(work_dir / "model.pt2")},
        signature=signature,
        pip_requirements=["mlflow", "torch==2.13.0"],
    )
    return model_dir
