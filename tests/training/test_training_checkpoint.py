"""The checkpoint store on a local directory: atomic writes, the newest two kept, names, payload format, results."""

import json
import logging
import math
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from training.checkpoint import (
    FORMAT,
    CheckpointStore,
    checkpoint_name,
    pack,
    s3_prefix,
    unpack,
)
from training.errors import InputError
from training.storage import S3Location


def payload(step: int) -> dict[str, Any]:
    return pack({"step": step, "history": [1.5, math.nan]}, {"weights": torch.full((4,), float(step))})


def saved(store: CheckpointStore, step: int) -> str:
    name = checkpoint_name(step, 0)
    store.save(payload(step), name, urgent=True)
    return name


def test_a_write_that_fails_halfway_leaves_the_previous_checkpoint_loadable_and_no_file_under_the_new_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path, None)
    first = saved(store, 1)
    real_write_bytes = Path.write_bytes

    def half_then_disk_full(path: Path, data: bytes) -> int:
        real_write_bytes(path, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_disk_full)
    second = saved(store, 2)
    monkeypatch.undo()

    assert not (tmp_path / second).exists()
    loaded = store.load_latest()
    assert loaded is not None
    assert loaded[0] == first
    assert loaded[1]["step"] == 1
    assert torch.equal(loaded[1]["weights"], torch.full((4,), 1.0))


def test_a_failed_write_is_logged_naming_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = CheckpointStore(tmp_path, None)

    def disk_full(path: Path, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with caplog.at_level("ERROR", logger="training.checkpoint"):
        saved(store, 1)
    assert [record.getMessage() for record in caplog.records] == [
        f"could not write {checkpoint_name(1, 0)} to {tmp_path}: [Errno 28] No space left on device"
    ]


def test_only_the_newest_two_checkpoints_are_kept(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, None)
    for step in (1, 2, 3):
        saved(store, step)
    assert sorted(path.name for path in tmp_path.iterdir()) == [checkpoint_name(2, 0), checkpoint_name(3, 0)]


def test_the_newest_readable_checkpoint_wins_over_a_torn_newer_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = CheckpointStore(tmp_path, None)
    saved(store, 1)
    (tmp_path / checkpoint_name(2, 0)).write_bytes(b"torn")
    with caplog.at_level(logging.WARNING, logger="training.checkpoint"):
        loaded = store.load_latest()
    assert loaded is not None and loaded[0] == checkpoint_name(1, 0)
    [message] = [record.getMessage() for record in caplog.records]
    assert message.startswith(f"checkpoint {checkpoint_name(2, 0)} is unreadable (")
    assert message.endswith("); trying an older one")
    assert "(None)" not in message


def test_the_newest_of_two_good_checkpoints_is_loaded(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, None)
    saved(store, 1)
    saved(store, 2)
    loaded = store.load_latest()
    assert loaded is not None and (loaded[0], loaded[1]["step"]) == (checkpoint_name(2, 0), 2)


class Smuggled:
    """An object a checkpoint may not carry: loading it would run arbitrary unpickling."""


def test_a_checkpoint_carrying_a_pickled_object_is_not_loaded(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, None)
    saved(store, 1)
    torch.save({**payload(2), "extra": Smuggled()}, tmp_path / checkpoint_name(2, 0))
    loaded = store.load_latest()
    assert loaded is not None and loaded[0] == checkpoint_name(1, 0)


def test_an_empty_directory_is_a_fresh_job(tmp_path: Path) -> None:
    assert CheckpointStore(tmp_path / "missing", None).load_latest() is None
    assert CheckpointStore(tmp_path, None).load_latest() is None


def test_files_that_are_not_checkpoints_are_ignored(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, None)
    saved(store, 1)
    for name in ("ckpt-9-9.pt", "ckpt-000009-000009.pt.tmp", "xckpt-000009-000009.pt", "ckpt-000009-000009.ptx"):
        (tmp_path / name).write_bytes(b"junk")
    loaded = store.load_latest()
    assert loaded is not None and loaded[0] == checkpoint_name(1, 0)


def test_names_sort_by_epochs_then_batches() -> None:
    assert checkpoint_name(3, 42) == "ckpt-000003-000042.pt"
    assert sorted([checkpoint_name(10, 0), checkpoint_name(2, 500), checkpoint_name(2, 7)]) == [
        checkpoint_name(2, 7),
        checkpoint_name(2, 500),
        checkpoint_name(10, 0),
    ]


def test_a_payload_round_trips_with_non_finite_floats_as_null() -> None:
    packed = pack({"step": 3, "loss": math.inf}, {"weights": torch.ones(2)})
    assert packed["format"] == FORMAT == "mlplat-checkpoint/1"
    unpacked = unpack(packed)
    assert (unpacked["step"], unpacked["loss"]) == (3, None)
    assert torch.equal(unpacked["weights"], torch.ones(2))
    assert set(unpacked) == {"step", "loss", "weights"}


def test_numpy_values_in_the_metadata_are_serialised() -> None:
    assert unpack(pack({"seen": np.array([1, 2])}, {}))["seen"] == [1, 2]


def test_a_payload_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^not an mlplat-checkpoint/1 checkpoint$"):
        unpack({"format": "other", "meta": "{}"})


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (None, None),
        ("", None),
        ("s3://bucket", S3Location("bucket", "checkpoints/job-1/")),
        ("s3://bucket/", S3Location("bucket", "checkpoints/job-1/")),
        ("s3://bucket/runs/a", S3Location("bucket", "runs/a/")),
        ("s3://bucket/runs/a/", S3Location("bucket", "runs/a/")),
        ("s3://bucket//", S3Location("bucket", "checkpoints/job-1/")),
        ("s3://bucket/X", S3Location("bucket", "X/")),
        ("s3://bucket/runX/", S3Location("bucket", "runX/")),
    ],
)
def test_the_s3_prefix_defaults_to_checkpoints_of_the_job(uri: str | None, expected: S3Location | None) -> None:
    assert s3_prefix(uri, "job-1") == expected


