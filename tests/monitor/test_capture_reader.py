"""Reading capture JSON Lines in SageMaker's layout from a directory and from S3, and bodies into feature rows."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from monitor_support import FEATURES, abalone, capture_record, frame_records, write_capture

from mlplat.monitor import capture
from mlplat.monitor.capture import CaptureError, CapturePayload

NOW = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)


def test_records_older_than_the_window_are_left_out(tmp_path) -> None:
    frame = abalone().head(40)
    write_capture(tmp_path, "ep", frame_records(frame.head(20), NOW - timedelta(hours=30)), NOW - timedelta(hours=30))
    write_capture(tmp_path, "ep", frame_records(frame.tail(20), NOW - timedelta(minutes=10)), NOW)
    found = capture.read_captures(str(tmp_path / "data-capture" / "ep"), since=timedelta(hours=24), now=NOW)
    assert len(found.records) == 1
    assert found.files == 1
    table = capture.to_table(found.records, FEATURES)
    assert table.rows == 20
    assert table.columns["Length"] == frame.tail(20)["Length"].tolist()
    assert table.predictions == frame.tail(20)["Rings"].astype(float).tolist()


def test_a_record_in_a_current_hour_file_but_before_the_window_is_dropped(tmp_path) -> None:
    records = frame_records(abalone().head(2), NOW - timedelta(minutes=50), batch=1)
    records[1]["eventMetadata"]["inferenceTime"] = (NOW - timedelta(minutes=5)).isoformat()
    write_capture(tmp_path, "ep", records, NOW)
    found = capture.read_captures(str(tmp_path), since=timedelta(minutes=30), now=NOW)
    assert [r.time for r in found.records] == [NOW - timedelta(minutes=5)]


def test_sagemaker_variant_directories_and_its_inference_time_format_are_read(tmp_path) -> None:
    directory = tmp_path / "ep" / "AllTraffic" / "2025" / "06" / "01" / "12"
    directory.mkdir(parents=True)
    line = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15",
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "text/csv; charset=utf-8",
                "mode": "OUTPUT",
                "data": "9.5\n",
                "encoding": "CSV",
            },
        },
        "eventMetadata": {
            "eventId": "e-1",
            "inferenceTime": "2025-06-01T12:10:00Z",
            "customAttributes": "model-name=abalone;model-version=4",
        },
        "eventVersion": "0",
    }
    (directory / "abc-1.jsonl").write_text(json.dumps(line) + "\n")
    found = capture.read_captures(str(tmp_path / "ep"), since=timedelta(hours=1), now=NOW)
    (record,) = found.records
    assert (record.event_id, record.model_name, record.model_version) == ("e-1", "abalone", "4")
    table = capture.to_table(found.records, FEATURES)
    assert table.columns["Sex"] == ["M"]
    assert table.columns["ShellWeight"] == [0.15]
    assert table.predictions == [9.5]


def test_unreadable_lines_are_counted_and_skipped(tmp_path) -> None:
    path = write_capture(tmp_path, "ep", frame_records(abalone().head(5), NOW, batch=5), NOW)
    with path.open("a") as out:
        out.write('not json\n{"captureData": {}}\n\n')
    found = capture.read_captures(str(tmp_path), now=NOW)
    assert (len(found.records), found.unreadable) == (1, 2)


def test_a_missing_directory_is_a_capture_error(tmp_path) -> None:
    with pytest.raises(CaptureError, match="is not a directory"):
        capture.read_captures(str(tmp_path / "nowhere"))


def test_records_are_read_from_s3_through_aws_endpoint_url(aws_env) -> None:
    s3 = aws_env.client()
    when = datetime.now(UTC)
    records = frame_records(abalone().head(30), when, batch=10, model_version="7")
    key = f"data-capture/reader-test/{when:%Y/%m/%d/%H}/part-1.jsonl"
    s3.put_object(Bucket=aws_env.bucket, Key=key, Body="".join(json.dumps(r) + "\n" for r in records).encode())
    old = f"data-capture/reader-test/{when - timedelta(days=3):%Y/%m/%d/%H}/part-0.jsonl"
    s3.put_object(Bucket=aws_env.bucket, Key=old, Body=b"this file is never opened\n")
    found = capture.read_captures(f"s3://{aws_env.bucket}/data-capture/reader-test", since=timedelta(hours=2))
    assert (len(found.records), found.files, found.unreadable) == (3, 1, 0)
    assert found.model_versions == {("abalone", "7"): 3}


@pytest.mark.parametrize(
    ("body", "content_type", "rows"),
    [
        (b"Sex,Length\nM,0.5\nF,0.4\n", "text/csv", [{"Sex": "M", "Length": 0.5}, {"Sex": "F", "Length": 0.4}]),
        (b"M,0.5\n", "text/csv; charset=utf-8", [{"Sex": "M", "Length": 0.5}]),
        (b'{"inputs": [["I", 0.3]]}', "application/json", [{"Sex": "I", "Length": 0.3}]),
        (
            b'{"inputs": {"Sex": ["M", "F"], "Length": [0.1, 0.2]}}',
            "application/json",
            [{"Sex": "M", "Length": 0.1}, {"Sex": "F", "Length": 0.2}],
        ),
        (b'{"instances": [{"Sex": "M", "Length": 0.1}]}', "application/json", [{"Sex": "M", "Length": 0.1}]),
        (b'{"dataframe_records": [{"Length": 0.1}]}', "application/json", [{"Length": 0.1}]),
        (b'{"dataframe_split": {"columns": ["Length"], "data": [[0.9]]}}', "application/json", [{"Length": 0.9}]),
        (b'[["F", 0.7]]', "application/json", [{"Sex": "F", "Length": 0.7}]),
        (b"{broken", "application/json", []),
    ],
)
def test_request_bodies_in_every_served_shape_become_feature_rows(body: bytes, content_type: str, rows: list) -> None:
    payload = CapturePayload(data=body.decode(), encoding="JSON", content_type=content_type)
    assert capture.request_rows(payload, ["Sex", "Length"]) == rows


def test_a_base64_encoded_capture_is_decoded() -> None:
    record = capture_record(b"F,0.25\n", "text/csv", b'{"predictions": [[7.5]]}', NOW, base64_encode=True)
    parsed = capture.parse_record(json.dumps(record))
    assert parsed is not None and parsed.response is not None
    assert capture.request_rows(parsed.request, ["Sex", "Length"]) == [{"Sex": "F", "Length": 0.25}]
    assert capture.response_predictions(parsed.response) == [7.5]


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("30m", 1800), ("7d", 604800), ("90s", 90), ("1.5h", 5400)]
)
def test_durations_are_parsed(text: str, seconds: int) -> None:
    assert capture.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "24", "h", "-1h", "0h", "3y"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        capture.parse_duration(text)
