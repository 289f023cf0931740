"""The serving container's capture writer: sampled, non-blocking, lossless below its queue bound, SageMaker layout."""

import json
import random
import threading
import time
from datetime import UTC, datetime

from mlplat.monitor import capture as reader
from serving.capture import CaptureWriter

ENDPOINT = "abalone-load"


def _body(thread: int, index: int) -> bytes:
    return json.dumps({"dataframe_split": {"columns": ["Length"], "data": [[thread + index / 10000]]}}).encode()


def _written(root) -> list[dict]:
    return [json.loads(line) for path in sorted(root.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def _offer_from_threads(writer: CaptureWriter, threads: int, per_thread: int) -> tuple[set[bytes], list[BaseException]]:
    accepted: set[bytes] = set()
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(thread: int) -> None:
        try:
            start.wait()
            mine = set()
            for index in range(per_thread):
                body = _body(thread, index)
                if writer.offer(body, "application/json", b'{"predictions": [9.0]}', "3"):
                    mine.add(body)
            with lock:
                accepted.update(mine)
        except BaseException as error:
            errors.append(error)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return accepted, errors


def test_thousands_of_offers_from_eight_threads_are_all_written_without_an_error(tmp_path) -> None:
    writer = CaptureWriter(str(tmp_path), ENDPOINT, 100, flush_interval=0.05, max_queue=10_000, model_name="abalone")
    accepted, errors = _offer_from_threads(writer, threads=8, per_thread=750)
    writer.close()
    assert errors == []
    assert len(accepted) == 6000
    records = _written(tmp_path)
    assert {r["captureData"]["endpointInput"]["data"].encode() for r in records} == accepted
    assert len({r["eventMetadata"]["eventId"] for r in records}) == 6000
    stats = writer.stats
    assert (stats.offered, stats.sampled, stats.dropped, stats.written, stats.failed) == (6000, 6000, 0, 6000, 0)


def test_sampling_writes_exactly_the_offers_it_accepted(tmp_path) -> None:
    writer = CaptureWriter(str(tmp_path), ENDPOINT, 25, flush_interval=0.05, random_source=random.Random(8).random)
    accepted, errors = _offer_from_threads(writer, threads=4, per_thread=1000)
    writer.close()
    assert errors == []
    assert 800 < len(accepted) < 1200
    assert {r["captureData"]["endpointInput"]["data"].encode() for r in _written(tmp_path)} == accepted
    assert writer.stats.written == len(accepted) == writer.stats.sampled
    assert writer.stats.offered == 4000


class _BlockingS3:
    """An S3 client whose first put waits until released, so the queue fills behind it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.puts: list[dict] = []

    def put_object(self, **kwargs) -> None:
        self.entered.set()
        self.release.wait(10)
        self.puts.append(kwargs)


def test_a_full_queue_drops_and_counts_without_blocking_the_caller() -> None:
    s3 = _BlockingS3()
    writer = CaptureWriter("s3://bucket/data-capture", ENDPOINT, 100, flush_interval=0.05, max_queue=10, s3_client=s3)
    writer.offer(b"[[0.1]]", "application/json", b"[1]", "1")
    assert s3.entered.wait(5)
    started = time.perf_counter()
    results = [writer.offer(b"[[0.2]]", "application/json", b"[1]", "1") for _ in range(100)]
    elapsed = time.perf_counter() - started
    assert results.count(True) == 10
    assert writer.stats.dropped == 90
    assert elapsed < 0.1
    s3.release.set()
    writer.close()
    stats = writer.stats
    assert (stats.offered, stats.sampled, stats.dropped, stats.written, stats.failed) == (101, 101, 90, 11, 0)
    assert sum(put["Body"].count(b"\n") for put in s3.puts) == 11


def test_captures_land_in_s3_in_the_layout_the_monitor_reads(aws_env) -> None:
    destination = f"s3://{aws_env.bucket}/data-capture/{ENDPOINT}-s3/"
    writer = CaptureWriter(destination, f"{ENDPOINT}-s3", 100, flush_interval=0.05, model_name="abalone")
    for index in range(30):
        body = f"Sex,Length\nM,{index / 100}\n".encode()
        writer.offer(body, "text/csv", json.dumps({"predictions": [index]}).encode(), "5")
    writer.close()
    prefix = f"data-capture/{ENDPOINT}-s3/"
    keys = [o["Key"] for o in aws_env.client().list_objects_v2(Bucket=aws_env.bucket, Prefix=prefix)["Contents"]]
    hour = datetime.now(UTC).strftime("%Y/%m/%d/%H")
    assert keys and all(k.startswith(f"{prefix}{hour}/") and k.endswith(".jsonl") for k in keys)
    found = reader.read_captures(destination, since=reader.parse_duration("1h"))
    assert found.model_versions == {("abalone", "5"): 30}
    table = reader.to_table(found.records, ["Sex", "Length"])
    assert sorted(table.columns["Length"]) == [i / 100 for i in range(30)]
    assert sorted(table.predictions) == list(range(30))


def test_an_unreachable_destination_fails_the_records_not_the_requests(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    writer = CaptureWriter(str(blocker), ENDPOINT, 100, flush_interval=0.05)
    assert writer.offer(b"[[1.0]]", "application/json", b"[2]", "1") is True
    writer.close()
    assert (writer.stats.written, writer.stats.failed) == (0, 1)


def test_bodies_that_are_not_text_are_captured_base64(tmp_path) -> None:
    writer = CaptureWriter(str(tmp_path), ENDPOINT, 100, flush_interval=0.05)
    writer.offer(b"\xff\xfe", "application/json", b"[1]", "1")
    writer.close()
    (record,) = _written(tmp_path)
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "application/json",
        "mode": "INPUT",
        "data": "//4=",
        "encoding": "BASE64",
    }
    assert record["eventVersion"] == "0"
    assert record["eventMetadata"]["modelVersion"] == "1"


def test_a_destination_that_names_the_endpoint_is_not_nested_again(tmp_path) -> None:
    writer = CaptureWriter(str(tmp_path / "data-capture" / ENDPOINT), ENDPOINT, 100, flush_interval=0.05)
    writer.offer(b"[[1.0]]", "application/json", b"[2]", None)
    assert writer.flush(5)
    (path,) = tmp_path.rglob("*.jsonl")
    assert path.relative_to(tmp_path).parts[:2] == ("data-capture", ENDPOINT)
    assert len(path.relative_to(tmp_path).parts) == 7
    writer.close()


def test_the_writer_is_configured_from_the_environment(tmp_path) -> None:
    assert CaptureWriter.from_env({}) is None
    assert CaptureWriter.from_env({"MLPLAT_CAPTURE_DESTINATION": str(tmp_path), "MLPLAT_CAPTURE_PERCENT": "0"}) is None
    writer = CaptureWriter.from_env(
        {
            "MLPLAT_CAPTURE_DESTINATION": str(tmp_path),
            "MLPLAT_CAPTURE_PERCENT": "40",
            "MLPLAT_ENDPOINT_NAME": "ep-env",
            "MLPLAT_CAPTURE_MAX_QUEUE": "7",
        },
        model_name="abalone",
    )
    assert writer is not None
    assert (writer.endpoint_name, writer.sample_percent, writer.model_name) == ("ep-env", 40.0, "abalone")
    writer.close()


class _Table:
    def __init__(self, names, columns) -> None:
        self.names, self.columns, self.n_rows = names, columns, len(columns[0])


class _Info:
    name, version = "abalone", "6"


def test_the_servers_listener_hook_captures_tables_and_numpy_predictions(tmp_path) -> None:
    import numpy as np

    writer = CaptureWriter(str(tmp_path), ENDPOINT, 100, flush_interval=0.05)
    writer.observe(_Info(), _Table(("Sex", "Length"), (["M", "F"], [0.5, 0.25])), np.array([9.5, 7.0], np.float32))
    writer.observe(_Info(), _Table(None, (("I",), ("0.125",))), np.array([[4.0]]))
    writer.close()
    found = reader.read_captures(str(tmp_path / ENDPOINT))
    assert found.model_versions == {("abalone", "6"): 2}
    table = reader.to_table(found.records, ["Sex", "Length"])
    assert table.columns == {"Sex": ["M", "F", "I"], "Length": [0.5, 0.25, "0.125"]}
    assert table.predictions == [9.5, 7.0, 4.0]


def test_a_listener_observation_that_cannot_be_read_is_swallowed(tmp_path) -> None:
    writer = CaptureWriter(str(tmp_path), ENDPOINT, 100, flush_interval=0.05)
    writer.observe(None, object(), None)
    writer.close()
    assert writer.stats.written == 0
