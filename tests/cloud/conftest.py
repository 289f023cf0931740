"""Fixtures for the cloud commands: a deployed stack faked as outputs over moto's server, and a real MLflow registry."""

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloud_support import FakeStack, Registry, make_outputs, write_model_dir

from components.config import stack_file


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def make_stack(aws_env: Any, tmp_path: Path) -> Callable[..., FakeStack]:
    """Build a fake deployed stack: a fresh bucket and KMS key in moto, its outputs file, a copy of its stack file.

    The copy serves a model named uniquely for the test, so tests sharing the session's registry never collide.
    """
    model = f"abalone-{_suffix()}"

    def build(stack: str = "dev") -> FakeStack:
        bucket = f"mlplat-{stack}-{_suffix()}"
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
        key = boto3.client("kms", region_name="us-east-1").create_key(Description=f"mlplat {stack}")
        outputs = make_outputs(stack, bucket, key["KeyMetadata"]["Arn"])
        folder = tmp_path / stack
        folder.mkdir()
        outputs_file = folder / "outputs.json"
        outputs_file.write_text(json.dumps(outputs, indent=2))
        copy = folder / f"Pulumi.{stack}.yaml"
        shutil.copyfile(stack_file(stack), copy)
        copy.write_text(copy.read_text().replace("model: abalone\n", f"model: {model}\n"))
        return FakeStack(stack, outputs_file, copy, outputs, model)

    return build


@pytest.fixture
def registry(mlflow_server: Any, aws_env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """The real `mlflow server`; MLFLOW_TRACKING_URI points at it, as a user's shell would."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    yield Registry(mlflow_server.tracking_uri)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model_dir(tmp_path / "model")
