"""The hosting contract: /ping, /invocations in every accepted shape (JSON and CSV, both ways), /version."""

import csv
import io

import httpx
import numpy as np
import orjson
import pytest
from serving_models import COLUMNS, abalone_frame, sample_rows
from serving_support import CSV, JSON, ServingServer

ROWS = sample_rows(50)


def predictions(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    return np.asarray(orjson.loads(response.content)["predictions"], dtype=np.float64)


def test_ping_answers_200_with_an_empty_body_once_the_model_is_loaded(server: ServingServer) -> None:
    response = httpx.get(f"{server.url}/ping")
    assert response.status_code == 200
    assert response.content == b""


def test_inputs_as_rows_are_scored_like_mlflows_own_pandas_path(
    server: ServingServer, reference_predictions: np.ndarray
) -> None:
    got = predictions(server.invoke(orjson.dumps({"inputs": ROWS})))
    np.testing.assert_allclose(got, reference_predictions, rtol=1e-5)


@pytest.mark.parametrize(
    "body",
    [
        {"instances": ROWS},
        {"instances": [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]},
        {"dataframe_split": {"columns": COLUMNS, "data": ROWS}},
        {"dataframe_split": {"columns": COLUMNS[::-1], "data": [row[::-1] for row in ROWS], "index": list(range(50))}},
        {"dataframe_records": [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]},
        {"inputs": {column: [row[i] for row in ROWS] for i, column in enumerate(COLUMNS)}},
        [dict(zip(COLUMNS, row, strict=True)) for row in ROWS],
        ROWS,
    ],
    ids=[
        "instances-rows",
        "instances-records",
        "dataframe-split",
        "dataframe-split-reordered",
        "dataframe-records",
        "inputs-columnar",
        "bare-records",
        "bare-rows",
    ],
)
def test_every_json_shape_gives_the_same_predictions(
    server: ServingServer, reference_predictions: np.ndarray, body: object
) -> None:
    got = predictions(server.invoke(orjson.dumps(body)))
    np.testing.assert_allclose(got, reference_predictions, rtol=1e-5)


def test_integers_are_accepted_for_numeric_columns(server: ServingServer) -> None:
    got = predictions(server.invoke(orjson.dumps({"inputs": [["M", 1, 1, 0, 1, 0, 0, 0]]})))
    assert got.shape == (1,)


def _csv(rows: list[list[object]], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def test_csv_with_a_header_in_json_out(server: ServingServer, reference_predictions: np.ndarray) -> None:
    got = predictions(server.invoke(_csv(ROWS, header=True), content_type=CSV))
    np.testing.assert_allclose(got, reference_predictions, rtol=1e-5)


def test_csv_without_a_header_in_csv_out_one_prediction_a_line(
    server: ServingServer, reference_predictions: np.ndarray
) -> None:
    response = server.invoke(_csv(ROWS, header=False), content_type="text/csv; charset=utf-8", accept=CSV)
    assert response.status_code == 200
    assert response.headers["content-type"] == CSV
    lines = response.text.splitlines()
    np.testing.assert_allclose([float(line) for line in lines], reference_predictions, rtol=1e-5)


def test_json_in_csv_out_has_the_same_digits_as_json_out(server: ServingServer) -> None:
    body = orjson.dumps({"inputs": ROWS[:3]})
    as_json = orjson.loads(server.invoke(body).content)["predictions"]
    as_csv = server.invoke(body, accept=CSV).text
    assert as_csv == "".join(f"{value}\n" for value in as_json)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/csv;q=0.5, application/json;q=0.9", JSON),
        ("application/json;q=0.1, text/csv", CSV),
        ("text/html, text/*", CSV),
    ],
)
def test_the_response_type_follows_accept_and_its_quality_values(
    server: ServingServer, accept: str, expected: str
) -> None:
    response = server.invoke(orjson.dumps({"inputs": ROWS[:2]}), accept=accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == expected


def test_version_names_the_serving_model(server: ServingServer, abalone_model_dir: object) -> None:
    response = httpx.get(f"{server.url}/version")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "name": "abalone",
        "version": "7",
        "run_id": None,
        "source": str(abalone_model_dir),
        "flavor": "mlplat-mlp/1",
    }


def test_a_thousand_row_batch_is_scored_in_one_request(server: ServingServer) -> None:
    frame = abalone_frame(1000)[COLUMNS]
    body = frame.to_json(orient="split", index=False).encode()
    got = predictions(server.invoke(b'{"dataframe_split": ' + body + b"}"))
    assert got.shape == (1000,)
    assert np.isfinite(got).all()


def test_an_unknown_path_is_404_and_a_wrong_method_405(server: ServingServer) -> None:
    missing = httpx.get(f"{server.url}/nope")
    assert (missing.status_code, missing.json()) == (404, {"error": "no such path"})
    wrong = httpx.get(f"{server.url}/invocations")
    assert (wrong.status_code, wrong.json(), wrong.headers["allow"]) == (405, {"error": "method not allowed"}, "POST")


def test_columns_the_model_does_not_use_are_ignored_and_named_in_a_response_header(
    server: ServingServer, reference_predictions: np.ndarray
) -> None:
    records = [{**dict(zip(COLUMNS, row, strict=True)), "Colour": "red", "Age": 3} for row in ROWS]
    response = server.invoke(orjson.dumps({"dataframe_records": records}))
    np.testing.assert_allclose(predictions(response), reference_predictions, rtol=1e-5)
    assert response.headers["x-mlplat-ignored-columns"] == "'Colour', 'Age'"


def test_a_params_object_is_accepted_on_the_fast_path_and_undeclared_params_are_ignored(
    server: ServingServer, reference_predictions: np.ndarray
) -> None:
    response = server.invoke(orjson.dumps({"inputs": ROWS, "params": {"temperature": 0.5}}))
    np.testing.assert_allclose(predictions(response), reference_predictions, rtol=1e-5)


def test_params_that_are_not_an_object_get_400_on_the_fast_path(server: ServingServer) -> None:
    response = server.invoke(orjson.dumps({"inputs": ROWS[:1], "params": [1, 2]}))
    assert (response.status_code, response.json()) == (
        400,
        {"error": "'params' must be an object of parameter names and values"},
    )
