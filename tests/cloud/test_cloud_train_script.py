"""`mlplat train --entry-point --source-dir`: a reproducible source archive, passed as the SageMaker SDK passes it."""

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_cloud_train import job_name, train

from mlplat import sourcedir


def project(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "train.py").write_text("print('hi')\n")
    (root / "pkg" / "util.py").write_text("X = 1\n")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "util.pyc").write_bytes(b"\0")
    return root


def test_the_same_files_pack_to_the_same_bytes_whenever_they_are_packed(tmp_path: Path) -> None:
    first = sourcedir.pack(project(tmp_path / "a"), "train.py")
    time.sleep(1.1)
    second = sourcedir.pack(project(tmp_path / "b"), "train.py")

    assert first == second


def test_dry_run_shows_the_content_addressed_archive_and_the_hyperparameters(
    make_stack: Callable[..., Any], tmp_path: Path
) -> None:
    stack = make_stack("dev")
    stack.s3().put_object(Bucket=stack.bucket, Key=f"datasets/{stack.model}/v1/a.csv", Body=b"a,b\n")
    code = project(tmp_path / "code")
    _, digest = sourcedir.pack(code, "train.py")

    status, output = train(
        stack, job_name(), "--entry-point", "train.py", "--source-dir", str(code), "--hp", "lr=0.1", "--dry-run"
    )

    assert status == 0, output
    request = json.loads(output)
    assert request["HyperParameters"] == {
        "lr": "0.1",
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": json.dumps(f"s3://{stack.bucket}/code/{digest}/sourcedir.tar.gz"),
    }
    assert request["Environment"]["MLPLAT_REGISTERED_MODEL_NAME"] == stack.model
    assert "Contents" not in stack.s3().list_objects_v2(Bucket=stack.bucket, Prefix="code/")


@pytest.mark.parametrize("args", [["--entry-point", "train.py"], ["--source-dir", "."]])
def test_entry_point_and_source_dir_go_together(make_stack: Callable[..., Any], args: list[str]) -> None:
    stack = make_stack("dev")

    status, output = train(stack, job_name(), *args, "--dry-run")

    assert status == 1
    assert output == "error: --entry-point and --source-dir go together\n"