def test_the_result_is_written_beside_the_checkpoints_and_read_back(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, None)
    store.write_result({"status": "done", "metrics": {"rmse": 1.5}})
    assert store.wait(10)
    assert json.loads((tmp_path / "result.json").read_text()) == {"status": "done", "metrics": {"rmse": 1.5}}
    assert store.read_result() == {"status": "done", "metrics": {"rmse": 1.5}}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_an_unreadable_or_non_object_result_is_no_result(tmp_path: Path, text: str) -> None:
    (tmp_path / "result.json").write_text(text)
    assert CheckpointStore(tmp_path, None).read_result() is None


def test_no_result_file_is_no_result(tmp_path: Path) -> None:
    assert CheckpointStore(tmp_path, None).read_result() is None


def test_an_unwritable_directory_is_refused_naming_it_and_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError) as raised:
        CheckpointStore(blocker / "ckpt", None).prepare()
    hint = "(set --checkpoint-dir or MLPLAT_CHECKPOINT_DIR)"
    assert str(raised.value) == f"cannot write checkpoints to {blocker / 'ckpt'}: Not a directory {hint}"


def test_prepare_creates_the_directory_leaves_nothing_in_it_and_accepts_it_again(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "a" / "b", None)
    store.prepare()
    store.prepare()
    assert list((tmp_path / "a" / "b").iterdir()) == []


