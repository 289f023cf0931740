"""The digits example end to end: a user's own PyTorch script, two processes under torchrun, in script mode."""

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "training"))
from training_support import run_training  # noqa: E402


def test_two_process_torchrun_of_the_digits_example_converges_and_the_runtime_promotes_its_model(
    tmp_path: Path, mlflow_server: Any, s3_server: Any
) -> None:
    from mlflow import MlflowClient

    env = {"MLFLOW_TRACKING_URI": mlflow_server.tracking_uri, "AWS_ENDPOINT_URL": s3_server.endpoint_url}
    finished = run_training(
        ["--entry-point", "train.py", "--source-dir", str(REPO / "examples" / "digits"), "--nproc-per-node", "2",
         "--job-name", "digits", "--experiment-name", "example-digits", "--model-dir", str(tmp_path / "model"),
         "--output-data-dir", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt"),
         "--failure-file", str(tmp_path / "failure"), "--hyperparameters", str(tmp_path / "none.json"),
         "--registered-model-name", "example-digits", "--promotion-metric", "test_accuracy:max", "--promote",
         "--", "--epochs", "8"],
        env=env,
        timeout=600,
    )  # fmt: skip

    assert finished.returncode == 0, finished.stderr[-3000:]
    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    run = client.search_runs([client.get_experiment_by_name("example-digits").experiment_id])[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlplat.job_name"] == "digits"
    assert run.data.metrics["test_accuracy"] >= 0.9
    assert [version.run_id for version in client.search_model_versions("name = 'example-digits'")] == [run.info.run_id]
