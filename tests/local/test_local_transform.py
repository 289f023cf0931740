"""`mlplat transform --local`: SageMaker Batch Transform's contract (line split, MultiRecord under MaxPayloadInMB,
one output line per record in order, `.out` objects) run by a serving process over the local platform's S3 store.

Uses the session's platform (`local_platform` in tests/conftest.py): its bucket, its registry and its champion.
"""

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from local_support import mlplat

from mlplat.local import state as st
from mlplat.local.bucket import TARGET_COLUMN, reference_data, s3_client
from mlplat.local.registry import served_version
from mlplat.local.transform import batches, output_key, parse_model

pytestmark = pytest.mark.timeout(300)
LINES = 10_000


def _rows(count: int) -> tuple[list[str], list[list[str]]]:
    """`count` rows of the reference data without its target (cycling through the file), and its feature columns."""
    with reference_data().open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        target = header.index(TARGET_COLUMN)
        data = [[v for i, v in enumerate(row) if i != target] for row in reader]
    return [c for i, c in enumerate(header) if i != target], [data[i % len(data)] for i in range(count)]


def _platform(local_platform: Any) -> tuple[st.State, Any]:
    local_platform.ensure_up()
    state = st.load(local_platform.home)
    assert state is not None
    return state, s3_client(state.url("s3"))


def test_a_local_transform_of_10000_csv_lines_writes_10000_lines_in_order(local_platform: Any, tmp_path: Path) -> None:
    state, s3 = _platform(local_platform)
    serving_url = f"http://127.0.0.1:{local_platform.port}"
    version = served_version(serving_url)
    columns, rows = _rows(LINES)
    s3.put_object(Bucket=state.bucket, Key="batch/in/part-1.csv", Body="".join(",".join(r) + "\n" for r in rows))
    result = mlplat(
        "transform", "--local", "--home", str(local_platform.home), "--model", f"{state.model['name']}/{version}",
        "--input", f"s3://{state.bucket}/batch/in/", "--output", f"s3://{state.bucket}/batch/out/", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["records"], report["requests"], report["outputs"]) == (
        LINES,
        10,
        [f"s3://{state.bucket}/batch/out/part-1.csv.out"],
    )
    lines = s3.get_object(Bucket=state.bucket, Key="batch/out/part-1.csv.out")["Body"].read().decode().splitlines()
    body = {"dataframe_split": {"columns": columns, "data": [[r[0], *map(float, r[1:])] for r in rows]}}
    expected = httpx.post(f"{serving_url}/invocations", json=body, timeout=60.0).json()["predictions"]
    assert len(lines) == LINES
    np.testing.assert_allclose([float(line) for line in lines], expected, rtol=1e-6)


