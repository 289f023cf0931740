"""Fixtures of the training tests (helpers live in training_support.py)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from training_support import ABALONE


@pytest.fixture
def tracking_env(mlflow_server: Any, s3_server: Any) -> dict[str, str]:
    """Environment that points the entrypoint at the session's tracking server and S3 store."""
    return {
        "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
        "AWS_ENDPOINT_URL": s3_server.endpoint_url,
    }


@pytest.fixture(scope="session")
def large_abalone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Abalone repeated 8 times (33k rows): epochs long enough to interrupt, still a few seconds in all."""
    path = tmp_path_factory.mktemp("large") / "abalone-x8.csv"
    frame = pd.read_csv(ABALONE)
    pd.concat([frame] * 8, ignore_index=True).to_csv(path, index=False)
    return path


@pytest.fixture
def mlflow_client(mlflow_server: Any) -> Iterator[Any]:
    from mlflow import MlflowClient

    yield MlflowClient(tracking_uri=mlflow_server.tracking_uri)
