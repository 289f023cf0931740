"""Spot interruptions and tracking outages: the job survives both, loses no epoch and repeats none."""

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from training_support import job_dirs, run_training, start_training

from mlplat.local import services

EPOCHS = 10
METRICS = ("train_loss", "val_rmse", "val_mae", "val_r2")


def epoch_steps(client: Any, run_id: str, key: str) -> list[int]:
    return sorted(metric.step for metric in client.get_metric_history(run_id, key))


def test_sigterm_writes_a_checkpoint_and_a_restart_resumes_the_same_run(
    tmp_path: Path, large_abalone: Path, tracking_env: dict[str, str], s3_server: Any, mlflow_client: Any
) -> None:
    prefix = f"s3://{s3_server.bucket}/checkpoints/sigterm-job"
    args = [
        "--data", str(large_abalone), *job_dirs(tmp_path),
        "--epochs", str(EPOCHS), "--patience", "0", "--batch-size", "32",
        "--job-name", "sigterm-job", "--checkpoint-s3-uri", prefix,
        "--registered-model-name", "abalone-sigterm", "--experiment-name", "training-sigterm",
    ]  # fmt: skip
    first = start_training(args, env=tracking_env)
    first.wait_for("epoch 2/")
    first.process.send_signal(signal.SIGTERM)
    stopped = first.finish()

    assert stopped.returncode == 143, stopped.stderr
    assert len(stopped.stderr_lines) == 1
    assert stopped.stderr_lines[0].startswith("stopped by SIGTERM: checkpoint ckpt-")
    assert stopped.stderr_lines[0].endswith(f"{prefix}/; start the job again to resume")
    run_id = next(
        line.split("MLflow run ")[1].split()[0] for line in stopped.stdout.splitlines() if "MLflow run " in line
    )
    assert mlflow_client.get_run(run_id).info.status == "KILLED"
    interrupted_at = max(epoch_steps(mlflow_client, run_id, "val_rmse") or [0])
    assert interrupted_at < EPOCHS

    # A replacement node starts with an empty disk: the checkpoint must come back from S3.
    shutil.rmtree(tmp_path / "checkpoints")
    resumed = run_training(args, env=tracking_env)

    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoint ckpt-" in resumed.stdout
    assert resumed.result["run_id"] == run_id
    assert mlflow_client.get_run(run_id).info.status == "FINISHED"
    for key in METRICS:
        assert epoch_steps(mlflow_client, run_id, key) == list(range(1, EPOCHS + 1)), key
    assert mlflow_client.get_run(run_id).data.tags["mlplat.restarts"] == "1"


@pytest.fixture
def own_mlflow(tmp_path: Path, s3_server: Any) -> Iterator[dict[str, Any]]:
    """A tracking server of this test alone, which it may stop and start again on the same port and database."""
    port = services.free_port()
    home = tmp_path / "own-mlflow"

    def start() -> services.Service:
        return services.start_mlflow(
            port=port,
            log=home / "mlflow.log",
            backend_store_uri=f"sqlite:///{home / 'mlflow.db'}",
            artifacts_destination=f"s3://{s3_server.bucket}/mlflow-outage",
            s3_endpoint_url=s3_server.endpoint_url,
        )

    state = {"service": start(), "start": start}
    yield state
    state["service"].stop()


def test_training_continues_through_a_tracking_outage_and_no_metric_is_lost(
    tmp_path: Path, large_abalone: Path, s3_server: Any, own_mlflow: dict[str, Any]
) -> None:
    from mlflow import MlflowClient

    service = own_mlflow["service"]
    client = MlflowClient(tracking_uri=service.url)
    args = [
        "--data", str(large_abalone), *job_dirs(tmp_path),
        "--epochs", str(EPOCHS), "--patience", "0", "--batch-size", "32",
        "--job-name", "outage-job", "--registered-model-name", "abalone-outage",
    ]  # fmt: skip
    env = {"MLFLOW_TRACKING_URI": service.url, "AWS_ENDPOINT_URL": s3_server.endpoint_url}
    running = start_training(args, env=env)
    running.wait_for("epoch 1/")
    service.stop()
    # Training goes on while the server is gone, until the job notices the outage (a send or a blocking call).
    running.wait_for("tracking server is not answering")
    own_mlflow["service"] = own_mlflow["start"]()
    finished = running.finish()

    assert finished.returncode == 0, finished.stderr
    run_id = finished.result["run_id"]
    assert client.get_run(run_id).info.status == "FINISHED"
    for key in METRICS:
        assert epoch_steps(client, run_id, key) == list(range(1, EPOCHS + 1)), key
    assert client.get_run(run_id).data.metrics["test_rmse"] == pytest.approx(finished.result["test_rmse"])
    assert finished.result["unsent_metrics_file"] is None
    assert client.get_model_version_by_alias("abalone-outage", "challenger").run_id == run_id
