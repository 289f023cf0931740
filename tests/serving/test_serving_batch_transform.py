"""SageMaker Batch Transform's contract: `GET /execution-parameters`, and SplitType=Line with BatchStrategy=MultiRecord
bodies (CSV or JSON Lines, several records a request) answered with one output line per record, in order."""

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from serving_models import COLUMNS, sample_rows, save_abalone_model

from serving.app import ServingApp
from serving.config import Settings
from serving.handler import invoke
from serving.model import MlpModel, load_model_dir
from serving.protocol import CSV, JSON, JSON_LINES
from serving.runtime import Inference, ModelHolder
from serving.source import ModelSource

LINES = 10_000


@pytest.fixture(scope="module")
def fast_model(tmp_path_factory: pytest.TempPathFactory) -> MlpModel:
    root = tmp_path_factory.mktemp("transform-model")
    model = load_model_dir(save_abalone_model(root / "model", root / "artifacts"), "abalone", "1", "dir", LINES)
    assert isinstance(model, MlpModel)
    return model


def _one_by_one(model: MlpModel, rows: list[list[Any]]) -> list[float]:
    body = orjson.dumps({"inputs": rows})
    return [float(value) for value in orjson.loads(invoke(model, body, JSON, None, LINES).body)["predictions"]]


def test_a_transform_of_10000_csv_lines_returns_10000_lines_in_order(fast_model: MlpModel) -> None:
    rows = sample_rows(LINES)
    body = "".join(",".join(str(value) for value in row) + "\n" for row in rows).encode()
    response = invoke(fast_model, body, CSV, CSV, LINES)
    lines = response.body.decode().splitlines()
    assert (response.status, len(lines)) == (200, LINES)
    np.testing.assert_allclose([float(line) for line in lines], _one_by_one(fast_model, rows), rtol=1e-6)


def test_json_lines_records_get_one_json_line_each_in_order(fast_model: MlpModel) -> None:
    rows = sample_rows(50)
    body = b"".join(orjson.dumps(dict(zip(COLUMNS, row, strict=True))) + b"\n" for row in rows)
    response = invoke(fast_model, body, JSON_LINES, JSON_LINES, LINES)
    got = [orjson.loads(line) for line in response.body.splitlines()]
    assert (response.status, response.media_type, len(got)) == (200, JSON_LINES, 50)
    np.testing.assert_allclose(got, _one_by_one(fast_model, rows), rtol=1e-6)


def test_a_malformed_json_line_gets_400_naming_the_line(fast_model: MlpModel) -> None:
    body = orjson.dumps(sample_rows(1)[0]) + b"\n{oops\n"
    response = invoke(fast_model, body, JSON_LINES, None, LINES)
    assert (response.status, orjson.loads(response.body)) == (
        400,
        {"error": "malformed JSON Lines at line 2: unexpected character, expected a string key"},
    )


def test_execution_parameters_tell_batch_transform_our_concurrency_strategy_and_payload_limit(
    tmp_path: Path,
) -> None:
    settings = Settings(workers=3, max_body_bytes=6 * 1024 * 1024)
    app = ServingApp(settings, ModelHolder(settings, ModelSource.parse(str(tmp_path))), Inference(settings))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/execution-parameters", "method": "GET", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert (sent[0]["status"], orjson.loads(sent[1]["body"])) == (
        200,
        {"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6},
    )
