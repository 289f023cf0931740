"""The codec and the wire protocol called directly: every accepted shape, every refusal with its status and message.

The server tests (test_serving_bad_input.py) prove the same refusals over HTTP; these run in-process in milliseconds,
so `make mutants` can run them against every mutant of serving/codec.py and serving/protocol.py.
"""

import numpy as np
import orjson
import pytest

from serving.codec import (
    FLOAT32_MAX,
    Table,
    decode,
    decode_csv,
    decode_json,
    encode,
    json_lines,
    media_type,
    negotiate,
    numeric_block,
    numeric_column,
)
from serving.protocol import CSV, JSON, JSON_LINES, Response, ServingError, error_response, quote_names, quote_value

SUPPORTED = "application/json, text/csv, application/jsonlines"
SHAPE_HELP = "the JSON body must be an object with one of 'inputs', 'instances', 'dataframe_split', 'dataframe_records'"


def refusal(call: object, *args: object) -> tuple[int, str]:
    """The status and message of the ServingError a call raises."""
    assert callable(call)
    with pytest.raises(ServingError) as raised:
        call(*args)
    return raised.value.status, raised.value.message


# --- media types -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ""),
        ("", ""),
        ("Application/JSON; charset=utf-8", "application/json"),
        (" text/csv ;header=present; charset=utf-8", "text/csv"),
    ],
)
def test_media_type_is_the_bare_lower_case_type_without_parameters(header: str | None, expected: str) -> None:
    assert media_type(header) == expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("text/csv", CSV),
        ("TEXT/CSV", CSV),
        ("text/*", CSV),
        ("application/jsonlines", JSON_LINES),
        ("*/*", JSON),
        ("*", JSON),
        ("application/*", JSON),
        ("text/html, text/csv", CSV),
        ("text/csv, application/json", CSV),
        ("application/json, text/csv", JSON),
        ("application/json;q=0.5, text/csv", CSV),
        ("text/csv;q=0.5, application/json;q=0.9", JSON),
        ("text/csv;q=0.5, application/json;q=0.5", CSV),
        ("text/csv; Q=0.4, application/jsonlines;q=0.6", JSON_LINES),
        ("text/csv;level=1;q=0.9, application/json;q=0.8", CSV),
        ("text/csv;q=high, application/json;q=0.1", JSON),
        ("text/csv;q=0, application/json;q=0.1", JSON),
        ("text/csv;q=1, application/json", CSV),
        ("text/csv;q=0.5=1, application/json;q=0.1", JSON),
    ],
)
def test_accept_picks_the_supported_type_of_highest_quality_then_the_first_listed(
    accept: str | None, expected: str
) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize("accept", ["text/html", "text/csv;q=0", "text/csv;q=-1", "text/csv;q=none"])
def test_accept_with_nothing_supported_at_a_positive_quality_is_406(accept: str) -> None:
    assert refusal(negotiate, accept) == (406, f"cannot produce any type in Accept; supported: {SUPPORTED}")


# --- decode: dispatch by content type ---------------------------------------------------------------------------


def test_json_csv_and_json_lines_bodies_decode_to_the_same_rows() -> None:
    as_json = decode(b"[[1, 2], [3, 4]]", "application/json; charset=utf-8", 10)
    as_csv = decode(b"1,2\n3,4\n", "Text/CSV", 10)
    as_lines = decode(b"[1, 2]\n[3, 4]\n", JSON_LINES, 10)
    assert as_json == Table(names=None, columns=((1, 3), (2, 4)), n_rows=2)
    assert as_csv == Table(names=None, columns=(("1", "3"), ("2", "4")), n_rows=2, text=True)
    assert as_lines == as_json


@pytest.mark.parametrize(("content_type", "shown"), [("text/plain", "'text/plain'"), (None, "none"), ("", "none")])
def test_an_unsupported_content_type_is_415_naming_it(content_type: str | None, shown: str) -> None:
    assert refusal(decode, b"[[1]]", content_type, 10) == (
        415,
        f"unsupported Content-Type {shown}; supported: {SUPPORTED}",
    )


# --- row limits -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"[[1], [2], [3]]", b'{"inputs": {"a": [1, 2, 3]}}', b'{"dataframe_records": [{"a": 1}, {"a": 2}, {"a": 3}]}'],
)
def test_exactly_max_rows_are_accepted(body: bytes) -> None:
    assert decode_json(body, 3).n_rows == 3


