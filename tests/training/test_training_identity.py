"""Run and checkpoint identity: a job resumes its own run however early it died, and never adopts another job's."""

import re
import signal
from pathlib import Path
from typing import Any

from training_support import ABALONE, job_dirs, run_training, start_training


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_a_job_killed_during_its_first_checkpoint_leaves_one_run_finished_after_the_restart(
    tmp_path: Path, large_abalone: Path, tracking_env: dict[str, str], mlflow_client: Any
) -> None:
    experiment = "identity-sigkill"
    args = [
        "--data", str(large_abalone), *job_dirs(tmp_path), "--epochs", "2", "--patience", "0",
        "--job-name", "sigkill-job", "--experiment-name", experiment, "--registered-model-name", "identity-sigkill",
    ]  # fmt: skip
    first = start_training(args, env=tracking_env)
    first.wait_for("MLflow run ")
    first.process.send_signal(signal.SIGKILL)
    first.finish()
    checkpoints = tmp_path / "checkpoints"
    # What a kill in the middle of the first checkpoint's write leaves: a torn temporary file, no checkpoint.
    for written in checkpoints.glob("ckpt-*.pt"):
        written.unlink()
    (checkpoints / "ckpt-000001-000000.pt.tmp").write_bytes(b"torn")

    resumed = run_training(args, env=tracking_env)

    assert resumed.returncode == 0, resumed.stderr
    experiment_id = mlflow_client.get_experiment_by_name(experiment).experiment_id
    runs = mlflow_client.search_runs([experiment_id])
    assert [run.info.run_id for run in runs] == [resumed.result["run_id"]]
    assert runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["mlplat.restarts"] == "1"


def test_a_job_pointed_at_another_jobs_finished_checkpoints_exits_2_naming_both_and_changes_nothing(
    tmp_path: Path, tracking_env: dict[str, str], mlflow_client: Any
) -> None:
    checkpoints = tmp_path / "checkpoints"
    common = ["--data", str(ABALONE), "--epochs", "2", "--checkpoint-dir", str(checkpoints)]
    first = run_training(
        [*common, "--model-dir", str(tmp_path / "a-model"), "--output-data-dir", str(tmp_path / "a-out"),
         "--job-name", "job-a", "--registered-model-name", "identity-a"],
        env=tracking_env,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    before = snapshot(checkpoints)

    second = run_training(
        [*common, "--model-dir", str(tmp_path / "b-model"), "--output-data-dir", str(tmp_path / "b-out"),
         "--job-name", "job-b", "--hidden", "16", "--experiment-name", "identity-b",
         "--registered-model-name", "identity-b"],
        env=tracking_env,
    )  # fmt: skip

    assert second.returncode == 2, second.stderr
    expected = (
        f"error: checkpoint location {checkpoints} belongs to job 'job-a' (config {first.result['config_hash'][:12]}), "
        "not to this job 'job-b' (config [0-9a-f]{12}); use another --checkpoint-dir, or --start-fresh to delete "
        "its files"
    )
    assert len(second.stderr_lines) == 1
    assert re.fullmatch(re.escape(expected).replace(re.escape("[0-9a-f]{12}"), "[0-9a-f]{12}"), second.stderr_lines[0])
    assert "MLPLAT_RESULT" not in second.stdout
    assert snapshot(checkpoints) == before
    assert not (tmp_path / "b-model").exists() or not any((tmp_path / "b-model").iterdir())
    assert mlflow_client.get_experiment_by_name("identity-b") is None


def test_start_fresh_deletes_the_other_jobs_files_and_trains_its_own_run(
    tmp_path: Path, tracking_env: dict[str, str]
) -> None:
    checkpoints = tmp_path / "checkpoints"
    common = ["--data", str(ABALONE), "--epochs", "2", "--checkpoint-dir", str(checkpoints)]
    first = run_training(
        [*common, "--model-dir", str(tmp_path / "a-model"), "--output-data-dir", str(tmp_path / "a-out"),
         "--job-name", "fresh-a", "--registered-model-name", "identity-fresh"],
        env=tracking_env,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr

    second = run_training(
        [*common, "--model-dir", str(tmp_path / "b-model"), "--output-data-dir", str(tmp_path / "b-out"),
         "--job-name", "fresh-b", "--registered-model-name", "identity-fresh", "--start-fresh"],
        env=tracking_env,
    )  # fmt: skip

    assert second.returncode == 0, second.stderr
    assert second.result["job_name"] == "fresh-b"
    assert second.result["run_id"] != first.result["run_id"]
    assert "--start-fresh: deleted job 'fresh-a'" in second.stdout


def test_the_same_job_resumed_with_other_epochs_exits_2_naming_the_epochs_and_changes_nothing(
    tmp_path: Path, tracking_env: dict[str, str]
) -> None:
    checkpoints = tmp_path / "checkpoints"
    args = ["--data", str(ABALONE), *job_dirs(tmp_path), "--job-name", "epochs-job"]
    first = run_training([*args, "--epochs", "3"], env=tracking_env)
    assert first.returncode == 0, first.stderr
    before = snapshot(checkpoints)

    second = run_training([*args, "--epochs", "2"], env=tracking_env)

    assert (second.returncode, second.stderr_lines) == (
        2,
        [
            f"error: the checkpoint in {checkpoints} was written with epochs=3; this job asks for epochs=2 "
            "(use --start-fresh to discard it)"
        ],
    )
    assert "MLPLAT_RESULT" not in second.stdout
    assert snapshot(checkpoints) == before


def test_every_setting_that_differs_is_named(tmp_path: Path) -> None:
    from training.main import changed_config

    recorded = {"epochs": "300", "lr": "0.01", "hidden": [64, 32], "seed": 7}
    asked = {"epochs": "100", "lr": "0.01", "hidden": [16], "seed": 7}

    assert changed_config("/ckpt", recorded, asked, "a" * 64, "b" * 64) == (
        "the checkpoint in /ckpt was written with epochs=300, hidden=[64, 32]; this job asks for epochs=100, "
        "hidden=[16] (use --start-fresh to discard it)"
    )


def test_a_checkpoint_that_recorded_no_configuration_is_named_by_its_hash(tmp_path: Path) -> None:
    from training.main import changed_config

    assert changed_config("/ckpt", None, {"epochs": "1"}, "a" * 64, "b" * 64) == (
        "the checkpoint in /ckpt was written with config aaaaaaaaaaaa; this job asks for config bbbbbbbbbbbb "
        "(use --start-fresh to discard it)"
    )
