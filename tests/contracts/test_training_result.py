"""The training result line: what training prints is what the launchers read."""

import json

import pytest

from contracts.result import RESULT_PREFIX, TrainingResult, result_line, result_object

FIELDS = {
    "run_id": "r1",
    "registered_model_name": "abalone",
    "version": "3",
    "decision": "champion",
    "aliases": ["challenger", "champion"],
    "job_name": "abalone-local-1",
    "test_rmse": 2.25,
}


def test_a_result_line_reads_back_as_the_typed_result() -> None:
    result = TrainingResult.from_text(f"epoch 1\n{result_line(FIELDS)}\n")

    assert result is not None
    assert (result.version, result.run_id, result.decision, result.aliases) == (
        "3",
        "r1",
        "champion",
        ("challenger", "champion"),
    )
    assert result.metric("test_rmse") == 2.25
    assert result.to_json() == FIELDS


def test_the_last_result_line_wins() -> None:
    text = "\n".join([result_line({**FIELDS, "version": "1"}), "noise", result_line(FIELDS)])

    result = TrainingResult.from_text(text)

    assert result is not None and result.version == "3"


def test_output_without_a_result_line_has_no_result() -> None:
    assert TrainingResult.from_text("error: no data\n") is None


def test_a_result_line_that_is_not_json_has_no_result() -> None:
    assert TrainingResult.from_text(RESULT_PREFIX + "{oops\n") is None


def test_the_untyped_result_is_the_last_lines_object_as_printed_even_without_a_version() -> None:
    text = "\n".join([result_line(FIELDS), result_line({"run_id": "r1"}), "done"])

    assert result_object(text) == {"run_id": "r1"}


def test_a_result_line_holding_a_json_list_has_no_result() -> None:
    assert result_object(RESULT_PREFIX + "[1, 2]\n") is None


def test_a_result_without_a_version_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^the training result names no model version$"):
        TrainingResult.from_text(RESULT_PREFIX + json.dumps({"run_id": "r1"}))


def test_the_line_is_the_prefix_and_one_json_object() -> None:
    line = TrainingResult.from_json(FIELDS).line()

    assert line.startswith("MLPLAT_RESULT {")
    assert json.loads(line[len("MLPLAT_RESULT ") :]) == FIELDS
