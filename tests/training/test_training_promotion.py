"""The promotion gate, end to end: a model passes when it beats the champion on the same test rows, or is rejected.

The data comes from the S3 store, as a dataset version under `datasets/<name>/<version>/`.
"""

from pathlib import Path
from typing import Any

import pytest
from training_support import ABALONE, job_dirs, run_training

MODEL_NAME = "abalone-gate"
WEAK = ["--epochs", "1", "--hidden", "2", "--lr", "0.0003"]
GOOD = ["--epochs", "60", "--patience", "10"]


def test_promotion_gate_promotes_a_better_model_and_rejects_one_that_is_not(
    tmp_path: Path, tracking_env: dict[str, str], s3_server: Any, mlflow_client: Any
) -> None:
    s3_server.client().upload_file(str(ABALONE), s3_server.bucket, "datasets/abalone/1/abalone.csv")
    data = f"s3://{s3_server.bucket}/datasets/abalone/1/"

    def train(name: str, *extra: str) -> dict[str, Any]:
        args = [
            "--data", data, *job_dirs(tmp_path / name), "--job-name", f"gate-{name}",
            "--registered-model-name", MODEL_NAME, "--experiment-name", "training-gate", *extra,
        ]  # fmt: skip
        finished = run_training(args, env=tracking_env)
        assert finished.returncode == 0, finished.stderr
        return finished.result

    weak = train("weak", *WEAK, "--promote")
    assert (weak["decision"], weak["aliases"]) == ("champion", ["challenger", "champion"])
    assert weak["decision_reason"] == "no champion exists"

    good = train("good", *GOOD)
    assert (good["decision"], good["aliases"]) == ("challenger", ["challenger"])
    assert good["champion_version"] == weak["version"]
    assert good["champion_test_rmse"] == pytest.approx(weak["test_rmse"], rel=1e-6)  # re-scored on the same rows
    assert good["test_rmse"] < weak["test_rmse"]
    assert mlflow_client.get_model_version_by_alias(MODEL_NAME, "champion").version == weak["version"]
    assert mlflow_client.get_model_version_by_alias(MODEL_NAME, "challenger").version == good["version"]

    again = train("weak-again", *WEAK, "--promote")
    assert (again["decision"], again["aliases"]) == ("rejected", [])
    assert again["decision_reason"].startswith(f"test RMSE {again['test_rmse']:.4f} does not beat champion")
    assert mlflow_client.get_model_version_by_alias(MODEL_NAME, "champion").version == weak["version"]
    assert mlflow_client.get_model_version_by_alias(MODEL_NAME, "challenger").version == good["version"]
    tags = mlflow_client.get_model_version(MODEL_NAME, again["version"]).tags
    assert tags["mlplat.decision"] == "rejected"
    assert tags["mlplat.champion_version"] == weak["version"]
    assert mlflow_client.get_run(again["run_id"]).data.tags["mlplat.promotion_decision"] == "rejected"
