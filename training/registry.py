"""Log the pyfunc model, register it, and decide its aliases with the promotion gate.

The gate: the new version's test RMSE is compared with the `champion` version's RMSE *on the same test rows* (the
champion is loaded and scored, so a change of data cannot make an old score look better or worse; its recorded
`mlplat.test_rmse` tag is the fallback when it cannot be loaded). The new version passes when there is no champion,
or when `new < champion * (1 - margin)`. Passing sets `challenger`; with `--promote` it also moves `champion`.
The decision is recorded as the tag `mlplat.decision` on the model version and `mlplat.promotion_decision` on the run.
"""

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contracts.registry import CHALLENGER, CHAMPION, TAG_TEST_RMSE

log = logging.getLogger(__name__)

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
MODEL_NAME = "model"


@dataclass(frozen=True)
class Decision:
    """What the gate decided, and against what."""

    decision: str
    aliases: list[str]
    champion_version: str | None
    champion_test_rmse: float | None
    reason: str


def decide(new_rmse: float, champion_rmse: float | None, margin: float, promote: bool) -> Decision:
    """The promotion gate as a pure function (see the module docstring)."""
    if champion_rmse is None:
        passed, reason = True, "no champion exists"
    else:
        bar = champion_rmse * (1.0 - margin)
        passed = new_rmse < bar
        verb = "beats" if passed else "does not beat"
        reason = f"test RMSE {new_rmse:.4f} {verb} champion {champion_rmse:.4f} * (1 - {margin:g}) = {bar:.4f}"
    if not passed:
        return Decision("rejected", [], None, champion_rmse, reason)
    if promote:
        return Decision(CHAMPION, [CHALLENGER, CHAMPION], None, champion_rmse, reason)
    return Decision(CHALLENGER, [CHALLENGER], None, champion_rmse, reason)


def model_arguments(
    artifacts: dict[str, Path], example: pd.DataFrame, predictions: np.ndarray, target: str
) -> dict[str, Any]:
    """Keyword arguments shared by `save_model` (the model directory) and `log_model` (the tracking server)."""
    import mlflow
    import torch
    from mlflow.models import infer_signature

    signature = infer_signature(example, pd.Series(predictions.astype(np.float64), name=target))
    return {
        "python_model": str(PYFUNC_CODE),
        "artifacts": {name: str(path) for name, path in artifacts.items()},
        "signature": signature,
        "input_example": example,
        # Listed, not inferred: inference loads the model in a subprocess, which costs seconds per save.
        "pip_requirements": [
            f"torch=={torch.__version__.split('+')[0]}",
            f"mlflow=={mlflow.__version__}",
            f"numpy=={np.__version__}",
            f"pandas=={pd.__version__}",
        ],
    }


def save_to_directory(arguments: dict[str, Any], model_dir: Path) -> None:
    """Write the MLflow model into `model_dir` (SageMaker packs this directory as model.tar.gz)."""
    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        built = Path(scratch) / "model"
        mlflow.pyfunc.save_model(path=str(built), **arguments)
        model_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(built, model_dir, dirs_exist_ok=True)


def log_model(run_id: str, arguments: dict[str, Any]) -> Any:
    """Log the model to the run (returns mlflow's ModelInfo)."""
    import mlflow

    with mlflow.start_run(run_id=run_id):
        return mlflow.pyfunc.log_model(name=MODEL_NAME, **arguments)


def register(client: Any, name: str, model_info: Any, run_id: str) -> Any:
    """Register the logged model, or return the version this run already registered (a resumed finalisation)."""
    import mlflow

    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if existing:
        return existing[0]
    return mlflow.register_model(model_info.model_uri, name, await_registration_for=300)


def champion_version(client: Any, name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return None
        raise


def score_version(name: str, version: Any, frame: pd.DataFrame, truth: np.ndarray) -> float | None:
    """The version's RMSE on `frame`; its recorded `mlplat.test_rmse` tag when it cannot be loaded or run."""
    import mlflow

    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
        prediction = np.asarray(model.predict(frame), dtype=np.float64).reshape(-1)
        return float(np.sqrt(np.mean((prediction - truth.astype(np.float64)) ** 2)))
    except Exception as exc:
        recorded = (version.tags or {}).get(TAG_TEST_RMSE)
        log.warning("could not score champion version %s (%s); using its recorded test RMSE", version.version, exc)
        return float(recorded) if recorded is not None else None
