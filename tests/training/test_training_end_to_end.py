"""One SageMaker-style job against a real tracking server and S3 store, then everything it should have left behind.

The job runs as SageMaker starts a training container: `train` as the argument, paths in SM_* variables, the
hyperparameters as strings in hyperparameters.json. A two-rank torchrun job on the same data follows it.
"""

import hashlib
import json
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from training_support import ABALONE, Finished, job_dirs, run_training

MODEL_NAME = "abalone-e2e"
JOB_NAME = "e2e-job"
EXPERIMENT = "training-e2e"
HYPERPARAMETERS = {"epochs": "120", "patience": "15", "batch-size": "64", "hidden": "64,32", "seed": "42"}


@pytest.fixture(scope="module")
def sagemaker_job(tmp_path_factory: pytest.TempPathFactory, mlflow_server: Any, s3_server: Any) -> dict[str, Any]:
    opt_ml = tmp_path_factory.mktemp("opt-ml")
    channel = opt_ml / "input" / "data" / "train"
    channel.mkdir(parents=True)
    shutil.copy(ABALONE, channel / "abalone.csv")
    hyperparameters = opt_ml / "input" / "config" / "hyperparameters.json"
    hyperparameters.parent.mkdir(parents=True)
    hyperparameters.write_text(json.dumps({**HYPERPARAMETERS, "registered_model_name": MODEL_NAME}))
    env = {
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(opt_ml / "model"),
        "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
        "MLPLAT_HYPERPARAMETERS": str(hyperparameters),
        "MLPLAT_CHECKPOINT_DIR": str(opt_ml / "checkpoints"),
        "MLPLAT_CHECKPOINT_S3_URI": f"s3://{s3_server.bucket}",
        "TRAINING_JOB_NAME": JOB_NAME,
        "MLPLAT_IMAGE": "mlplat-training:test",
        "MLPLAT_GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "MLPLAT_EXPERIMENT_NAME": EXPERIMENT,
        "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
        "AWS_ENDPOINT_URL": s3_server.endpoint_url,
    }
    finished = run_training(["train"], env=env)
    assert finished.returncode == 0, finished.stderr
    return {"finished": finished, "result": finished.result, "opt_ml": opt_ml, "env": env}


def test_sagemaker_style_job_registers_a_model_that_beats_the_mean_baseline(sagemaker_job: dict[str, Any]) -> None:
    result = sagemaker_job["result"]

    assert result["registered_model_name"] == MODEL_NAME
    assert result["version"] == "1"
    assert result["model_uri"] == f"models:/{MODEL_NAME}/1"
    assert result["decision"] == "challenger"
    assert result["aliases"] == ["challenger"]
    assert result["rmse_ratio_to_mean"] <= 0.72
    assert result["rmse_ratio_to_mean"] == pytest.approx(result["test_rmse"] / result["baseline_test_rmse"])
    assert result["unsent_metrics_file"] is None
    assert sagemaker_job["finished"].stdout.rstrip().splitlines()[-1].startswith("MLPLAT_RESULT ")


