"""`mlplat train --on eks`: the stack's torchrun Job, rendered by mlplat.cloud.eks_job, validated.

Creating and following it through the Kubernetes client: tests/jobs/test_train_eks_follow.py.
"""

import json
from pathlib import Path

import yaml
from cloud_support import make_outputs
from typer.testing import CliRunner

from components.config import load_stack
from mlplat.cli import app
from mlplat.k8s_validate import validate_manifests

runner = CliRunner()
KMS = "arn:aws:kms:us-west-2:123456789012:key/1234"


def outputs_file(tmp_path: Path, stack: str) -> Path:
    path = tmp_path / f"{stack}-outputs.json"
    path.write_text(json.dumps(make_outputs(stack, f"mlplat-{stack}-bucket", KMS)))
    return path


def train_eks(tmp_path: Path, stack: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["train", "--stack", stack, "--on", "eks", "--outputs", str(outputs_file(tmp_path, stack)),
         "--job-name", "abalone-run-1", *args],
    )  # fmt: skip
    return result.exit_code, result.output


def test_dry_run_prints_manifests_that_validate_against_the_clusters_kubernetes(tmp_path: Path) -> None:
    code, output = train_eks(tmp_path, "staging", "--dry-run", "--instances", "2")

    assert code == 0, output
    manifests = list(yaml.safe_load_all(output))
    cluster = load_stack("staging").cluster
    assert cluster is not None
    report = validate_manifests(manifests, cluster.version)
    assert report.ok, report.problems
    assert report.validated == ["Service research/abalone-run-1-rdzv", "Job research/abalone-run-1"]


def test_the_job_runs_the_stacks_image_on_its_spot_pool_with_one_pod_per_rank(tmp_path: Path) -> None:
    code, output = train_eks(tmp_path, "staging", "--dry-run", "--json", "--instances", "2", "--epochs", "3")

    assert code == 0, output
    job = json.loads(output)[1]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (2, 2)
    assert pod["nodeSelector"] == {"mlplat.io/pool": "train-spot"}
    assert container["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplat/training:0.1.0"
    assert "--nnodes=2" in container["command"]
    assert container["command"][-1] == "--epochs=3"
    assert env["MLFLOW_TRACKING_URI"] == "arn:aws:sagemaker:us-east-1:123456789012:mlflow-app/app-staging"
    assert env["MLPLAT_DATA_URI"] == "s3://mlplat-staging-bucket/datasets/abalone/v1/"
    assert env["MLPLAT_CHECKPOINT_S3_URI"] == "s3://mlplat-staging-bucket/checkpoints/abalone-run-1/"


def test_pool_and_team_can_be_chosen(tmp_path: Path) -> None:
    code, output = train_eks(tmp_path, "prod", "--dry-run", "--json", "--pool", "train-ondemand", "--team", "applied")

    assert code == 0, output
    job = json.loads(output)[1]
    assert job["metadata"]["namespace"] == "applied"
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {"mlplat.io/pool": "train-ondemand"}


def test_a_stack_without_a_cluster_is_refused(tmp_path: Path) -> None:
    code, output = train_eks(tmp_path, "dev", "--dry-run")

    assert (code, output) == (1, "error: stack 'dev' has no EKS cluster (mlplat:cluster); use --on sagemaker\n")


def test_an_unknown_pool_is_refused(tmp_path: Path) -> None:
    code, output = train_eks(tmp_path, "staging", "--dry-run", "--pool", "huge")

    assert (code, output) == (1, "error: --pool 'huge' is not a GPU pool of stack 'staging' (train-spot, eval)\n")


def test_without_a_kubeconfig_the_error_says_how_to_get_one(tmp_path: Path) -> None:
    code, output = train_eks(tmp_path, "staging", "--kubeconfig", str(tmp_path / "none"))

    assert code == 1
    assert output == (
        f"error: no kubeconfig at {tmp_path / 'none'}: run `aws eks update-kubeconfig --name mlplat-staging` "
        "or pass --dry-run to print the manifests\n"
    )


def test_dry_run_prints_the_job_suspended_for_the_teams_kueue_queue(tmp_path: Path) -> None:
    code, output = train_eks(tmp_path, "prod", "--dry-run", "--json", "--team", "applied")

    assert code == 0, output
    job = json.loads(output)[1]
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "default"
    assert job["spec"]["completionMode"] == "Indexed"
