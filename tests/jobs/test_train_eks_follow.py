"""`mlplat train --on eks` follows the job through the real Kubernetes client against a loopback API server."""

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from cloud_support import make_outputs
from kube_server import Cluster, kubeconfig, serve
from typer.testing import CliRunner

from components.config import stack_file
from mlplat.cli import app

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234"


def train(tmp_path: Path, *args: str, stack: str = "staging") -> tuple[int, str]:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(make_outputs(stack, f"mlplat-{stack}-bucket", KMS)))
    result = runner.invoke(
        app,
        ["train", "--stack", stack, "--on", "eks", "--outputs", str(outputs), "--job-name", "abalone-run-1", *args],
    )
    return result.exit_code, result.output


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def job_frame(**status: Any) -> dict[str, Any]:
    job: dict[str, Any] = recorded("history_rank_crash")[0]["job"]
    job["status"] = status
    return job


def test_a_zero_schedule_timeout_exits_2_with_one_line(tmp_path: Path) -> None:
    assert train(tmp_path, "--schedule-timeout", "0") == (2, "error: --schedule-timeout must be > 0 seconds (got 0)\n")


def test_a_negative_retry_budget_exits_2_with_one_line(tmp_path: Path) -> None:
    assert train(tmp_path, "--max-retries", "-1") == (2, "error: --max-retries must be >= 0 (got -1)\n")


def test_dry_run_shows_the_pod_failure_policy_and_the_stacks_schedule_timeout(tmp_path: Path) -> None:
    copy = tmp_path / "Pulumi.staging.yaml"
    shutil.copy(stack_file("staging"), copy)
    copy.write_text(copy.read_text() + "  mlplat:training:\n    scheduleTimeoutSeconds: 300\n")

    code, output = train(tmp_path, "--dry-run", "--stack-file", str(copy))

    assert code == 0, output
    assert output.splitlines()[0] == (
        "# schedule timeout: 300 s (a rank not running by then fails the job with the reason); "
        "retries: 2 (disruptions and bad input do not count)"
    )
    job = list(yaml.safe_load_all(output))[1]
    assert job["metadata"]["annotations"]["mlplat.io/schedule-timeout-seconds"] == "300"
    assert job["spec"]["backoffLimit"] == 2
    assert [rule["action"] for rule in job["spec"]["podFailurePolicy"]["rules"]] == ["Ignore", "FailJob"]


def test_a_kubeconfig_without_rights_in_the_team_namespace_is_one_line(tmp_path: Path) -> None:
    cluster = Cluster(frames=[{}], forbidden={("create", "services")})
    with serve(cluster) as url:
        code, output = train(tmp_path, "--kubeconfig", str(kubeconfig(tmp_path / "config", url)))

    assert (code, output) == (
        1,
        "error: the kubeconfig's user may not create services in namespace research (403 Forbidden): "
        "ask the cluster admin for that right in research\n",
    )


def test_detach_creates_the_service_and_the_job_and_returns(tmp_path: Path) -> None:
    cluster = Cluster(frames=[{}])
    with serve(cluster) as url:
        code, output = train(tmp_path, "--detach", "--kubeconfig", str(kubeconfig(tmp_path / "config", url)))

    assert code == 0, output
    created = [(path, body["kind"], body["metadata"]["name"]) for _, path, body in cluster.calls("POST")]
    assert created == [
        ("/api/v1/namespaces/research/services", "Service", "abalone-run-1-rdzv"),
        ("/apis/batch/v1/namespaces/research/jobs", "Job", "abalone-run-1"),
    ]
    assert cluster.calls("POST")[1][2]["spec"]["podFailurePolicy"]["rules"][1]["onExitCodes"]["values"] == [2]
    assert output.splitlines()[-1] == "detached: `mlplat jobs --stack staging` shows it"