def test_run_records_parameters_tags_and_every_epoch(sagemaker_job: dict[str, Any], mlflow_client: Any) -> None:
    result = sagemaker_job["result"]
    run = mlflow_client.get_run(result["run_id"])

    assert run.info.status == "FINISHED"
    assert run.info.run_name == JOB_NAME
    assert {key: run.data.params[key] for key in ("epochs", "patience", "batch_size", "hidden", "seed")} == {
        "epochs": "120",
        "patience": "15",
        "batch_size": "64",
        "hidden": "64,32",
        "seed": "42",
    }
    tags = run.data.tags
    assert tags["mlplat.dataset_sha256"] == hashlib.sha256(ABALONE.read_bytes()).hexdigest()
    assert tags["mlplat.git_commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert tags["mlflow.source.git.commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert tags["mlplat.image"] == "mlplat-training:test"
    assert tags["mlplat.hostname"] == socket.gethostname()
    assert tags["mlplat.promotion_decision"] == "challenger"
    for key in ("train_loss", "val_rmse", "val_mae", "val_r2"):
        steps = [metric.step for metric in mlflow_client.get_metric_history(result["run_id"], key)]
        assert sorted(steps) == list(range(1, result["epochs_trained"] + 1)), key
    assert run.data.metrics["test_rmse"] == pytest.approx(result["test_rmse"])
    assert run.data.metrics["rmse_ratio_to_mean"] == pytest.approx(result["rmse_ratio_to_mean"])
    assert {"test_mae", "test_r2", "baseline_test_rmse"} <= set(run.data.metrics)


def test_run_artifacts_and_output_directory_hold_profile_curves_and_metrics(
    sagemaker_job: dict[str, Any], mlflow_client: Any, tmp_path: Path
) -> None:
    run_id = sagemaker_job["result"]["run_id"]
    output = sagemaker_job["opt_ml"] / "output" / "data"

    logged = {artifact.path for artifact in mlflow_client.list_artifacts(run_id)}

    assert {"reference_profile.json", "training_curves.png", "metrics.json"} <= logged
    profile = json.loads(
        Path(mlflow_client.download_artifacts(run_id, "reference_profile.json", str(tmp_path))).read_text()
    )
    assert profile["format"] == "mlplat-profile/1"
    assert set(profile["features"]) == {
        "Sex", "Length", "Diameter", "Height", "WholeWeight", "ShuckedWeight", "VisceraWeight", "ShellWeight",
    }  # fmt: skip
    assert profile["n"] == 2923
    assert len(profile["prediction"]["quantiles"]) == 21
    assert (output / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["final"]["test_rmse"] == pytest.approx(sagemaker_job["result"]["test_rmse"])
    assert len(metrics["history"]) == sagemaker_job["result"]["epochs_trained"]
    assert json.loads((output / "reference_profile.json").read_text()) == profile


def test_model_directory_holds_the_pyfunc_and_the_serving_fast_path(sagemaker_job: dict[str, Any]) -> None:
    model_dir = sagemaker_job["opt_ml"] / "model"
    spec = json.loads((model_dir / "artifacts" / "mlplat_model.json").read_text())
    program = torch.export.load(str(model_dir / "artifacts" / "model.pt2")).module()
    rows = pd.read_csv(ABALONE).head(3)

    encoded = (
        np.concatenate(
            [rows[spec["numeric"]].to_numpy(), np.stack([rows["Sex"] == c for c in spec["categorical"]["Sex"]], 1)], 1
        )
        - np.asarray(spec["mean"])
    ) / np.asarray(spec["std"])
    fast = program(torch.tensor(encoded, dtype=torch.float32)).reshape(-1).numpy()
    single = program(torch.tensor(encoded[:1], dtype=torch.float32)).reshape(-1).numpy()

    import mlflow

    slow = mlflow.pyfunc.load_model(str(model_dir)).predict(rows.drop(columns=["Rings"]))
    np.testing.assert_allclose(np.asarray(slow), fast, rtol=1e-5)
    np.testing.assert_allclose(single, fast[:1], rtol=1e-5)
    assert spec["format"] == "mlplat-mlp/1" and spec["program"] == "model.pt2"
    assert 3 < float(fast.mean()) < 20  # rings, not standardised units


def test_registered_model_takes_raw_columns_and_has_a_signature(
    sagemaker_job: dict[str, Any], mlflow_server: Any
) -> None:
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@challenger")
    finally:
        mlflow.set_tracking_uri(previous)
    raw = pd.read_csv(ABALONE).drop(columns=["Rings"]).head(4)

    predictions = np.asarray(model.predict(raw))

    assert predictions.shape == (4,)
    inputs = {spec["name"]: spec["type"] for spec in model.metadata.get_input_schema().to_dict()}
    assert inputs["Sex"] == "string" and inputs["Length"] == "double"
    assert model.metadata.saved_input_example_info is not None


def test_checkpoints_are_kept_locally_and_in_s3(sagemaker_job: dict[str, Any], s3_server: Any) -> None:
    local = sorted(path.name for path in (sagemaker_job["opt_ml"] / "checkpoints").iterdir())
    listing = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=f"checkpoints/{JOB_NAME}/")
    remote = sorted(item["Key"].rsplit("/", 1)[-1] for item in listing.get("Contents", []))

    epochs = sagemaker_job["result"]["epochs_trained"]
    newest = f"ckpt-{epochs:06d}-000000.pt"
    # Writes and uploads are coalesced (the newest queued checkpoint wins), and the newest two are kept.
    for names in (local, remote):
        assert names[-3:] == [newest, "result.json", "run.json"]
        assert 3 <= len(names) <= 4


def test_restarting_a_finished_job_prints_its_result_without_training_again(
    sagemaker_job: dict[str, Any], mlflow_client: Any
) -> None:
    again = run_training(["train"], env=sagemaker_job["env"])

    assert again.returncode == 0, again.stderr
    assert again.result == sagemaker_job["result"]
    assert "epoch 1/" not in again.stdout
    assert len(mlflow_client.search_model_versions(f"name = '{MODEL_NAME}'")) == 1


def test_two_rank_torchrun_job_reaches_comparable_test_rmse(
    sagemaker_job: dict[str, Any], tmp_path: Path, mlflow_server: Any, s3_server: Any, mlflow_client: Any
) -> None:
    args = [
        "--standalone", "--nproc-per-node", "2", "-m", "training",
        "--data", str(ABALONE), *job_dirs(tmp_path),
        "--epochs", HYPERPARAMETERS["epochs"], "--patience", HYPERPARAMETERS["patience"],
        "--registered-model-name", "abalone-ddp", "--experiment-name", "training-ddp", "--job-name", "ddp-job",
    ]  # fmt: skip
    env = {"MLFLOW_TRACKING_URI": mlflow_server.tracking_uri, "AWS_ENDPOINT_URL": s3_server.endpoint_url}

    finished: Finished = run_training(args, env=env, module=["-m", "torch.distributed.run"])

    assert finished.returncode == 0, finished.stderr
    assert "x2 ranks" in finished.stdout
    assert finished.stdout.count("MLPLAT_RESULT ") == 1
    result = finished.result
    single = sagemaker_job["result"]["test_rmse"]
    assert result["test_rmse"] == pytest.approx(single, rel=0.1)
    assert result["rmse_ratio_to_mean"] <= 0.72
    experiment = mlflow_client.get_experiment_by_name("training-ddp")
    runs = mlflow_client.search_runs([experiment.experiment_id])
    assert [run.info.run_id for run in runs] == [result["run_id"]]
    assert runs[0].data.tags["mlplat.world_size"] == "2"
