"""`mlplat train --on eks --entry-point --source-dir`: the user's archive in the bucket, run by the Indexed Job."""

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from cloud_support import make_outputs
from kube_server import Cluster, kubeconfig, serve
from typer.testing import CliRunner

from components.config import load_stack
from mlplat import sourcedir
from mlplat.cli import app
from mlplat.k8s_validate import validate_manifests

runner = CliRunner()
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234"


@pytest.fixture
def bucket(aws_env: Any) -> str:
    name = f"mlplat-staging-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=name)
    return name


def project(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "train.py").write_text("print('hi')\n")
    (root / "pkg" / "util.py").write_text("X = 1\n")
    return root


def train(tmp_path: Path, bucket: str, *args: str) -> tuple[int, str]:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(make_outputs("staging", bucket, KMS)))
    result = runner.invoke(
        app,
        ["train", "--stack", "staging", "--on", "eks", "--outputs", str(outputs), "--job-name", "digits-run-1",
         "--model", "digits", "--entry-point", "train.py", "--source-dir", str(project(tmp_path / "code")), *args],
    )  # fmt: skip
    return result.exit_code, result.output


def archive_uri(tmp_path: Path, bucket: str) -> str:
    _, digest = sourcedir.pack(tmp_path / "code", "train.py")
    return f"s3://{bucket}/code/{digest}/sourcedir.tar.gz"


def container_of(job: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = job["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_job_runs_the_runtime_on_the_archive_with_the_scripts_hyperparameters(tmp_path: Path, bucket: str) -> None:
    code, output = train(tmp_path, bucket, "--dry-run", "--json", "--instances", "2", "--epochs", "3", "--hp", "lr=0.1")

    assert code == 0, output
    container = container_of(json.loads(output)[1])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["command"] == [
        "python", "-m", "training", "--data", f"train=s3://{bucket}/datasets/digits/v1/",
        "--checkpoint-dir", "/opt/ml/checkpoints", "--model-dir", "/opt/ml/model",
        "--registered-model-name", "digits", "--nproc-per-node=1",
    ]  # fmt: skip
    assert {k: env[k] for k in env if k.startswith(("SAGEMAKER_", "SM_HPS", "MLPLAT_", "MLFLOW_EXPERIMENT"))} == {
        "SAGEMAKER_PROGRAM": "train.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": archive_uri(tmp_path, bucket),
        "SM_HPS": '{"epochs": "3", "lr": "0.1"}',
        "MLPLAT_NNODES": "2",
        "MLPLAT_RDZV_HOST": "digits-run-1-0.digits-run-1-rdzv",
        "MLPLAT_RDZV_PORT": "29500",
        "MLPLAT_DATA_URI": f"s3://{bucket}/datasets/digits/v1/",
        "MLPLAT_CHECKPOINT_S3_URI": f"s3://{bucket}/checkpoints/digits-run-1/",
        "MLPLAT_JOB_NAME": "digits-run-1",
        "MLPLAT_ENVIRONMENT": "staging",
        "MLFLOW_EXPERIMENT_NAME": "mlplat-training",
    }


def test_dry_run_uploads_nothing(tmp_path: Path, bucket: str) -> None:
    code, output = train(tmp_path, bucket, "--dry-run")

    assert code == 0, output
    assert "Contents" not in boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=bucket, Prefix="code/")


def test_dry_run_names_the_archive_and_the_hyperparameters_and_its_manifests_validate(
    tmp_path: Path, bucket: str
) -> None:
    code, output = train(tmp_path, bucket, "--dry-run", "--epochs", "3")

    assert code == 0, output
    assert output.splitlines()[1] == (
        f"# script mode: train.py from {archive_uri(tmp_path, bucket)} (uploaded when the job is created); "
        'hyperparameters {"epochs": "3"}'
    )
    cluster = load_stack("staging").cluster
    assert cluster is not None
    report = validate_manifests(list(yaml.safe_load_all(output)), cluster.version)
    assert report.ok, report.problems


def test_creating_the_job_uploads_the_archive_under_its_content_addressed_key_first(
    tmp_path: Path, bucket: str
) -> None:
    cluster = Cluster(frames=[{}])
    with serve(cluster) as url:
        code, output = train(tmp_path, bucket, "--detach", "--kubeconfig", str(kubeconfig(tmp_path / "config", url)))

    assert code == 0, output
    content, digest = sourcedir.pack(tmp_path / "code", "train.py")
    s3 = boto3.client("s3", region_name="us-east-1")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="code/")["Contents"]] == [
        f"code/{digest}/sourcedir.tar.gz"
    ]
    assert s3.get_object(Bucket=bucket, Key=f"code/{digest}/sourcedir.tar.gz")["Body"].read() == content
    assert output.splitlines()[0] == f"uploaded {archive_uri(tmp_path, bucket)}"
    job = cluster.calls("POST")[1][2]
    env = {e["name"]: e.get("value") for e in container_of(job)["env"]}
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == archive_uri(tmp_path, bucket)


def test_a_missing_entry_point_is_refused_before_anything_is_uploaded(tmp_path: Path, bucket: str) -> None:
    code, output = train(tmp_path, bucket, "--dry-run", "--entry-point", "nope.py")

    assert (code, output) == (1, f"error: --entry-point nope.py does not exist in {tmp_path / 'code'}\n")