@pytest.mark.parametrize(
    "body",
    [b"[[1], [2], [3]]", b'{"inputs": {"a": [1, 2, 3]}}', b'{"dataframe_records": [{"a": 1}, {"a": 2}, {"a": 3}]}'],
)
def test_one_row_over_max_rows_is_422(body: bytes) -> None:
    assert refusal(decode_json, body, 2) == (422, "3 rows exceed the limit of 2 rows per request")


def test_csv_rows_over_the_limit_are_422_and_the_header_does_not_count() -> None:
    assert decode_csv(b"a\n1\n2\n", 2).n_rows == 2
    assert refusal(decode_csv, b"a\n1\n2\n3\n", 2) == (422, "3 rows exceed the limit of 2 rows per request")


@pytest.mark.parametrize(
    "body", [b"[]", b'{"inputs": []}', b'{"inputs": {}}', b'{"inputs": {"a": []}}', b'{"dataframe_records": []}']
)
def test_a_json_body_without_rows_is_400(body: bytes) -> None:
    assert refusal(decode_json, body, 10) == (400, "the request has no rows")


# --- JSON syntax ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"NaN", "line 1, column 1"),
        (b"[[NaN]]", "line 1, column 3"),
        (b"[[1, 2, 3, NaN]]", "line 1, column 12"),
        (b"[[Infinity]]", "line 1, column 3"),
        (b"[[1, -Infinity]]", "line 1, column 7"),
        (b"[[1e999]]", "line 1, column 3"),
        (b"[\n [1],\n [NaN]]", "line 3, column 3"),
    ],
)
def test_nan_and_infinity_literals_are_422_with_their_position(body: bytes, where: str) -> None:
    assert refusal(decode_json, body, 10) == (422, f"NaN or infinity is not allowed ({where})")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[[1,", "malformed JSON: unexpected end of data (line 1, column 5)"),
        (b"[[nan]]", "malformed JSON: invalid literal, expected 'null' (line 1, column 3)"),
        # "NaN" in a string near the fault is not a NaN literal: the fault is reported as malformed JSON.
        (b'[[x,1,2,"NaN"]]', "malformed JSON: unexpected character, expected a JSON value (line 1, column 3)"),
        (b'["NaN"x]', "malformed JSON: unexpected character, expected ',' or ']' (line 1, column 7)"),
    ],
)
def test_malformed_json_is_400_with_the_parsers_reason_and_position(body: bytes, message: str) -> None:
    assert refusal(decode_json, body, 10) == (400, message)


@pytest.mark.parametrize("body", [b"42", b'"inputs"', b"null", b'{"rows": [[1]]}', b"{}"])
def test_a_json_body_that_is_neither_rows_nor_a_known_object_is_400(body: bytes) -> None:
    assert refusal(decode_json, body, 10) == (400, SHAPE_HELP)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"instances": [[1]], "inputs": [[1]]}', "the JSON body has more than one of inputs, instances"),
        (
            b'{"dataframe_records": [], "dataframe_split": {}, "inputs": [[1]]}',
            "the JSON body has more than one of inputs, dataframe_split, dataframe_records",
        ),
    ],
)
def test_more_than_one_input_key_is_400_naming_them(body: bytes, message: str) -> None:
    assert refusal(decode_json, body, 10) == (400, message)


@pytest.mark.parametrize(("key"), ["inputs", "instances", "dataframe_records"])
def test_an_input_key_that_is_not_a_list_is_400(key: str) -> None:
    assert refusal(decode_json, orjson.dumps({key: 5}), 10) == (400, f"'{key}' must be a list of rows")


def test_dataframe_records_given_as_an_object_is_400() -> None:
    body = b'{"dataframe_records": {"a": [1]}}'
    assert refusal(decode_json, body, 10) == (400, "'dataframe_records' must be a list of rows")


# --- JSON shapes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["inputs", "instances"])
def test_positional_rows_under_inputs_or_instances_become_columns(key: str) -> None:
    table = decode_json(orjson.dumps({key: [[1, "a"], [2, "b"]]}), 10)
    assert table == Table(names=None, columns=((1, 2), ("a", "b")), n_rows=2)


