"""Fixtures of the serving tests: test models in the training container's format, and servers started as processes.

Every server is `python -m serving` on 127.0.0.1 and a free port, started once per session or module; the tests talk
to it over real HTTP (httpx, or raw sockets where the wire itself is under test).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from serving_models import COLUMNS, abalone_frame, save_abalone_model, save_slow_model
from serving_support import (
    SESSION_MAX_ROWS,
    SESSION_REQUEST_TIMEOUT,
    SLOW_INFERENCE_TIMEOUT,
    SLOW_MAX_IN_FLIGHT,
    ServingServer,
    TrainingRun,
    start_serving,
    start_training,
)


@pytest.fixture(scope="session")
def abalone_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The abalone test model as an MLflow model directory, as SageMaker puts it under /opt/ml/model."""
    root = tmp_path_factory.mktemp("abalone-model")
    return save_abalone_model(root / "model", root / "artifacts")


@pytest.fixture(scope="session")
def slow_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generic pyfunc model (no fast-path files) that sleeps for the `delay` column it is sent."""
    return save_slow_model(tmp_path_factory.mktemp("slow-model") / "model")


@pytest.fixture(scope="session")
def reference_predictions(abalone_model_dir: Path) -> np.ndarray:
    """What MLflow's own pyfunc loader predicts for the first 50 abalone rows (the pandas path)."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(abalone_model_dir))
    return np.asarray(model.predict(abalone_frame(50)[COLUMNS]), dtype=np.float64)


@dataclass
class Background:
    """Slow starts begun together at the start of the session, each awaited only by the tests that need it."""

    slow: ServingServer
    sigterm: ServingServer
    training: TrainingRun


@pytest.fixture(scope="session")
def background(slow_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    """The pyfunc servers (limits; SIGTERM, two workers) and a training run, overlapping the first tests."""
    logs = tmp_path_factory.mktemp("background-logs")
    slow_env = {
        "MLPLAT_MAX_IN_FLIGHT": str(SLOW_MAX_IN_FLIGHT),
        "MLPLAT_INFERENCE_TIMEOUT": str(SLOW_INFERENCE_TIMEOUT),
    }
    started = Background(
        slow=start_serving("serving-slow", str(slow_model_dir), logs, env=slow_env, wait=False),
        sigterm=start_serving("serving-sigterm", str(slow_model_dir), logs, workers=2, wait=False),
        training=start_training(tmp_path_factory.mktemp("trained")),
    )
    yield started
    started.slow.service.stop()
    started.sigterm.service.stop()
    started.training.stop()


@pytest.fixture(scope="session")
def server(
    abalone_model_dir: Path, background: Background, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServingServer]:
    """The fast-path server of the session: two workers, a model directory, short request deadline, small row cap."""
    logs = tmp_path_factory.mktemp("serving-logs")
    started = start_serving(
        "serving",
        str(abalone_model_dir),
        logs,
        env={
            "MLPLAT_MODEL_NAME": "abalone",
            "MLPLAT_MODEL_VERSION": "7",
            "MLPLAT_REQUEST_TIMEOUT": str(SESSION_REQUEST_TIMEOUT),
            "MLPLAT_MAX_ROWS": str(SESSION_MAX_ROWS),
        },
        workers=2,
    )
    yield started
    started.service.stop()