def test_a_local_result_is_read_even_when_s3_has_none(aws_env: Any, tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text('{"status": "done"}')
    assert CheckpointStore(tmp_path, _remote(aws_env, tmp_path)).read_result() == {"status": "done"}


def test_an_idle_store_has_nothing_left_to_wait_for(tmp_path: Path) -> None:
    assert CheckpointStore(tmp_path, None).wait(0) is True


def _remote(aws_env: Any, tmp_path: Path) -> S3Location:
    return S3Location(aws_env.bucket, f"checkpoints/{tmp_path.name}/")


def _remote_keys(aws_env: Any, remote: S3Location) -> list[str]:
    listed = aws_env.client().list_objects_v2(Bucket=remote.bucket, Prefix=remote.key)
    return sorted(item["Key"][len(remote.key) :] for item in listed.get("Contents", []))


def test_checkpoints_are_mirrored_to_s3_keeping_the_newest_two(aws_env: Any, tmp_path: Path) -> None:
    remote = _remote(aws_env, tmp_path)
    store = CheckpointStore(tmp_path / "local", remote)
    store.prepare()
    for step in (1, 2, 3):
        saved(store, step)
    assert _remote_keys(aws_env, remote) == [checkpoint_name(2, 0), checkpoint_name(3, 0)]


def test_a_new_machine_resumes_from_the_newest_checkpoint_in_s3(aws_env: Any, tmp_path: Path) -> None:
    remote = _remote(aws_env, tmp_path)
    first = CheckpointStore(tmp_path / "first", remote)
    first.prepare()
    saved(first, 1)
    saved(first, 2)
    second = CheckpointStore(tmp_path / "second", remote)
    second.prepare()
    loaded = second.load_latest()
    assert loaded is not None
    assert (loaded[0], loaded[1]["step"]) == (checkpoint_name(2, 0), 2)
    assert (tmp_path / "second" / checkpoint_name(2, 0)).exists()


def test_a_new_machine_finds_the_finished_result_in_s3(aws_env: Any, tmp_path: Path) -> None:
    remote = _remote(aws_env, tmp_path)
    first = CheckpointStore(tmp_path / "first", remote)
    first.prepare()
    first.write_result({"status": "done"})
    assert first.wait(10)
    second = CheckpointStore(tmp_path / "second", remote)
    second.prepare()
    assert second.read_result() == {"status": "done"}


def test_a_checkpoint_location_in_a_missing_bucket_is_refused_naming_it(aws_env: Any, tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, S3Location("no-such-bucket", "checkpoints/job/"))
    with pytest.raises(InputError) as raised:
        store.prepare()
    location = "s3://no-such-bucket/checkpoints/job/"
    assert str(raised.value).startswith(f"cannot use checkpoint location {location}: NoSuchBucket")


def test_failed_uploads_warn_once_and_recovery_is_logged(
    aws_env: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remote = S3Location(f"later-{uuid.uuid4().hex[:12]}", "checkpoints/job/")
    store = CheckpointStore(tmp_path, remote)
    with caplog.at_level(logging.INFO, logger="training.checkpoint"):
        saved(store, 1)
        saved(store, 2)
        warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert warnings[0].startswith(
            f"could not upload {checkpoint_name(1, 0)} to s3://{remote.bucket}/checkpoints/job/: "
        )
        aws_env.client().create_bucket(Bucket=remote.bucket)
        saved(store, 3)
    assert f"checkpoint uploads to s3://{remote.bucket}/checkpoints/job/ work again" in caplog.text
    assert _remote_keys(aws_env, remote) == [checkpoint_name(3, 0)]
    saved(store, 4)
    saved(store, 5)
    assert _remote_keys(aws_env, remote) == [checkpoint_name(4, 0), checkpoint_name(5, 0)]


class FlakyS3:
    """An in-memory S3 client (the calls `training.storage` makes) whose uploads fail while `down` is set."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.down = False

    def upload_file(self, filename: str, bucket: str, key: str) -> None:
        if self.down:
            raise ConnectionError("Could not connect to the endpoint URL")
        self.objects[key] = Path(filename).read_bytes()

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_objects_v2"
        objects = self.objects

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                return [{"Contents": [{"Key": key} for key in sorted(objects) if key.startswith(Prefix)]}]

        return Pages()

    def delete_object(self, Bucket: str, Key: str) -> None:
        self.objects.pop(Key, None)

    def download_file(self, bucket: str, key: str, filename: str) -> None:
        Path(filename).write_bytes(self.objects[key])


def test_an_outage_after_a_recovery_warns_again_and_each_recovery_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s3 = FlakyS3()
    store = CheckpointStore(tmp_path, S3Location("bucket", "checkpoints/job/"))
    store._client = s3
    with caplog.at_level(logging.INFO, logger="training.checkpoint"):
        for step, down in [(1, True), (2, True), (3, False), (4, False), (5, True), (6, True), (7, False)]:
            s3.down = down
            saved(store, step)
    where = "s3://bucket/checkpoints/job/"
    reason = "Could not connect to the endpoint URL"
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        ("WARNING", f"could not upload {checkpoint_name(1, 0)} to {where}: {reason}"),
        ("INFO", f"checkpoint uploads to {where} work again"),
        ("WARNING", f"could not upload {checkpoint_name(5, 0)} to {where}: {reason}"),
        ("INFO", f"checkpoint uploads to {where} work again"),
    ]
    assert sorted(s3.objects) == [f"checkpoints/job/{checkpoint_name(n, 0)}" for n in (4, 7)]


IDENTITY_DOC = {"job": "abalone-7", "config_hash": "9f2c", "run_id": "a1b2"}


def _store_with_fake_s3(directory: Path) -> tuple[CheckpointStore, FlakyS3]:
    s3 = FlakyS3()
    store = CheckpointStore(directory, S3Location("bucket", "checkpoints/job/"))
    store._client = s3
    return store, s3


def test_the_identity_is_written_beside_the_checkpoints_uploaded_and_read_back(tmp_path: Path) -> None:
    store, s3 = _store_with_fake_s3(tmp_path)
    store.write_identity(IDENTITY_DOC)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.json"]
    assert json.loads((tmp_path / "run.json").read_text(encoding="utf-8")) == IDENTITY_DOC
    assert s3.objects == {"checkpoints/job/run.json": (tmp_path / "run.json").read_bytes()}
    assert store.read_identity() == IDENTITY_DOC


def test_the_identity_reaches_the_disk_before_its_name_and_the_rename_is_synced_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        target = os.readlink(f"/proc/self/fd/{descriptor}")
        contents = Path(target).read_text(encoding="utf-8") if Path(target).is_file() else "<directory>"
        events.append(("fsync", target, contents))
        real_fsync(descriptor)

    def replace(source: Any, destination: Any) -> None:
        events.append(("replace", str(source), str(destination)))
        real_replace(source, destination)

    open_before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    CheckpointStore(tmp_path, None).write_identity(IDENTITY_DOC)
    monkeypatch.undo()

    temporary, final = str(tmp_path / "run.json.tmp"), str(tmp_path / "run.json")
    assert [event[:2] for event in events] == [("fsync", temporary), ("replace", temporary), ("fsync", str(tmp_path))]
    assert json.loads(events[0][2]) == IDENTITY_DOC  # flushed before the fsync: the whole document is on disk
    assert events[1] == ("replace", temporary, final)
    assert len(os.listdir("/proc/self/fd")) == open_before  # the directory's descriptor is closed again


def test_a_new_machine_reads_the_identity_from_s3(tmp_path: Path) -> None:
    first, s3 = _store_with_fake_s3(tmp_path / "first")
    (tmp_path / "first").mkdir()
    first.write_identity(IDENTITY_DOC)
    second = CheckpointStore(tmp_path / "second", first.remote)
    second._client = s3
    (tmp_path / "second").mkdir()
    assert second.read_identity() == IDENTITY_DOC
    assert json.loads((tmp_path / "second" / "run.json").read_text(encoding="utf-8")) == IDENTITY_DOC


def test_no_identity_locally_or_in_s3_is_none(tmp_path: Path) -> None:
    store, _ = _store_with_fake_s3(tmp_path)
    assert store.read_identity() is None
    assert CheckpointStore(tmp_path, None).read_identity() is None


def test_clear_deletes_checkpoints_result_and_identity_locally_and_in_s3_and_nothing_else(tmp_path: Path) -> None:
    store, s3 = _store_with_fake_s3(tmp_path)
    for step in (1, 2):
        (tmp_path / checkpoint_name(step, 0)).write_bytes(b"x")
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("kept")
    s3.objects = {
        f"checkpoints/job/{checkpoint_name(1, 0)}": b"x",
        f"checkpoints/job/{checkpoint_name(3, 0)}": b"x",
        "checkpoints/job/result.json": b"{}",
        "checkpoints/job/notes.txt": b"kept",
        f"checkpoints/other/{checkpoint_name(1, 0)}": b"x",
    }
    assert store.clear() == [checkpoint_name(1, 0), checkpoint_name(2, 0), "run.json"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    assert sorted(s3.objects) == ["checkpoints/job/notes.txt", f"checkpoints/other/{checkpoint_name(1, 0)}"]


def test_clear_without_s3_removes_the_local_files(tmp_path: Path) -> None:
    (tmp_path / checkpoint_name(1, 0)).write_bytes(b"x")
    (tmp_path / "result.json").write_text("{}")
    assert CheckpointStore(tmp_path, None).clear() == [checkpoint_name(1, 0), "result.json"]
    assert list(tmp_path.iterdir()) == []


def test_a_writer_that_falls_behind_writes_the_newest_checkpoint_and_every_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path, None)
    written: list[str] = []
    busy, release = threading.Event(), threading.Event()
    real_write = store._write

    def slow_write(name: str, content: bytes) -> Path:
        if not written:  # the first write stalls until the others are queued behind it
            busy.set()
            assert release.wait(10)
        written.append(name)
        return real_write(name, content)

    monkeypatch.setattr(store, "_write", slow_write)
    store.save(payload(1), checkpoint_name(1, 0))
    assert busy.wait(10)
    for step in (2, 3, 4):
        store.save(payload(step), checkpoint_name(step, 0))
    store.write_result({"status": "done"})
    release.set()
    assert store.wait(10)
    assert written == [checkpoint_name(1, 0), checkpoint_name(4, 0), "result.json"]
    loaded = store.load_latest()
    assert loaded is not None
    assert (loaded[0], loaded[1]["step"]) == (checkpoint_name(4, 0), 4)
    assert store.read_result() == {"status": "done"}


def test_the_writer_is_a_daemon_thread_named_for_what_it_does(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, None)
    saved(store, 1)
    # A daemon: a job that exits (or is killed) never waits on a writer stuck on a dead disk or network.
    writers = [thread for thread in threading.enumerate() if thread is store._writer]
    assert [(thread.name, thread.daemon) for thread in writers] == [("checkpoint-writer", True)]


def test_a_checkpoint_that_cannot_be_written_does_not_stop_the_result_queued_behind_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path, None)
    busy, release = threading.Event(), threading.Event()
    real_write = store._write
    calls: list[str] = []

    def write(name: str, content: bytes) -> Path:
        calls.append(name)
        if len(calls) == 1:
            busy.set()
            assert release.wait(10)
        if name == checkpoint_name(2, 0):
            raise OSError(28, "No space left on device")
        return real_write(name, content)

    monkeypatch.setattr(store, "_write", write)
    store.save(payload(1), checkpoint_name(1, 0))
    assert busy.wait(10)
    store.save(payload(2), checkpoint_name(2, 0))
    store.write_result({"status": "done"})
    release.set()
    assert store.wait(10)
    assert calls == [checkpoint_name(1, 0), checkpoint_name(2, 0), "result.json"]
    assert store.read_result() == {"status": "done"}


def test_wait_gives_up_after_its_timeout_while_a_write_is_stuck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path, None)
    busy, release = threading.Event(), threading.Event()
    real_write = store._write

    def stuck_write(name: str, content: bytes) -> Path:
        busy.set()
        assert release.wait(10)
        return real_write(name, content)

    monkeypatch.setattr(store, "_write", stuck_write)
    store.save(payload(1), checkpoint_name(1, 0))
    assert busy.wait(10)
    assert store.wait(0.2) is False
    release.set()
    assert store.wait(10) is True