def test_a_bare_list_of_records_becomes_named_columns() -> None:
    table = decode_json(b'[{"a": 1, "b": 2}, {"b": 4, "a": 3}]', 10)
    assert table == Table(names=("a", "b"), columns=([1, 3], [2, 4]), n_rows=2)


@pytest.mark.parametrize("key", ["inputs", "instances"])
def test_columnar_inputs_keep_their_column_names_and_order(key: str) -> None:
    table = decode_json(orjson.dumps({key: {"b": [1, 2], "a": [3, 4]}}), 10)
    assert table == Table(names=("b", "a"), columns=([1, 2], [3, 4]), n_rows=2)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"inputs": {"a": 5}}', "'inputs' column 'a' must be a list of values"),
        (b'{"instances": {"a": [1], "b": "x"}}', "'instances' column 'b' must be a list of values"),
        (b'{"inputs": {"a": [1, 2], "b": [1]}}', "'inputs' columns have different lengths"),
        (b'{"inputs": {"a": [1], "b": [1, 2]}}', "'inputs' columns have different lengths"),
    ],
)
def test_malformed_columnar_inputs_are_400(body: bytes, message: str) -> None:
    assert refusal(decode_json, body, 10) == (400, message)


def test_dataframe_split_names_the_columns_of_its_rows() -> None:
    table = decode_json(b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}', 10)
    assert table == Table(names=("a", "b"), columns=((1, 3), (2, 4)), n_rows=2)


def test_dataframe_split_without_columns_is_positional() -> None:
    table = decode_json(b'{"dataframe_split": {"data": [[1, 2]]}}', 10)
    assert table == Table(names=None, columns=((1,), (2,)), n_rows=1)


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ([[1]], "'dataframe_split' must be an object with 'columns' and 'data'"),
        ({"columns": ["a"]}, "'dataframe_split' must be an object with 'columns' and 'data'"),
        ({"columns": ["a"], "data": {"a": [1]}}, "'dataframe_split' must be an object with 'columns' and 'data'"),
        ({"columns": ["a"], "data": [{"a": 1}]}, "'dataframe_split.data' must be a list of lists"),
        ({"columns": "a", "data": [[1]]}, "'dataframe_split.columns' must be a list of column names"),
        ({"columns": ["a", 2], "data": [[1, 2]]}, "'dataframe_split.columns' must be a list of column names"),
        ({"columns": ["a"], "data": [[1, 2]]}, "'dataframe_split' names 1 columns but its rows have 2 values"),
        ({"columns": ["a", "b", "a"], "data": [[1, 2, 3]]}, "column 'a' appears more than once"),
        ({"columns": ["a"], "data": []}, "the request has no rows"),
    ],
)
def test_malformed_dataframe_split_is_400(split: object, message: str) -> None:
    assert refusal(decode_json, orjson.dumps({"dataframe_split": split}), 10) == (400, message)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([1, 2], "each row must be a list of values or an object keyed by column name"),
        (["a"], "each row must be a list of values or an object keyed by column name"),
        ([[1, 2], [3, 4], 5], "row 2 is not a list of values"),
        ([[1, 2], [3, 4], [5]], "row 2 has 1 values; row 0 has 2"),
        ([[1], [2, 3]], "row 1 has 2 values; row 0 has 1"),
        ([[], []], "row 0 has no values"),
        ([{"a": 1}, [1]], "row 1 is not an object keyed by column name"),
        ([{"a": 1, "b": 2}, {"a": 1, "b": 2}, {"a": 1}], "row 2 lacks 'b' compared with row 0"),
        ([{"c": 1, "b": 2, "a": 3}, {"c": 1}], "row 1 lacks 'a', 'b' compared with row 0"),
        ([{"a": 1}, {"a": 1, "z": 2, "y": 3}], "row 1 has extra 'y', 'z' compared with row 0"),
        ([{"a": 1, "b": 2}, {"a": 1, "c": 3}], "row 1 lacks 'b' compared with row 0"),
    ],
)
def test_inconsistent_rows_are_400_naming_the_row(rows: list[object], message: str) -> None:
    assert refusal(decode_json, orjson.dumps({"inputs": rows}), 10) == (400, message)


