"""The checkpoint store on a local directory: atomic writes, the newest two kept, names, payload format, results."""

import json
import math
from pathlib import Path
from typing import Any

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
    assert f"could not write {checkpoint_name(1, 0)} to {tmp_path}" in caplog.text


def test_only_the_newest_two_checkpoints_are_kept(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, None)
    for step in (1, 2, 3):
        saved(store, step)
    assert sorted(path.name for path in tmp_path.iterdir()) == [checkpoint_name(2, 0), checkpoint_name(3, 0)]


def test_the_newest_readable_checkpoint_wins_over_a_torn_newer_one(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, None)
    saved(store, 1)
    (tmp_path / checkpoint_name(2, 0)).write_bytes(b"torn")
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
    assert str(raised.value).startswith(f"cannot write checkpoints to {blocker / 'ckpt'}: ")
    assert str(raised.value).endswith(" (set --checkpoint-dir or MLPLAT_CHECKPOINT_DIR)")


def test_prepare_creates_the_directory_and_leaves_nothing_in_it(tmp_path: Path) -> None:
    CheckpointStore(tmp_path / "a" / "b", None).prepare()
    assert list((tmp_path / "a" / "b").iterdir()) == []


def test_an_idle_store_has_nothing_left_to_wait_for(tmp_path: Path) -> None:
    assert CheckpointStore(tmp_path, None).wait(0) is True
