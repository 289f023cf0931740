"""Script mode: a team's own script runs on the image with channels, hyperparameters, tracking and signals prepared."""

import io
import json
import signal
import tarfile
from pathlib import Path
from typing import Any

from training_support import REPO_ROOT, run_training, start_training

SCRIPTS = REPO_ROOT / "tests" / "training" / "scripts"


def dirs(tmp_path: Path) -> list[str]:
    return [
        "--model-dir", str(tmp_path / "model"), "--output-data-dir", str(tmp_path / "output"),
        "--checkpoint-dir", str(tmp_path / "checkpoints"), "--failure-file", str(tmp_path / "failure"),
        "--hyperparameters", str(tmp_path / "hyperparameters.json"),
    ]  # fmt: skip


def source(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text((SCRIPTS / "plain_train.py").read_text())
    return code


def test_a_script_without_platform_imports_logs_into_the_prepared_run_with_platform_tags(
    tmp_path: Path, tracking_env: dict[str, str], mlflow_client: Any
) -> None:
    (tmp_path / "hyperparameters.json").write_text(json.dumps({"epochs": "2"}))
    finished = run_training(
        ["--entry-point", "train.py", "--source-dir", str(source(tmp_path)), "--job-name", "script-job",
         "--experiment-name", "script-mode", "--data", f"train={tmp_path}", *dirs(tmp_path)],
        env=tracking_env,
    )  # fmt: skip

    assert finished.returncode == 0, finished.stderr
    seen = json.loads((tmp_path / "model" / "seen.json").read_text())
    assert seen["argv"] == ["--epochs", "2"]
    assert json.loads(seen["SM_HPS"]) == {"epochs": "2"}
    assert json.loads(seen["SM_CHANNELS"]) == ["train"]
    run_id = json.loads((tmp_path / "checkpoints" / "run.json").read_text())["run_id"]
    run = mlflow_client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlplat.job_name"] == "script-job"
    assert run.data.tags["mlplat.mode"] == "script"
    assert [m.step for m in mlflow_client.get_metric_history(run_id, "loss")] == [1, 2]


def test_the_sdk_hyperparameters_json_names_the_program_and_runs_it_unchanged(
    tmp_path: Path, tracking_env: dict[str, str]
) -> None:
    code = source(tmp_path)
    sdk = {"epochs": "1", "sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(str(code)),
           "sagemaker_region": '"us-east-1"'}  # fmt: skip
    (tmp_path / "hyperparameters.json").write_text(json.dumps(sdk))

    finished = run_training(dirs(tmp_path), env=tracking_env)

    assert finished.returncode == 0, finished.stderr
    assert json.loads((tmp_path / "model" / "seen.json").read_text())["argv"] == ["--epochs", "1"]


def test_a_failing_script_keeps_its_status_and_its_last_stderr_lines_go_to_the_failure_file_and_run(
    tmp_path: Path, tracking_env: dict[str, str], mlflow_client: Any
) -> None:
    (tmp_path / "hyperparameters.json").write_text(json.dumps({"fail": "bad shapes"}))
    finished = run_training(
        ["--entry-point", "train.py", "--source-dir", str(source(tmp_path)), *dirs(tmp_path)], env=tracking_env
    )

    assert finished.returncode == 3
    assert (tmp_path / "failure").read_text().splitlines()[-1] == "ValueError: bad shapes"
    run_id = json.loads((tmp_path / "checkpoints" / "run.json").read_text())["run_id"]
    run = mlflow_client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["mlplat.failure"].endswith("ValueError: bad shapes")


def test_sigterm_is_forwarded_and_the_script_resumes_through_the_helper(
    tmp_path: Path, tracking_env: dict[str, str], mlflow_client: Any
) -> None:
    (tmp_path / "hyperparameters.json").write_text(json.dumps({"epochs": "4", "sleep": "1"}))
    args = ["--entry-point", "train.py", "--source-dir", str(source(tmp_path)), "--job-name", "script-term",
            *dirs(tmp_path)]  # fmt: skip
    first = start_training(args, env=tracking_env)
    first.wait_for("epoch 1")
    first.process.send_signal(signal.SIGTERM)
    stopped = first.finish()
    run_id = json.loads((tmp_path / "checkpoints" / "run.json").read_text())["run_id"]

    assert stopped.returncode == 143
    assert mlflow_client.get_run(run_id).info.status == "KILLED"
    resumed = run_training(args, env=tracking_env)

    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 1\n" not in resumed.stdout
    assert mlflow_client.get_run(run_id).info.status == "FINISHED"
    assert [m.step for m in mlflow_client.get_metric_history(run_id, "loss")] == [1, 2, 3, 4][:4]


def test_a_missing_entry_point_is_bad_input(tmp_path: Path) -> None:
    finished = run_training(["--entry-point", "nope.py", "--source-dir", str(source(tmp_path)), *dirs(tmp_path)])

    assert finished.returncode == 2
    assert finished.stderr_lines[-1].startswith("error: entry point nope.py does not exist in the source ")


def test_an_archive_member_escaping_the_source_directory_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        data = b"print('x')"
        member = tarfile.TarInfo("../escape.py")
        member.size = len(data)
        bundle.addfile(member, io.BytesIO(data))

    finished = run_training(["--entry-point", "train.py", "--source-dir", str(archive), *dirs(tmp_path)])

    assert finished.returncode == 2
    assert finished.stderr_lines == [
        f"error: source {archive}: archive member '../escape.py' would land outside its directory"
    ]
    assert not (tmp_path / "escape.py").exists()


def test_a_requirement_that_does_not_install_is_bad_input_naming_it(tmp_path: Path) -> None:
    code = source(tmp_path)
    (code / "requirements.txt").write_text("numpy\nmlplat-no-such-package-xyz==9.9\n")

    finished = run_training(
        ["--entry-point", "train.py", "--source-dir", str(code), *dirs(tmp_path)], env={"PIP_NO_INDEX": "1"}
    )

    assert finished.returncode == 2
    assert finished.stderr_lines[-1] == (
        "error: requirements.txt of the source did not install: mlplat-no-such-package-xyz==9.9"
    )


def test_several_sagemaker_hosts_launch_torchrun_with_a_c10d_rendezvous_on_the_first(tmp_path: Path) -> None:
    import sys

    from training.script import launch_command

    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-2", "hosts": ["algo-2", "algo-1"]}))

    command = launch_command(4, {"MLPLAT_RESOURCE_CONFIG": str(config)}, 120, "job-x")

    assert command == [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--node-rank=1", "--nproc-per-node=4",
        "--rdzv-backend=c10d", "--rdzv-endpoint=algo-1:29400", "--rdzv-id=job-x", "--rdzv-conf=join_timeout=120",
    ]  # fmt: skip


def test_an_indexed_job_pod_joins_the_rendezvous_of_the_first_pod(tmp_path: Path) -> None:
    from training.script import launch_command

    env = {
        "MLPLAT_RESOURCE_CONFIG": str(tmp_path / "absent.json"),
        "JOB_COMPLETION_INDEX": "2",
        "MLPLAT_NNODES": "3",
        "MLPLAT_RDZV_HOST": "job-0.job-rdzv",
    }

    command = launch_command(1, env, 600, "job")

    assert command[3:7] == ["--nnodes=3", "--node-rank=2", "--nproc-per-node=1", "--rdzv-backend=c10d"]
    assert command[7] == "--rdzv-endpoint=job-0.job-rdzv:29400"


def test_one_host_and_one_process_runs_the_script_directly(tmp_path: Path) -> None:
    import sys

    from training.script import launch_command

    assert launch_command(1, {"MLPLAT_RESOURCE_CONFIG": str(tmp_path / "absent.json")}, 600, "job") == [sys.executable]