def test_params_travel_with_the_table() -> None:
    table = decode_json(b'{"inputs": [[1]], "params": {"output": "probabilities"}}', 10)
    assert table == Table(names=None, columns=((1,),), n_rows=1, params={"output": "probabilities"})


def test_params_of_every_shape_are_kept() -> None:
    split = decode_json(b'{"dataframe_split": {"data": [[1]]}, "params": {"k": 1}}', 10)
    columnar = decode_json(b'{"inputs": {"a": [1]}, "params": {"k": 2}}', 10)
    assert (split.params, columnar.params) == ({"k": 1}, {"k": 2})


def test_a_null_params_is_no_params() -> None:
    assert decode_json(b'{"inputs": [[1]], "params": null}', 10).params is None


@pytest.mark.parametrize("params", [b"[1]", b'"output"', b"3"])
def test_params_that_are_not_an_object_are_400(params: bytes) -> None:
    body = b'{"inputs": [[1]], "params": ' + params + b"}"
    assert refusal(decode_json, body, 10) == (400, "'params' must be an object of parameter names and values")


# --- JSON Lines -------------------------------------------------------------------------------------------------


def test_json_lines_are_read_one_value_a_line_skipping_blank_lines() -> None:
    assert json_lines(b'[1, 2]\n\n  \n{"a": 3}\r\n"x"') == [[1, 2], {"a": 3}, "x"]


def test_a_malformed_json_line_is_400_naming_its_line_number() -> None:
    assert refusal(json_lines, b"[1]\n\n{x\n") == (
        400,
        "malformed JSON Lines at line 3: unexpected character, expected a string key",
    )


def test_json_lines_of_records_become_named_columns() -> None:
    table = decode(b'{"a": 1}\n{"a": 2}\n', JSON_LINES, 10)
    assert table == Table(names=("a",), columns=([1, 2],), n_rows=2)


# --- CSV --------------------------------------------------------------------------------------------------------


def test_csv_with_a_header_names_its_columns_and_keeps_cells_as_text() -> None:
    table = decode_csv(b"\xef\xbb\xbf a ,b\n1,x\n\n3,y\n", 10)
    assert table == Table(names=("a", "b"), columns=(("1", "3"), ("x", "y")), n_rows=2, text=True)


@pytest.mark.parametrize("first", [b"a,1", b"1,2", b",a", b"a, ", b"nan,inf", b" 1.5 ,x"])
def test_a_first_row_with_any_numeric_or_empty_cell_is_data(first: bytes) -> None:
    table = decode_csv(first + b"\n", 10)
    assert (table.names, table.n_rows) == (None, 1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"a,b\n1,2\n3\n", "row 1 has 1 values; the header has 2"),
        (b"a,b\n1\n", "row 0 has 1 values; the header has 2"),
        (b"1,2\n3,4,5\n", "row 1 has 3 values; row 0 has 2"),
        (b"a,b,a\n1,2,3\n", "column 'a' appears more than once"),
        (b"a,b\n", "the request has no rows"),
        (b"", "the request has no rows"),
        (b"\n\n", "the request has no rows"),
        (b'a,b\n"1"x,2\n', "malformed CSV at line 2: ',' expected after '\"'"),
        (b"a,b\n\xff,2\n", "malformed CSV: the body is not valid UTF-8"),
    ],
)
def test_malformed_csv_is_400(body: bytes, message: str) -> None:
    assert refusal(decode_csv, body, 10) == (400, message)


# --- numbers ----------------------------------------------------------------------------------------------------


def test_numeric_block_is_one_float64_array_of_columns_by_rows() -> None:
    block = numeric_block(["a", "b"], [[1, 2.5, 3], [4.0, 5, -6]], text=False)
    assert block.dtype == np.float64
    np.testing.assert_array_equal(block, [[1.0, 2.5, 3.0], [4.0, 5.0, -6.0]])


def test_numeric_block_parses_csv_text() -> None:
    block = numeric_block(["a", "b"], [["1", " 2.5"], ["-3e2", "4"]], text=True)
    np.testing.assert_array_equal(block, [[1.0, 2.5], [-300.0, 4.0]])


