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


def test_an_indexed_jobs_environment_runs_the_archive_from_s3_with_sm_hps_and_the_s3_channel_fetched(
    tmp_path: Path, tracking_env: dict[str, str], s3_server: Any
) -> None:
    from mlplat import sourcedir

    content, digest = sourcedir.pack(source(tmp_path), "train.py")
    s3 = s3_server.client()
    s3.put_object(Bucket=s3_server.bucket, Key=f"code/{digest}/sourcedir.tar.gz", Body=content)
    s3.put_object(Bucket=s3_server.bucket, Key="datasets/eks-script/v1/part-1.csv", Body=b"a\n1\n")
    s3.put_object(Bucket=s3_server.bucket, Key="datasets/eks-script/v1/more/part-2.csv", Body=b"a\n2\n")
    env = {
        **tracking_env,
        "SAGEMAKER_PROGRAM": "train.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{s3_server.bucket}/code/{digest}/sourcedir.tar.gz",
        "SM_HPS": '{"epochs": "2"}',
        "MLPLAT_INPUT_DATA_DIR": str(tmp_path / "input"),
    }

    finished = run_training(
        ["--data", f"train=s3://{s3_server.bucket}/datasets/eks-script/v1/", *dirs(tmp_path)], env=env
    )

    assert finished.returncode == 0, finished.stderr
    seen = json.loads((tmp_path / "model" / "seen.json").read_text())
    assert (seen["argv"], json.loads(seen["SM_HPS"])) == (["--epochs", "2"], {"epochs": "2"})
    assert seen["train"] == ["more/part-2.csv", "part-1.csv"]
    assert (tmp_path / "input" / "train" / "part-1.csv").read_bytes() == b"a\n1\n"


def test_an_empty_s3_channel_is_bad_input_naming_it(tmp_path: Path, s3_server: Any) -> None:
    uri = f"s3://{s3_server.bucket}/datasets/nothing-here/v1/"
    finished = run_training(
        ["--entry-point", "train.py", "--source-dir", str(source(tmp_path)), "--data", f"train={uri}",
         *dirs(tmp_path)],
        env={"AWS_ENDPOINT_URL": s3_server.endpoint_url, "MLPLAT_INPUT_DATA_DIR": str(tmp_path / "input")},
    )  # fmt: skip

    assert finished.returncode == 2
    assert finished.stderr_lines[-1] == f"error: channel train: no objects under {uri}"


def test_the_rendezvous_port_follows_the_jobs_service(tmp_path: Path) -> None:
    from training.script import launch_command

    env = {
        "MLPLAT_RESOURCE_CONFIG": str(tmp_path / "absent.json"),
        "JOB_COMPLETION_INDEX": "0",
        "MLPLAT_NNODES": "2",
        "MLPLAT_RDZV_HOST": "job-0.job-rdzv",
        "MLPLAT_RDZV_PORT": "29500",
    }

    assert launch_command(1, env, 600, "job")[7] == "--rdzv-endpoint=job-0.job-rdzv:29500"


def tiny_wheel(directory: Path) -> Path:
    """A one-module wheel (`mlplat_tiny_wheel.VALUE == 42`), written as pip expects one: METADATA, WHEEL, RECORD."""
    import zipfile

    name, version = "mlplat_tiny_wheel", "0.1"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": "VALUE = 42\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/RECORD": "",
    }
    directory.mkdir(parents=True)
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as bundle:
        for member, text in files.items():
            bundle.writestr(member, text)
    return wheel


def test_a_wheel_named_in_requirements_is_importable_by_the_script_and_stays_out_of_the_runtimes_packages(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    code = tmp_path / "code"
    wheel = tiny_wheel(code / "wheels")
    (code / "requirements.txt").write_text(f"wheels/{wheel.name}\n")
    (code / "train.py").write_text(
        "import json, os, mlplat_tiny_wheel\n"
        "path = os.path.join(os.environ['SM_MODEL_DIR'], 'tiny.json')\n"
        "json.dump({'value': mlplat_tiny_wheel.VALUE, 'file': mlplat_tiny_wheel.__file__}, open(path, 'w'))\n"
    )

    finished = run_training(
        ["--entry-point", "train.py", "--source-dir", str(code), *dirs(tmp_path)], env={"PIP_NO_INDEX": "1"}
    )

    assert finished.returncode == 0, finished.stderr
    seen = json.loads((tmp_path / "model" / "tiny.json").read_text())
    assert seen["value"] == 42
    assert Path(seen["file"]).parts[-5:] == ("packages", "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}",
                                             "site-packages", "mlplat_tiny_wheel.py")  # fmt: skip
    assert not Path(seen["file"]).exists()  # the job's private packages went with its directory
    probe = subprocess.run([sys.executable, "-c", "import mlplat_tiny_wheel"], capture_output=True, check=False)
    assert probe.returncode == 1


def test_a_replacement_pod_with_empty_directories_resumes_the_script_and_its_run_from_the_s3_mirror(
    tmp_path: Path, tracking_env: dict[str, str], s3_server: Any, mlflow_client: Any
) -> None:
    code = source(tmp_path)
    mirror = f"s3://{s3_server.bucket}/checkpoints/script-mirror-{tmp_path.name}/"
    env = {**tracking_env, "MLPLAT_CHECKPOINT_S3_URI": mirror}

    def pod(name: str, epochs: str) -> Any:
        (tmp_path / name).mkdir()
        (tmp_path / name / "hyperparameters.json").write_text(json.dumps({"epochs": epochs}))
        return run_training(
            ["--entry-point", "train.py", "--source-dir", str(code), "--job-name", "script-mirror",
             *dirs(tmp_path / name)],
            env=env,
        )  # fmt: skip

    first = pod("pod-a", "2")
    assert first.returncode == 0, first.stderr
    prefix = mirror.removeprefix(f"s3://{s3_server.bucket}/")
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)
    assert sorted(o["Key"].removeprefix(prefix) for o in listed["Contents"]) == ["run.json", "script-checkpoint.pt"]

    second = pod("pod-b", "4")

    assert second.returncode == 0, second.stderr
    assert [line for line in second.stdout.splitlines() if line.startswith("epoch")] == ["epoch 3", "epoch 4"]
    run_id = json.loads((tmp_path / "pod-a" / "checkpoints" / "run.json").read_text())["run_id"]
    assert json.loads((tmp_path / "pod-b" / "checkpoints" / "run.json").read_text())["run_id"] == run_id
    assert [m.step for m in mlflow_client.get_metric_history(run_id, "loss")] == [1, 2, 3, 4]


def test_the_helper_uploads_each_checkpoint_to_the_mirror_as_it_saves_it(
    tmp_path: Path, aws_env: Any, monkeypatch: Any
) -> None:
    from training import toolkit

    monkeypatch.setenv("MLPLAT_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("MLPLAT_CHECKPOINT_S3_URI", f"s3://{aws_env.bucket}/checkpoints/helper-{tmp_path.name}/")

    toolkit.save_checkpoint({"epoch": 1})

    key = f"checkpoints/helper-{tmp_path.name}/script-checkpoint.pt"
    body = aws_env.client().get_object(Bucket=aws_env.bucket, Key=key)["Body"].read()
    assert body == (tmp_path / "script-checkpoint.pt").read_bytes()
