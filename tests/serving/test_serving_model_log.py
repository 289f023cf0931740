"""The line the serving log starts with names the model the way it was loaded: a registry version, or its source."""

import logging
from typing import Any

import pytest

from serving.config import Settings
from serving.model import ModelInfo
from serving.runtime import ModelHolder
from serving.source import ModelSource


class _Model:
    batchable = False

    def __init__(self, info: ModelInfo) -> None:
        self.info = info

    def encode(self, table: Any) -> Any:
        return table

    def predict(self, features: Any) -> Any:
        return features

    def warm(self) -> None:
        pass


def _served_line(info: ModelInfo, caplog: pytest.LogCaptureFixture) -> str:
    holder = ModelHolder(Settings(), ModelSource.parse("/nonexistent"))
    with caplog.at_level(logging.INFO, logger="serving.runtime"):
        holder._install(_Model(info), None)  # type: ignore[arg-type]
    return next(r.getMessage() for r in caplog.records if r.getMessage().startswith("serving "))


def test_a_model_directory_is_logged_by_its_source_not_as_version_none(caplog: pytest.LogCaptureFixture) -> None:
    line = _served_line(ModelInfo("abalone", None, None, "/opt/ml/model", "mlplat-mlp"), caplog)
    assert line.startswith("serving abalone from /opt/ml/model (mlplat-mlp), warmed in ")
    assert "None" not in line


def test_a_registry_version_is_logged_by_its_number(caplog: pytest.LogCaptureFixture) -> None:
    line = _served_line(ModelInfo("abalone", "7", "r1", "models:/abalone@champion", "mlplat-mlp"), caplog)
    assert line.startswith("serving abalone version 7 (mlplat-mlp), warmed in ")