def test_the_float32_maximum_itself_is_accepted() -> None:
    np.testing.assert_array_equal(
        numeric_block(["a"], [[FLOAT32_MAX, -FLOAT32_MAX]], False), [[FLOAT32_MAX, -FLOAT32_MAX]]
    )


@pytest.mark.parametrize(
    ("columns", "text", "message"),
    [
        ([[1, 2], [3, float("nan")]], False, "column 'b', row 1: NaN or infinity is not allowed"),
        ([[1, 2], [float("-inf"), 3]], False, "column 'b', row 0: NaN or infinity is not allowed"),
        ([[1, 10**400], [1, 2]], False, "column 'a', row 1: NaN or infinity is not allowed"),
        ([[1, 2], [3, True]], False, "column 'b', row 1: expected a number, got True"),
        ([[1, None], [3, 4]], False, "column 'a', row 1: expected a number, got None"),
        ([[1, 2], [3, "4"]], False, "column 'b', row 1: expected a number, got '4'"),
        ([[1, 1e39], [1, 2]], False, "column 'a', row 1: 1e+39 is outside the float32 range"),
        ([[1, 2], [1, -4e38]], False, "column 'b', row 1: -4e+38 is outside the float32 range"),
        ([["1", "2"], ["3", "x"]], True, "column 'b', row 1: expected a number, got 'x'"),
        ([["1", ""], ["3", "4"]], True, "column 'a', row 1: expected a number, got ''"),
        ([["1", "2"], ["inf", "4"]], True, "column 'b', row 0: NaN or infinity is not allowed"),
        ([["1", "nan"], ["3", "4"]], True, "column 'a', row 1: NaN or infinity is not allowed"),
        ([["1", "2"], ["3", "1e39"]], True, "column 'b', row 1: 1e+39 is outside the float32 range"),
    ],
)
def test_a_value_that_is_not_a_finite_float32_is_422_naming_its_column_and_row(
    columns: list[list[object]], text: bool, message: str
) -> None:
    assert refusal(numeric_block, ["a", "b"], columns, text) == (422, message)


@pytest.mark.parametrize(
    ("columns", "text"),
    [
        ([["1"], ["x"]], True),
        ([[1], [True]], False),
        ([[1], [10**400]], False),
        ([[1.0], [float("nan")]], False),
        ([[1.0], [1e39]], False),
    ],
    ids=["unparseable", "not-a-number", "overflow", "nan", "beyond-float32"],
)
def test_fewer_names_than_columns_is_a_callers_error_not_an_unchecked_column(
    columns: list[list[object]], text: bool
) -> None:
    # The unnamed column holds the bad value: without the check it would be returned unchecked.
    with pytest.raises(ValueError, match=r"zip\(\) argument 2 is longer than argument 1"):
        numeric_block(["a"], columns, text)


def test_numeric_column_is_one_float64_array() -> None:
    column = numeric_column("a", [1, 2.5], text=False)
    assert column.dtype == np.float64
    np.testing.assert_array_equal(column, [1.0, 2.5])
    np.testing.assert_array_equal(numeric_column("a", ["1", "-2.5"], text=True), [1.0, -2.5])


@pytest.mark.parametrize(
    ("values", "text", "message"),
    [
        ([1, 2, float("nan")], False, "column 'c', row 2: NaN or infinity is not allowed"),
        ([1, 10**400, 2], False, "column 'c', row 1: NaN or infinity is not allowed"),
        ([1.0, 2, False], False, "column 'c', row 2: expected a number, got False"),
        ([1, [2], 3], False, "column 'c', row 1: expected a number, got [2]"),
        (["1", "2", "three"], True, "column 'c', row 2: expected a number, got 'three'"),
        (["1", "inf"], True, "column 'c', row 1: NaN or infinity is not allowed"),
    ],
)
def test_numeric_column_refuses_with_the_same_messages(values: list[object], text: bool, message: str) -> None:
    assert refusal(numeric_column, "c", values, text) == (422, message)


# --- encode -----------------------------------------------------------------------------------------------------


def test_predictions_encode_as_a_json_object() -> None:
    body, media = encode(np.array([1.5, 2.0], dtype=np.float32), JSON)
    assert (body, media) == (b'{"predictions":[1.5,2.0]}', JSON)
    assert encode(["x", "y"], JSON) == (b'{"predictions":["x","y"]}', JSON)


