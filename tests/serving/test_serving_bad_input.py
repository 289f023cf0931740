"""Every kind of bad request gets its exact status and a message naming the problem, never the body or a trace."""

import socket

import httpx
import orjson
import pytest
from serving_models import COLUMNS, sample_rows
from serving_support import (
    CSV,
    JSON,
    LOOPBACK,
    SESSION_MAX_ROWS,
    SESSION_REQUEST_TIMEOUT,
    ServingServer,
    raw_exchange,
    split_response,
)

ROW = sample_rows(1)[0]
EXPECTED = ", ".join(COLUMNS)
LIMIT = 6 * 1024 * 1024
SUPPORTED = "application/json, text/csv, application/jsonlines"


def record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = dict(zip(COLUMNS, ROW, strict=True))
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None or key not in changes}


def csv_body(*rows: str, header: str = ",".join(COLUMNS)) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


GOOD_CSV_ROW = ",".join(str(value) for value in ROW)

CASES = [
    # (id, content type, body, status, message)
    ("malformed-json", JSON, b'{"inputs": [["M", 0.4', 400,
     "malformed JSON: unexpected end of data (line 1, column 22)"),
    ("json-not-an-object-with-a-known-key", JSON, b'{"rows": []}', 400,
     "the JSON body must be an object with one of 'inputs', 'instances', 'dataframe_split', 'dataframe_records'"),
    ("json-scalar", JSON, b"42", 400,
     "the JSON body must be an object with one of 'inputs', 'instances', 'dataframe_split', 'dataframe_records'"),
    ("two-input-keys", JSON, orjson.dumps({"inputs": [ROW], "instances": [ROW]}), 400,
     "the JSON body has more than one of inputs, instances"),
    ("inputs-not-a-list", JSON, b'{"inputs": 5}', 400, "'inputs' must be a list of rows"),
    ("no-rows", JSON, b'{"inputs": []}', 400, "the request has no rows"),
    ("rows-of-scalars", JSON, b'{"inputs": [1, 2]}', 400,
     "each row must be a list of values or an object keyed by column name"),
    ("ragged-rows", JSON, orjson.dumps({"inputs": [ROW, ROW[:7]]}), 400, "row 1 has 7 values; row 0 has 8"),
    ("wrong-feature-count", JSON, orjson.dumps({"inputs": [ROW[:7]]}), 400,
     f"each row has 7 values; the model expects 8: {EXPECTED}"),
    ("missing-column", JSON, orjson.dumps({"dataframe_records": [record(Height=None)]}), 400,
     "missing column(s) 'Height'"),
    ("records-with-different-columns", JSON, orjson.dumps([record(), record(Height=None)]), 400,
     "row 1 lacks 'Height' compared with row 0"),
    ("split-with-duplicate-columns", JSON,
     orjson.dumps({"dataframe_split": {"columns": [*COLUMNS[:7], "Sex"], "data": [ROW]}}), 400,
     "column 'Sex' appears more than once"),
    ("split-columns-and-rows-disagree", JSON,
     orjson.dumps({"dataframe_split": {"columns": COLUMNS[:7], "data": [ROW]}}), 400,
     "'dataframe_split' names 7 columns but its rows have 8 values"),
    ("non-numeric-string", JSON, orjson.dumps({"dataframe_records": [record(Length="long")]}), 422,
     "column 'Length', row 0: expected a number, got 'long'"),
    ("numeric-as-string", JSON, orjson.dumps({"dataframe_records": [record(Length="0.5")]}), 422,
     "column 'Length', row 0: expected a number, got '0.5'"),
    ("null-value", JSON, orjson.dumps({"inputs": [ROW, [*ROW[:3], None, *ROW[4:]]]}), 422,
     "column 'Height', row 1: expected a number, got None"),
    ("boolean-value", JSON, orjson.dumps({"inputs": [[*ROW[:2], True, *ROW[3:]]]}), 422,
     "column 'Diameter', row 0: expected a number, got True"),
    ("nested-list-value", JSON, orjson.dumps({"inputs": [[*ROW[:1], [0.4], *ROW[2:]]]}), 422,
     "column 'Length', row 0: expected a number, got [0.4]"),
    ("nan-literal", JSON, b'{"inputs": [["M", NaN, 0.3, 0.1, 0.5, 0.2, 0.1, 0.15]]}', 422,
     "NaN or infinity is not allowed (line 1, column 19)"),
    ("infinity-literal", JSON, b'{"inputs": [["M", 0.4, -Infinity, 0.1, 0.5, 0.2, 0.1, 0.15]]}', 422,
     "NaN or infinity is not allowed (line 1, column 25)"),
    ("overflowing-number", JSON, b'{"inputs": [["M", 0.4, 0.3, 1e999, 0.5, 0.2, 0.1, 0.15]]}', 422,
     "NaN or infinity is not allowed (line 1, column 29)"),
    ("beyond-float32", JSON, orjson.dumps({"inputs": [[*ROW[:1], 1e300, *ROW[2:]]]}), 422,
     "column 'Length', row 0: 1e+300 is outside the float32 range"),
    ("prediction-overflows", JSON, orjson.dumps({"inputs": [ROW, ["M", *[3e38] * 7]]}), 422,
     "row 1: the model's prediction is not a finite number (inputs far out of range?)"),
    ("unknown-category", JSON, orjson.dumps({"inputs": [["X", *ROW[1:]]]}), 422,
     "column 'Sex', row 0: unknown category 'X'; expected one of 'F', 'I', 'M'"),
    ("category-of-the-wrong-type", JSON, orjson.dumps({"inputs": [ROW, [1, *ROW[1:]]]}), 422,
     "column 'Sex', row 1: unknown category 1; expected one of 'F', 'I', 'M'"),
    ("too-many-rows", JSON, orjson.dumps({"inputs": [ROW] * (SESSION_MAX_ROWS + 1)}), 422,
     f"{SESSION_MAX_ROWS + 1} rows exceed the limit of {SESSION_MAX_ROWS} rows per request"),
    ("csv-nan", CSV, csv_body(GOOD_CSV_ROW, "M,0.4,nan,0.1,0.5,0.2,0.1,0.15"), 422,
     "column 'Diameter', row 1: NaN or infinity is not allowed"),
    ("csv-infinity", CSV, csv_body("M,0.4,0.3,inf,0.5,0.2,0.1,0.15"), 422,
     "column 'Height', row 0: NaN or infinity is not allowed"),
    ("csv-non-numeric", CSV, csv_body("M,0.4,0.3,0.1,heavy,0.2,0.1,0.15"), 422,
     "column 'WholeWeight', row 0: expected a number, got 'heavy'"),
    ("csv-empty-cell", CSV, csv_body("M,0.4,0.3,0.1,0.5,,0.1,0.15"), 422,
     "column 'ShuckedWeight', row 0: expected a number, got ''"),
    ("csv-unknown-category", CSV, csv_body("Q,0.4,0.3,0.1,0.5,0.2,0.1,0.15"), 422,
     "column 'Sex', row 0: unknown category 'Q'; expected one of 'F', 'I', 'M'"),
    ("csv-ragged", CSV, csv_body(GOOD_CSV_ROW, "M,0.4,0.3"), 400, "row 1 has 3 values; the header has 8"),
    ("csv-wrong-feature-count", CSV, b"M,0.4,0.3,0.1,0.5,0.2,0.1\n", 400,
     f"each row has 7 values; the model expects 8: {EXPECTED}"),
    ("csv-malformed-quotes", CSV, b'Sex,Length\nM,"0.4"x\n', 400, "malformed CSV at line 2: ',' expected after '\"'"),
    ("csv-not-utf8", CSV, b"Sex,Length\n\xff\xfe,0.4\n", 400, "malformed CSV: the body is not valid UTF-8"),
    ("csv-header-only", CSV, csv_body(), 400, "the request has no rows"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("content_type", "body", "status", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_a_bad_body_gets_its_status_and_a_message_naming_the_problem(
    server: ServingServer, content_type: str, body: bytes, status: int, message: str
) -> None:
    response = server.invoke(body, content_type=content_type)
    assert (response.status_code, response.json()) == (status, {"error": message})
    assert response.headers["content-type"] == JSON


def test_an_unsupported_content_type_is_415(server: ServingServer) -> None:
    response = server.invoke(orjson.dumps({"inputs": [ROW]}), content_type="text/plain")
    assert (response.status_code, response.json()) == (
        415,
        {"error": f"unsupported Content-Type 'text/plain'; supported: {SUPPORTED}"},
    )


def test_a_missing_content_type_is_415(server: ServingServer) -> None:
    response = httpx.post(f"{server.url}/invocations", content=orjson.dumps({"inputs": [ROW]}))
    assert (response.status_code, response.json()) == (
        415,
        {"error": "unsupported Content-Type none; supported: application/json, text/csv, application/jsonlines"},
    )


@pytest.mark.parametrize("accept", ["text/html", "application/xml, text/plain", "application/json;q=0"])
def test_an_unsupported_accept_is_406(server: ServingServer, accept: str) -> None:
    response = server.invoke(orjson.dumps({"inputs": [ROW]}), accept=accept)
    assert (response.status_code, response.json()) == (
        406,
        {"error": "cannot produce any type in Accept; supported: application/json, text/csv, application/jsonlines"},
    )


def test_error_messages_never_echo_the_body(server: ServingServer) -> None:
    secret = "TOPSECRET" * 200
    bodies = [
        (JSON, orjson.dumps({"inputs": [[secret, *ROW[1:]]]})),
        (JSON, orjson.dumps({"inputs": [[*ROW[:1], secret, *ROW[2:]]]})),
        (JSON, b'{"inputs": [["M", 0.4, ' + secret.encode()),
        (CSV, csv_body(f"M,{secret},0.3,0.1,0.5,0.2,0.1,0.15")),
        (CSV, csv_body(GOOD_CSV_ROW, header=f"{secret},{','.join(COLUMNS[1:])}")),
    ]
    for content_type, body in bodies:
        response = server.invoke(body, content_type=content_type)
        assert response.status_code in (400, 422)
        assert secret not in response.text
        assert "TOPSECRETTOPSECRETTOPSECRETTOPSECRET" not in response.text
        assert len(response.content) < 400
        assert "Traceback" not in response.text


def test_a_body_over_6_mib_is_refused_from_content_length_before_it_is_sent(server: ServingServer) -> None:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {LIMIT + 1}\r\n\r\n"
    ).encode()
    raw, closed = raw_exchange(server.port, head)  # not one byte of the body is sent
    status, headers, body = split_response(raw)
    assert (status, orjson.loads(body)) == (
        413,
        {"error": f"the body of {LIMIT + 1} bytes exceeds the limit of {LIMIT} bytes"},
    )
    assert headers["connection"] == "close"
    assert closed


def test_a_chunked_body_is_cut_off_at_6_mib(server: ServingServer) -> None:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunks = [b"x" * (1024 * 1024)] * 6 + [b"x"]
    # One byte over the limit and no terminating chunk: the server must answer without waiting for the end. (Sending
    # more than it reads would make its close a reset, which could swallow the response on the client's side.)
    data = head + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    raw, closed = raw_exchange(server.port, data)
    status, headers, body = split_response(raw)
    assert (status, orjson.loads(body)) == (413, {"error": f"the body exceeds the limit of {LIMIT} bytes"})
    assert headers["connection"] == "close"
    assert closed


def test_a_client_too_slow_to_send_its_headers_is_cut_off_with_408(server: ServingServer) -> None:
    raw, closed = raw_exchange(server.port, f"POST /invocations HTTP/1.1\r\nHost: {LOOPBACK}\r\n".encode())
    status, headers, body = split_response(raw)
    assert (status, orjson.loads(body)) == (
        408,
        {"error": f"the request was not received within {SESSION_REQUEST_TIMEOUT} s"},
    )
    assert headers["connection"] == "close"
    assert closed


def test_a_client_too_slow_to_send_its_body_is_cut_off_with_408(server: ServingServer) -> None:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    ).encode()
    raw, closed = raw_exchange(server.port, head + b'{"inputs": ')
    status, _, body = split_response(raw)
    assert (status, orjson.loads(body)) == (
        408,
        {"error": f"the request was not received within {SESSION_REQUEST_TIMEOUT} s"},
    )
    assert closed


def test_a_connection_that_sends_nothing_is_closed(server: ServingServer) -> None:
    with socket.create_connection((LOOPBACK, server.port), timeout=15) as sock:
        received = sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 408 ")
        while received:
            received = sock.recv(65536)
