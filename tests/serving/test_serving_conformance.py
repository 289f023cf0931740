"""The generic path answers every model of the matrix as MLflow answers it.

Each request of every model goes to our app and to MLflow's own scoring app (`mlflow.pyfunc.scoring_server.init`,
the app `mlflow models serve` runs) in process; the KNN-on-iris model of MLflow's tests is also replayed against a
real `mlflow models serve` and a real `python -m serving`, both started once per session. Statuses must be equal,
200 bodies equal (numbers within 1e-6), and an error's `error_code` MLflow's. The differences the README documents
(415 bodies are JSON, error messages never echo the request) are the only ones allowed.
"""

import asyncio
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conformance_models import BUILDERS, Case, MatrixModel, build_matrix
from serving_support import LOOPBACK, ServingServer, start_serving

from mlplat.local import services
from serving.app import ServingApp
from serving.codec import media_type
from serving.config import Settings
from serving.generic import MODEL_FAILED, GenericRequest, PyfuncModel
from serving.model import ModelInfo
from serving.protocol import JSON
from serving.runtime import Inference, ModelHolder
from serving.source import ModelSource

TOLERANCE = 1e-6
MODEL_NAMES = [builder.__name__.replace("_", "-") for builder in BUILDERS]


@dataclass
class Answer:
    status: int
    body: bytes


@dataclass
class Pair:
    """Our app and MLflow's scoring app, both serving one model of the matrix in this process."""

    model: MatrixModel
    ours: ServingApp
    theirs: Any  # fastapi.testclient.TestClient

    def ask_ours(self, case: Case) -> Answer:
        return asyncio.run(_asgi_post(self.ours, case))

    def ask_theirs(self, case: Case) -> Answer:
        response = self.theirs.post("/invocations", content=case.body, headers={"content-type": case.content_type})
        return Answer(response.status_code, response.content)


async def _asgi_post(app: ServingApp, case: Case) -> Answer:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://conformance") as client:
        response = await client.post("/invocations", content=case.body, headers={"content-type": case.content_type})
    return Answer(response.status_code, response.content)


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MatrixModel]:
    return build_matrix(tmp_path_factory.mktemp("conformance-models"))


@pytest.fixture(scope="session")
def pairs(matrix: dict[str, MatrixModel]) -> Iterator[dict[str, Pair]]:
    import mlflow.pyfunc
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    built = {}
    for name, model in matrix.items():
        settings = Settings(max_rows=1000)
        holder = ModelHolder(settings, ModelSource.parse(str(model.path)))
        holder.model = PyfuncModel(model.path, ModelInfo(name, None, None, str(model.path), "python_function"), 1000)
        theirs = TestClient(scoring_server.init(mlflow.pyfunc.load_model(str(model.path))))
        built[name] = Pair(model, ServingApp(settings, holder, Inference(settings)), theirs)
    yield built
    for pair in built.values():
        pair.ours.inference.close()
        pair.theirs.close()


