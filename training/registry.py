"""Log the pyfunc model, register it, and decide its aliases with the promotion gate.

The gate compares the task's metric (the recipe's `promotion_metric`: `test_rmse` for regression, `test_log_loss`
for classification; lower wins) of the new version with the `champion` version's *on the same test rows* (the
champion is loaded and scored, so a change of data cannot make an old score look better or worse; its recorded
`mlplat.<metric>` tag is the fallback when it cannot be loaded). The new version passes when there is no champion,
or when `new < champion * (1 - margin)` (for a metric where higher wins, `new > champion * (1 + margin)`).
Passing sets `challenger`; with `--promote` it also moves `champion`.
The decision is recorded as the tag `mlplat.decision` on the model version and `mlplat.promotion_decision` on the run.
"""

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
MODEL_NAME = "model"
CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Decision:
    """What the gate decided, and against what."""

    decision: str
    aliases: list[str]
    champion_version: str | None
    champion_score: float | None
    reason: str


def decide(
    new: float,
    champion: float | None,
    margin: float,
    promote: bool,
    label: str = "test RMSE",
    higher_is_better: bool = False,
) -> Decision:
    """The promotion gate as a pure function (see the module docstring); `label` names the metric in the reason."""
    if champion is None:
        passed, reason = True, "no champion exists"
    else:
        sign = "+" if higher_is_better else "-"
        bar = champion * (1.0 + margin) if higher_is_better else champion * (1.0 - margin)
        passed = new > bar if higher_is_better else new < bar
        verb = "beats" if passed else "does not beat"
        reason = f"{label} {new:.4f} {verb} champion {champion:.4f} * (1 {sign} {margin:g}) = {bar:.4f}"
    if not passed:
        return Decision("rejected", [], None, champion, reason)
    if promote:
        return Decision(CHAMPION, [CHALLENGER, CHAMPION], None, champion, reason)
    return Decision(CHALLENGER, [CHALLENGER], None, champion, reason)


def model_arguments(
    artifacts: dict[str, Path], example: pd.DataFrame, outputs: pd.Series, classifier: bool = False
) -> dict[str, Any]:
    """Keyword arguments shared by `save_model` (the model directory) and `log_model` (the tracking server).

    A classifier's signature declares the `output` parameter (default "labels"; "probabilities" on request).
    """
    import mlflow
    import torch
    from mlflow.models import infer_signature

    params = {"output": "labels"} if classifier else None
    signature = infer_signature(example, outputs, params=params)
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


def score_version(
    name: str, version: Any, metric: str, score: Callable[[Any], float], metric_tag: str | None = None
) -> float | None:
    """`score(loaded model)` for the version; its recorded `mlplat.<metric>` tag when it cannot be loaded or run."""
    import mlflow

    try:
        return score(mlflow.pyfunc.load_model(f"models:/{name}/{version.version}"))
    except Exception as exc:
        recorded = (version.tags or {}).get(metric_tag or f"mlplat.{metric}")
        log.warning("could not score champion version %s (%s); using its recorded %s", version.version, exc, metric)
        return float(recorded) if recorded is not None else None