def test_predictions_encode_as_json_lines_one_value_a_line() -> None:
    assert encode(np.array([1.5, 2.0]), JSON_LINES) == (b"1.5\n2.0\n", JSON_LINES)
    assert encode([{"a": 0.5}, "x"], JSON_LINES) == (b'{"a":0.5}\n"x"\n', JSON_LINES)


def test_a_vector_of_predictions_encodes_as_csv_one_value_a_line_in_shortest_form() -> None:
    assert encode(np.array([1.5, 0.1], dtype=np.float32), CSV) == (b"1.5\n0.1\n", CSV)


def test_a_matrix_of_predictions_encodes_as_csv_rows() -> None:
    assert encode(np.array([[1.5, 2.0], [3.0, 4.0]]), CSV) == (b"1.5,2.0\n3.0,4.0\n", CSV)
    assert encode([(1, 2), [3, "a,b"]], CSV) == (b'1,2\n3,"a,b"\n', CSV)


def test_a_list_of_labels_encodes_as_csv_one_a_line() -> None:
    assert encode(["benign", "malignant"], CSV) == (b"benign\nmalignant\n", CSV)


def test_records_encode_as_csv_with_the_first_records_keys_as_header() -> None:
    assert encode([{"a": 1, "b": 2}, {"b": 3}], CSV) == (b"a,b\n1,2\n,3\n", CSV)


def test_no_predictions_encode_as_an_empty_csv() -> None:
    assert encode([], CSV) == (b"", CSV)


# --- protocol ---------------------------------------------------------------------------------------------------


def test_a_short_value_is_quoted_whole() -> None:
    assert quote_value("abc") == "'abc'"
    assert quote_value(None) == "None"


class _Shouting:
    """A value whose repr carries characters a log line or terminal must not receive."""

    def __repr__(self) -> str:
        return "a\nb\x1b[31m"


def test_unprintable_characters_are_replaced_in_a_quoted_value() -> None:
    assert quote_value("a\x00b") == "'a\\x00b'"  # repr escapes a string's own
    assert quote_value(_Shouting()) == "a?b?[31m"


def test_a_value_of_exactly_the_limit_is_kept_and_one_longer_is_cut_with_an_ellipsis() -> None:
    assert quote_value("x" * 30) == "'" + "x" * 30 + "'"  # 32 characters
    assert quote_value("x" * 31) == "'" + "x" * 28 + "..."  # 33 cut to 32
    assert quote_value("abcdef", limit=7) == "'abc..."
    assert len(quote_value("y" * 1000)) == 32


def test_up_to_five_names_are_shown_then_a_count_of_the_rest() -> None:
    assert quote_names(["a", "b", "c", "d", "e"]) == "'a', 'b', 'c', 'd', 'e'"
    assert quote_names(["a", "b", "c", "d", "e", "f", "g"]) == "'a', 'b', 'c', 'd', 'e' and 2 more"
    assert quote_names(["a", "b", "c"], limit=2) == "'a', 'b' and 1 more"
    assert quote_names([]) == ""


def test_a_serving_error_carries_its_status_message_headers_and_code() -> None:
    error = ServingError(429, "slow down", (("retry-after", "1"),), code="BAD_REQUEST")
    assert (str(error), error.status, error.message, error.headers, error.code) == (
        "slow down",
        429,
        "slow down",
        (("retry-after", "1"),),
        "BAD_REQUEST",
    )
    plain = ServingError(400, "bad")
    assert (plain.headers, plain.code) == ((), None)


def test_an_error_response_is_a_json_object_with_the_errors_status_and_headers() -> None:
    response = error_response(ServingError(503, "not loaded", (("retry-after", "5"),)))
    assert response == Response(503, b'{"error":"not loaded"}', JSON, (("retry-after", "5"),))


def test_an_error_with_an_mlflow_code_also_carries_error_code_and_message() -> None:
    response = error_response(ServingError(400, "bad param", code="INVALID_PARAMETER_VALUE"))
    assert orjson.loads(response.body) == {
        "error": "bad param",
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "bad param",
    }
    assert (response.status, response.media_type, response.headers) == (400, JSON, ())


def test_a_response_has_no_extra_headers_by_default() -> None:
    assert Response(200, b"", JSON).headers == ()