def _close(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Where two JSON documents differ (numbers within TOLERANCE); empty when they agree."""
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return [] if ours == theirs else [f"{where}: {ours!r} != {theirs!r}"]
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return (
            [] if math.isclose(ours, theirs, rel_tol=TOLERANCE, abs_tol=TOLERANCE) else [f"{where}: {ours} != {theirs}"]
        )
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if ours.keys() != theirs.keys():
            return [f"{where}: keys {sorted(ours)} != {sorted(theirs)}"]
        return [problem for key in ours for problem in _close(ours[key], theirs[key], f"{where}.{key}")]
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{where}: {len(ours)} items != {len(theirs)}"]
        return [
            problem
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for problem in _close(a, b, f"{where}[{i}]")
        ]
    return [] if ours == theirs else [f"{where}: {ours!r} != {theirs!r}"]


def _differences(case: Case, ours: Answer, theirs: Answer) -> list[str]:
    label = f"{case.name}"
    if ours.status != theirs.status:
        return [f"{label}: status {ours.status} != MLflow's {theirs.status} ({ours.body[:200]!r})"]
    if ours.status == 200:
        return [f"{label}{problem}" for problem in _close(json.loads(ours.body), json.loads(theirs.body))]
    mine = json.loads(ours.body)
    if "stack_trace" in mine or "error" not in mine:
        return [f"{label}: our error body {sorted(mine)} has a stack trace or lacks 'error'"]
    try:
        mlflow_body = json.loads(theirs.body)
    except ValueError:  # MLflow answers 415 in text/plain; ours is JSON (documented)
        return []
    if mine.get("error_code") != mlflow_body.get("error_code"):
        return [f"{label}: error_code {mine.get('error_code')} != MLflow's {mlflow_body.get('error_code')}"]
    return []


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_request_to_the_model_is_answered_as_mlflows_scoring_server_answers_it(
    pairs: dict[str, Pair], name: str
) -> None:
    pair = pairs[name]
    problems = []
    for case in pair.model.cases:
        problems += _differences(case, pair.ask_ours(case), pair.ask_theirs(case))
    assert problems == []


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_predictions_equal_mlflows_pyfunc_predict_within_a_millionth(pairs: dict[str, Pair], name: str) -> None:
    import mlflow.pyfunc

    pair = pairs[name]
    loaded = mlflow.pyfunc.load_model(str(pair.model.path))
    expected = loaded.predict(pair.model.reference_input, params=pair.model.reference_params)
    from mlflow.utils.proto_json_utils import NumpyEncoder, _get_jsonable_obj

    reference = json.loads(json.dumps(_get_jsonable_obj(expected, pandas_orient="records"), cls=NumpyEncoder))
    first = pair.model.cases[0]
    answer = pair.ask_ours(first)
    assert answer.status == 200, answer.body
    assert _close(json.loads(answer.body)["predictions"], reference) == []


def test_the_tensor_signature_request_of_the_issue_answers_200_with_mlflows_numbers(pairs: dict[str, Pair]) -> None:
    import mlflow.pyfunc

    pair = pairs["pytorch-tensor"]
    answer = pair.ask_ours(Case("issue", "application/json", b'{"inputs": [[1,1,1,1,1,1,1,1]]}'))
    expected = mlflow.pyfunc.load_model(str(pair.model.path)).predict(np.ones((1, 8), dtype=np.float32))
    assert answer.status == 200
    assert _close(json.loads(answer.body)["predictions"], np.asarray(expected).tolist()) == []


def test_a_param_of_the_wrong_type_gets_400_invalid_parameter_value_naming_the_param(pairs: dict[str, Pair]) -> None:
    pair = pairs["custom-with-params"]
    case = Case(
        "bad",
        "application/json",
        b'{"dataframe_split": {"columns": ["x", "n"], "data": [[1.0, 1]]}, "params": {"scale": "big"}}',
    )
    answer = pair.ask_ours(case)
    body = json.loads(answer.body)
    assert (answer.status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "'scale'" in body["error"]
    assert body["error"] == body["message"]


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("pytorch-tensor", b'{"inputs": [[1, 2, 3, 4, 5, 6, 7, 8]], "note": "SECRET-VALUE-1234"'),
        ("pytorch-columns", b'{"dataframe_records": [{"f0": 1.0, "comment": "SECRET-VALUE-1234"}]}'),
    ],
    ids=["malformed-json", "schema-enforcement"],
)
def test_an_error_message_never_echoes_the_request_body(pairs: dict[str, Pair], name: str, body: bytes) -> None:
    answer = pairs[name].ask_ours(Case("echo", "application/json", body))
    assert answer.status == 400
    assert b"SECRET-VALUE-1234" not in answer.body


# A real `mlflow models serve` and a real `python -m serving`, once per session, on MLflow's own test model.


@pytest.fixture(scope="session")
def real_servers(
    matrix: dict[str, MatrixModel], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServingServer, str]]:
    logs = tmp_path_factory.mktemp("conformance-logs")
    model_dir = str(matrix["knn-iris"].path)
    ours = start_serving("serving-knn", model_dir, logs, wait=False)
    port = services.free_port()
    # `mlflow models serve --env-manager local` execs uvicorn through bash: the venv's bin must be on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    argv = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", model_dir, "-h", LOOPBACK, "-p", str(port),
        "--env-manager", "local", "-w", "1",
    ]  # fmt: skip
    theirs = services.spawn("mlflow-serve-knn", argv, port, logs / "mlflow.log", env={"PATH": path})
    try:
        services.wait_healthy(f"{theirs.url}/ping", theirs.process, timeout=240, name="mlflow models serve")
        services.wait_healthy(f"{ours.url}/ping", ours.service.process, timeout=240, name="serving")
        yield ours, theirs.url
    finally:
        theirs.stop()
        ours.service.stop()


def test_mlflows_own_scoring_server_test_requests_get_the_same_answers_from_both_real_servers(
    real_servers: tuple[ServingServer, str], matrix: dict[str, MatrixModel]
) -> None:
    ours, theirs_url = real_servers
    problems = []
    for case in matrix["knn-iris"].cases:
        headers = {"content-type": case.content_type}
        mine = httpx.post(f"{ours.url}/invocations", content=case.body, headers=headers, timeout=30)
        theirs = httpx.post(f"{theirs_url}/invocations", content=case.body, headers=headers, timeout=30)
        problems += _differences(
            case, Answer(mine.status_code, mine.content), Answer(theirs.status_code, theirs.content)
        )
    assert problems == []


def test_more_rows_than_the_limit_get_422_on_the_generic_path_too(matrix: dict[str, MatrixModel]) -> None:
    from serving.handler import invoke

    model = PyfuncModel(matrix["no-signature"].path, ModelInfo("n", None, None, "dir", "python_function"), 2)
    body = json.dumps({"dataframe_records": [{"a": 1.0}, {"a": 2.0}, {"a": 3.0}]}).encode()
    response = invoke(model, body, "application/json", None, 2)
    assert (response.status, json.loads(response.body)) == (
        422,
        {"error": "3 rows exceed the limit of 2 rows per request"},
    )


# The fast parser: the frame it builds is the frame MLflow's parser builds; what it does not take, MLflow parses.

FAST_PARSED = {
    "pytorch-columns": {"dataframe_split", "dataframe_records", "charset"},
    "sklearn-regressor": {"dataframe_split", "dataframe_records", "charset"},
    "sklearn-classifier": {"dataframe_split", "dataframe_records", "charset"},
    "custom-with-params": {"dataframe_split", "dataframe_records", "charset"},
    "string-input": {"dataframe_split", "dataframe_records", "charset"},
    "all-column-types": {
        "dataframe_split",
        "dataframe_records",
        "charset",
        "ints-for-floats",
        "mixed-ints-and-floats",
        "columns-reordered",
        "integers-at-their-limits",
    },
}


def _request(case: Case) -> GenericRequest:
    return GenericRequest(case.body, media_type(case.content_type))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_fast_parser_takes_exactly_the_bodies_of_its_envelope(pairs: dict[str, Pair], name: str) -> None:
    model = pairs[name].ours.holder.model
    assert isinstance(model, PyfuncModel)
    taken = {case.name for case in pairs[name].model.cases if model.fast_parse(_request(case)) is not None}
    assert taken == FAST_PARSED.get(name, set())


@pytest.mark.parametrize("name", sorted(FAST_PARSED))
def test_the_fast_parsers_frame_equals_mlflows_parsed_frame_dtypes_included(pairs: dict[str, Pair], name: str) -> None:
    import pandas as pd
    from mlflow.pyfunc import scoring_server

    model = pairs[name].ours.holder.model
    assert isinstance(model, PyfuncModel)
    loaded = model._model
    for case in pairs[name].model.cases:
        fast = model.fast_parse(_request(case))
        if fast is None:
            continue
        theirs = scoring_server._parse_json_data(case.body, loaded.metadata, loaded.metadata.get_input_schema()).data
        pd.testing.assert_frame_equal(model._frame(fast), theirs, check_exact=True, obj=f"{name} {case.name}")


@pytest.mark.parametrize(
    ("case_name", "status", "expected"),
    [
        # MLflow's cast truncates 1.5 to the long 1 (row sum 1+2+1+4+1 = 9): ours does too, through MLflow's code.
        (
            "float-for-long",
            200,
            {"predictions": [{"sum": 9.0, "text": "t", "dtypes": "float64,float32,int64,int32,bool,str"}]},
        ),
        ("missing-column", 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_a_body_outside_the_envelope_is_parsed_and_answered_by_mlflows_code(
    pairs: dict[str, Pair], case_name: str, status: int, expected: Any
) -> None:
    pair = pairs["all-column-types"]
    case = next(case for case in pair.model.cases if case.name == case_name)
    model = pair.ours.holder.model
    assert isinstance(model, PyfuncModel)
    assert model.fast_parse(_request(case)) is None
    ours = pair.ask_ours(case)
    body = json.loads(ours.body)
    assert (ours.status, body if status == 200 else body["error_code"]) == (status, expected)
    assert _differences(case, ours, pair.ask_theirs(case)) == []


def _regressor_bodies(values: list[float]) -> list[GenericRequest]:
    columns = ["sepal_length", "sepal_width", "petal_length"]
    return [
        GenericRequest(json.dumps({"dataframe_split": {"columns": columns, "data": [[v, 3.0, 1.5]]}}).encode(), JSON)
        for v in values
    ]


def test_requests_scored_together_answer_what_each_answers_alone(matrix: dict[str, MatrixModel]) -> None:
    model = PyfuncModel(matrix["sklearn-regressor"].path, ModelInfo("r", None, None, "dir", "python_function"), 100)
    requests = _regressor_bodies([4.9, 5.8, 7.1])
    alone = [model.predict(request).predictions for request in requests]
    together = model.predict_many(requests)
    assert _close([result.predictions for result in together], alone) == []
    assert [result.span for result in together] == [slice(0, 1), slice(1, 2), slice(2, 3)]


def test_a_request_that_fails_in_a_batch_gets_its_own_error_and_the_others_their_answers(
    matrix: dict[str, MatrixModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = PyfuncModel(matrix["sklearn-regressor"].path, ModelInfo("r", None, None, "dir", "python_function"), 100)
    original = model._model.predict

    def refuse_99(data: Any, params: Any = None) -> Any:
        if (data["sepal_length"] == 99.0).any():
            raise ValueError("no 99s")
        return original(data, params=params)

    monkeypatch.setattr(model._model, "predict", refuse_99)
    outcomes = model.predict_many(_regressor_bodies([4.9, 99.0, 7.1]))
    assert [type(outcome).__name__ for outcome in outcomes] == ["GenericResult", "ServingError", "GenericResult"]
    assert (outcomes[1].status, outcomes[1].message) == (400, MODEL_FAILED)
    assert outcomes[0].span is None and outcomes[2].span is None