def test_json_lines_objects_under_the_prefix_each_get_their_own_out_object_in_order(local_platform: Any) -> None:
    state, s3 = _platform(local_platform)
    columns, rows = _rows(30)
    records = [dict(zip(columns, [r[0], *map(float, r[1:])], strict=True)) for r in rows]
    parts = {"jl/in/one.jsonl": records[:10], "jl/in/deeper/two.jsonl": records[10:]}
    for key, part in parts.items():
        s3.put_object(Bucket=state.bucket, Key=key, Body="".join(json.dumps(r) + "\n" for r in part))
    result = mlplat(
        "transform", "--local", "--home", str(local_platform.home), "--model", str(state.model["name"]),
        "--format", "jsonl", "--input", f"s3://{state.bucket}/jl/in/", "--output", f"s3://{state.bucket}/jl/out",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    serving_url = f"http://127.0.0.1:{local_platform.port}"
    for key, part in parts.items():
        out = key.replace("jl/in/", "jl/out/") + ".out"
        got = [json.loads(line) for line in s3.get_object(Bucket=state.bucket, Key=out)["Body"].read().splitlines()]
        expected = httpx.post(f"{serving_url}/invocations", json={"dataframe_records": part}).json()["predictions"]
        assert len(got) == len(part)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_record_the_model_refuses_exits_2_naming_the_object_and_its_lines(local_platform: Any) -> None:
    state, s3 = _platform(local_platform)
    good = "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15\n"
    s3.put_object(Bucket=state.bucket, Key="bad/in/a.csv", Body=good + "M,long,0.365,0.095,0.514,0.2245,0.101,0.15\n")
    code, err = _transform(
        local_platform, "--model", "abalone", "--input", f"s3://{state.bucket}/bad/in/", "--output",
        f"s3://{state.bucket}/bad/out/",
    )  # fmt: skip
    assert (code, err.splitlines()[-1]) == (
        2,
        f"error: s3://{state.bucket}/bad/in/a.csv lines 1-2: /invocations answered 422: "
        """{"error":"column 'Length', row 1: expected a number, got 'long'"}""",
    )
    assert "bad/out/a.csv.out" not in str(s3.list_objects_v2(Bucket=state.bucket, Prefix="bad/out/"))


def test_an_output_bucket_that_does_not_exist_exits_2_naming_it(local_platform: Any) -> None:
    state, s3 = _platform(local_platform)
    s3.put_object(Bucket=state.bucket, Key="one/in/a.csv", Body=b"M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15\n")
    code, err = _transform(
        local_platform, "--model", "abalone", "--input", f"s3://{state.bucket}/one/in/", "--output", "s3://no-such-b/o/"
    )
    assert (code, err) == (2, "error: --output s3://no-such-b/o/: no bucket 'no-such-b' in the local S3 store\n")


def _transform(local_platform: Any, *args: str) -> tuple[int, str]:
    result = mlplat("transform", "--local", "--home", str(local_platform.home), *args)
    return result.exit_code, result.stderr


def test_an_input_prefix_with_no_objects_exits_2_naming_it(local_platform: Any) -> None:
    state, _ = _platform(local_platform)
    uri = f"s3://{state.bucket}/nothing-here/"
    code, err = _transform(local_platform, "--model", "abalone", "--input", uri, "--output", f"{uri}out/")
    assert (code, err) == (2, f"error: --input {uri} holds no objects\n")


def test_an_unknown_model_exits_2_naming_it(local_platform: Any) -> None:
    state, _ = _platform(local_platform)
    uri = f"s3://{state.bucket}/batch/in/"
    code, err = _transform(local_platform, "--model", "nope", "--input", uri, "--output", f"{uri}out/")
    assert (code, err) == (2, "error: model 'nope' is not registered in the local registry\n")


def test_an_unknown_version_exits_2_naming_it(local_platform: Any) -> None:
    state, _ = _platform(local_platform)
    uri = f"s3://{state.bucket}/batch/in/"
    code, err = _transform(local_platform, "--model", "abalone/999", "--input", uri, "--output", f"{uri}out/")
    assert (code, err) == (2, "error: model 'abalone' has no version 999 in the local registry\n")


def test_a_malformed_model_reference_exits_2_with_the_accepted_forms(local_platform: Any) -> None:
    code, err = _transform(local_platform, "--model", "abalone:3", "--input", "s3://b-1/in/", "--output", "s3://b-1/o/")
    assert (code, err) == (2, "error: --model must be NAME, NAME/VERSION or NAME@ALIAS (got 'abalone:3')\n")


def test_without_a_running_platform_it_exits_1_saying_how_to_start_it(tmp_path: Path) -> None:
    home = tmp_path / "nowhere"
    result = mlplat(
        "transform", "--local", "--home", str(home), "--model", "abalone",
        "--input", "s3://b-1/in/", "--output", "s3://b-1/out/",
    )  # fmt: skip
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: the local platform is not running under {home}; start it with `mlplat up --local`\n",
    )


def test_a_cloud_transform_without_version_exits_2_naming_the_option() -> None:
    result = mlplat("transform", "--model", "abalone", "--input", "s3://b-1/in/", "--output", "s3://b-1/out/")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --version is required without --local (the released version to run)\n",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abalone", ("abalone", None, None)),
        ("abalone/3", ("abalone", "3", None)),
        ("abalone@canary", ("abalone", None, "canary")),
    ],
)
def test_a_model_reference_names_a_version_an_alias_or_the_champion(text: str, expected: tuple[Any, ...]) -> None:
    ref = parse_model(text)
    assert (ref.name, ref.version, ref.alias) == expected


@pytest.mark.parametrize(
    ("prefix", "key", "out", "expected"),
    [
        ("batch/in/", "batch/in/a/b.csv", "scored/", "scored/a/b.csv.out"),
        ("batch/in/b.csv", "batch/in/b.csv", "scored", "scored/b.csv.out"),
        ("", "b.csv", "", "b.csv.out"),
    ],
)
def test_outputs_keep_the_path_below_the_input_folder_plus_out(prefix: str, key: str, out: str, expected: str) -> None:
    assert output_key(prefix, key, out) == expected


def test_multi_record_batches_stay_under_the_payload_and_record_limits_in_order() -> None:
    records = [f"{i},x".encode() for i in range(25)]  # 4 bytes a line below 10, 5 from 10
    bodies = list(batches(records, max_bytes=40, max_records=9))
    assert [body.count(b"\n") for body in bodies] == [9, 8, 8]
    assert all(len(body) <= 40 for body in bodies)
    assert b"".join(bodies).splitlines() == records


def test_a_record_above_the_payload_limit_is_sent_alone_for_the_server_to_refuse() -> None:
    assert list(batches([b"a", b"b" * 50, b"c"], max_bytes=10)) == [b"a\n", b"b" * 50 + b"\n", b"c\n"]