def test_a_job_no_pool_can_run_fails_after_the_schedule_timeout_with_the_reason_on_its_run(
    tmp_path: Path, mlflow_server: Any
) -> None:
    from mlflow import MlflowClient

    objects = recorded("no_pool_matches")
    cluster = Cluster(frames=[{"job": job_frame(active=1, startTime="2026-12-06T02:10:04Z"), **objects}])
    with serve(cluster) as url:
        code, output = train(
            tmp_path, "--kubeconfig", str(kubeconfig(tmp_path / "config", url)), "--schedule-timeout", "0.2",
            "--poll-interval", "0.05", "--tracking-uri", mlflow_server.tracking_uri,
            "--experiment", "jobs-watchdog",
        )  # fmt: skip

    reason = (
        "not running after 0.2 s: no GPU pool can run rank 0 (pod abalone-run-1-0-h2x9q): it asks for 8 nvidia.com/gpu "
        "per node on pool train-spot; train-spot offers g5.2xlarge, g6.2xlarge (1 GPU per node: A10G, L4; "
        "spot/on-demand; at most 4 GPUs); eval offers g5.xlarge (1 GPU per node: A10G; on-demand; at most 2 GPUs). "
        "Fix: ask for at most 1 GPU per rank (--gpus-per-rank) and more ranks (--instances), pick another --pool, "
        "or add a pool with "
        "larger instances to mlplat:gpuPools"
    )
    assert code == 1, output
    assert "rank 0 pending (abalone-run-1-0-h2x9q)" in output.splitlines(), output
    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    experiment = client.get_experiment_by_name("jobs-watchdog")
    assert experiment is not None, output
    run = client.search_runs([experiment.experiment_id], filter_string="attributes.run_name = 'abalone-run-1'")[0]
    assert (run.info.status, run.data.tags["mlplat.failure_reason"]) == ("FAILED", reason)
    assert output.splitlines()[-1] == (
        f"error: training job research/abalone-run-1 failed: {reason} (MLflow run {run.info.run_id} marked FAILED)"
    )
    patch = cluster.calls("PATCH", "/jobs/abalone-run-1")[0][2]
    assert patch == {
        "metadata": {"annotations": {"mlplat.io/failure-reason": reason}},
        "spec": {"activeDeadlineSeconds": 1},
    }


def test_a_queued_job_over_its_teams_quota_is_deleted_with_the_reason(tmp_path: Path, mlflow_server: Any) -> None:
    objects = recorded("team_quota_kueue")
    job = job_frame()
    job["spec"]["suspend"] = True
    cluster = Cluster(frames=[{"job": job, **objects}])
    with serve(cluster) as url:
        code, output = train(
            tmp_path, "--kubeconfig", str(kubeconfig(tmp_path / "config", url)), "--schedule-timeout", "0.2",
            "--poll-interval", "0.05", "--tracking-uri", mlflow_server.tracking_uri,
            "--experiment", "jobs-watchdog-quota",
        )  # fmt: skip

    assert code == 1, output
    assert "queued in Kueue queue research" in output.splitlines()
    assert "team research's quota is exhausted (Kueue queue research)" in output.splitlines()[-1]
    assert [path for _, path, _ in cluster.calls("DELETE")] == ["/apis/batch/v1/namespaces/research/jobs/abalone-run-1"]


def test_a_finished_job_prints_its_run_link_and_result_and_exits_0(tmp_path: Path, mlflow_server: Any) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    experiment_id = client.create_experiment(f"jobs-finished-{tmp_path.name}")
    run_id = client.create_run(experiment_id, run_name="abalone-run-1").info.run_id
    frames = recorded("history_spot_reclaim")
    result = {"run_id": run_id, "registered_model_name": "abalone", "version": "3", "test_rmse": 2.1,
              "decision": "champion"}  # fmt: skip
    cluster = Cluster(frames=frames, logs={"abalone-run-1-0-g5h6i": "training...\nMLPLAT_RESULT " + json.dumps(result)})
    with serve(cluster) as url:
        code, output = train(
            tmp_path, "--kubeconfig", str(kubeconfig(tmp_path / "config", url)), "--poll-interval", "0",
            "--tracking-uri", mlflow_server.tracking_uri,
        )  # fmt: skip

    assert code == 0, output
    assert output.splitlines()[-3:] == [
        "training job research/abalone-run-1 succeeded after 2 attempt(s)",
        f"  run       {mlflow_server.tracking_uri}/#/experiments/{experiment_id}/runs/{run_id}",
        "  result    registered_model_name=abalone, version=3, test_rmse=2.1, decision=champion",
    ]
    assert "rank 0 running (abalone-run-1-0-a1b2c)" in output.splitlines()
