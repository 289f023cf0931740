"""`mlplat jobs`: the stack's training jobs on SageMaker (moto) and EKS (the loopback API server), table and JSON."""

import json
from pathlib import Path
from typing import Any

from cloud_support import make_outputs
from kube_server import Cluster, kubeconfig, serve
from typer.testing import CliRunner

from mlplat.cli import app

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures"
REASON = "not running after 900 s: team research's quota compute-quota is exhausted (gpuQuota 4)"


def eks_jobs() -> list[dict[str, Any]]:
    history = json.loads((FIXTURES / "history_spot_reclaim.json").read_text())
    done = history[-1]["job"]
    done["metadata"]["annotations"].update({"mlplat.io/attempt": "2", "mlplat.io/disruptions": "1"})
    failed = json.loads(json.dumps(history[0]["job"]))
    failed["metadata"]["name"] = "abalone-run-2"
    failed["metadata"]["annotations"]["mlplat.io/failure-reason"] = REASON
    failed["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                                        "message": "Job was active longer than specified deadline"}]}  # fmt: skip
    return [done, failed]


def create_sagemaker_job(name: str) -> None:
    import boto3

    boto3.client("sagemaker", region_name="us-east-1").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplat/training:0.1.0",
                                "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/mlplat-staging-training",
        OutputDataConfig={"S3OutputPath": "s3://mlplat-staging-bucket/training-jobs/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )  # fmt: skip


def test_jobs_lists_sagemaker_and_eks_jobs_with_attempts_interruptions_and_failures(
    tmp_path: Path, aws_env: Any
) -> None:
    create_sagemaker_job("mlplat-staging-abalone-20261206-041500")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(make_outputs("staging", "mlplat-staging-bucket", "arn:aws:kms:us-east-1:1:key/1")))
    cluster = Cluster(frames=[{"jobs": eks_jobs()}])
    with serve(cluster) as url:
        result = runner.invoke(
            app, ["jobs", "--stack", "staging", "--outputs", str(outputs), "--json",
                  "--kubeconfig", str(kubeconfig(tmp_path / "config", url))],
        )  # fmt: skip

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    sagemaker = [r for r in rows if r["platform"] == "sagemaker"]
    assert [r["name"] for r in sagemaker] == ["mlplat-staging-abalone-20261206-041500"]
    assert [r for r in rows if r["platform"] == "eks"] == [
        {"platform": "eks", "name": "research/abalone-run-1", "state": "Completed", "attempts": 2,
         "interruptions": 1, "last_failure": "", "run": ""},
        {"platform": "eks", "name": "research/abalone-run-2", "state": "Failed", "attempts": 1,
         "interruptions": 0, "last_failure": REASON, "run": ""},
    ]  # fmt: skip
    listed = [path for _, path, _ in cluster.calls("GET", "/jobs")]
    assert listed == [
        "/apis/batch/v1/namespaces/research/jobs?labelSelector=mlplat.io/workload%3Dtraining",
        "/apis/batch/v1/namespaces/applied/jobs?labelSelector=mlplat.io/workload%3Dtraining",
    ]


def test_the_table_names_each_jobs_state_and_last_failure(tmp_path: Path, aws_env: Any) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(make_outputs("staging", "mlplat-staging-bucket", "arn:aws:kms:us-east-1:1:key/1")))
    cluster = Cluster(frames=[{"jobs": eks_jobs()}])
    with serve(cluster) as url:
        result = runner.invoke(
            app, ["jobs", "--stack", "staging", "--outputs", str(outputs),
                  "--kubeconfig", str(kubeconfig(tmp_path / "config", url))],
        )  # fmt: skip

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PLATFORM", "JOB", "STATE", "ATTEMPTS", "INTERRUPTIONS", "LAST", "FAILURE", "RUN"]
    failed = next(line for line in lines if "abalone-run-2" in line)
    assert failed.split()[:5] == ["eks", "research/abalone-run-2", "Failed", "1", "0"]
    assert failed.endswith(f"{REASON}  -")


def test_a_sagemaker_spot_interruption_becomes_attempts_and_time_lost_on_the_run() -> None:
    from datetime import UTC, datetime

    from mlplat.jobs.listing import spot_history

    def at(minute: int) -> datetime:
        return datetime(2026, 12, 6, 3, minute, tzinfo=UTC)

    message = "Training job interrupted due to a spot instance interruption."
    described = {"SecondaryStatusTransitions": [
        {"Status": "Starting", "StartTime": at(0), "EndTime": at(2), "StatusMessage": "Preparing the instances"},
        {"Status": "Training", "StartTime": at(2), "EndTime": at(20), "StatusMessage": "Training in progress"},
        {"Status": "Interrupted", "StartTime": at(20), "EndTime": at(21), "StatusMessage": message},
        {"Status": "Starting", "StartTime": at(21), "EndTime": at(26), "StatusMessage": "Launching ML instances"},
        {"Status": "Training", "StartTime": at(26), "EndTime": at(40), "StatusMessage": "Training in progress"},
    ]}  # fmt: skip

    tags = spot_history(described)

    assert (tags["mlplat.attempts"], tags["mlplat.interruptions"], tags["mlplat.time_lost_seconds"]) == (
        "2",
        "1",
        "360.0",
    )
    assert json.loads(tags["mlplat.last_interruption"]) == {
        "event": "interrupted", "time": "2026-12-06T03:20:00+00:00", "kind": "spot", "capacity_type": "spot",
        "detail": message,
    }  # fmt: skip


def test_each_job_links_the_mlflow_run_named_after_it(tmp_path: Path, aws_env: Any, mlflow_server: Any) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    experiment = f"jobs-list-{tmp_path.name}"
    experiment_id = client.create_experiment(experiment)
    run_id = client.create_run(experiment_id, run_name="abalone-run-1").info.run_id
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(make_outputs("staging", "mlplat-staging-bucket", "arn:aws:kms:us-east-1:1:key/1")))
    cluster = Cluster(frames=[{"jobs": eks_jobs()}])
    with serve(cluster) as url:
        result = runner.invoke(
            app, ["jobs", "--stack", "staging", "--outputs", str(outputs), "--json", "--experiment", experiment,
                  "--tracking-uri", mlflow_server.tracking_uri, "--kubeconfig", str(kubeconfig(tmp_path / "c", url))],
        )  # fmt: skip

    assert result.exit_code == 0, result.output
    links = {r["name"]: r["run"] for r in json.loads(result.stdout) if r["platform"] == "eks"}
    assert links == {
        "research/abalone-run-1": f"{mlflow_server.tracking_uri}/#/experiments/{experiment_id}/runs/{run_id}",
        "research/abalone-run-2": "",
    }
