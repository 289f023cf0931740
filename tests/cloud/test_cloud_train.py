"""`mlplat train --on sagemaker` against moto's server: the exact request, the status stream, the registered version."""

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloud_support import FakeStack, Registry, write_model_dir
from typer.testing import CliRunner

from mlplat import cloud_train
from mlplat.cli import app
from mlplat.release import pack_model_dir

runner = CliRunner()
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplat/training:0.1.0"  # the stack's short name, in its ECR


class Recorder:
    """Sits at the boto3 boundary: records each CreateTrainingJob request and can rewrite DescribeTrainingJob answers.

    moto completes a job the moment it is created and cannot fail one, so a test scripts the statuses it wants:
    `script` holds overrides for successive describes; the last one repeats; an empty dict leaves moto's answer.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[dict[str, Any]] = []
        self.describes = 0

    def on_create(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(copy.deepcopy(params))

    def on_describe(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.script:
            parsed.update(self.script[min(self.describes, len(self.script) - 1)])
        self.describes += 1


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    original = boto3.Session

    class RecordingSession(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.events.register("provide-client-params.sagemaker.CreateTrainingJob", rec.on_create)
            self.events.register("after-call.sagemaker.DescribeTrainingJob", rec.on_describe)

    monkeypatch.setattr(boto3, "Session", RecordingSession)
    return rec


@pytest.fixture
def stack(make_stack: Callable[..., FakeStack]) -> FakeStack:
    """The dev stack deployed, with its dataset uploaded."""
    built = make_stack("dev")
    built.s3().put_object(Bucket=built.bucket, Key=f"datasets/{built.model}/v1/abalone.csv", Body=b"Length,Rings\n")
    return built


def job_name() -> str:
    return f"job-{uuid.uuid4().hex[:12]}"


def upload_job_model(stack: FakeStack, name: str, tmp_path: Path, with_mlmodel: bool = True) -> None:
    """What SageMaker uploads from /opt/ml/model when the container exits: `<output>/<job>/output/model.tar.gz`."""
    model = write_model_dir(tmp_path / "job-model")
    archive = tmp_path / "job-model.tar.gz"
    pack_model_dir(model, archive)
    if not with_mlmodel:
        archive.write_bytes(_tar_without_mlmodel(tmp_path))
    stack.s3().upload_file(str(archive), stack.bucket, f"training-jobs/{name}/output/model.tar.gz")


def _tar_without_mlmodel(tmp_path: Path) -> bytes:
    import tarfile

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "weights.bin").write_bytes(b"x")
    with tarfile.open(tmp_path / "junk.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "junk" / "weights.bin", arcname="weights.bin")
    return (tmp_path / "junk.tar.gz").read_bytes()


def train(stack: FakeStack, name: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["train", "--stack", stack.name, "--on", "sagemaker", "--outputs", str(stack.outputs_file),
         "--stack-file", str(stack.stack_file), "--job-name", name, "--poll-interval", "0", *args],
    )  # fmt: skip
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def expected_request(stack: FakeStack, name: str, tracking_uri: str) -> dict[str, Any]:
    out = stack.outputs
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": out["trainingRoleArn"],
        "HyperParameters": {
            "registered_model_name": stack.model,
            "experiment_name": "mlplat-training",
            "epochs": "5",
            "lr": "0.01",
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{stack.bucket}/datasets/{stack.model}/v1/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
                "InputMode": "File",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{stack.bucket}/training-jobs/", "KmsKeyId": out["kmsKeyArn"]},
        "ResourceConfig": {
            "InstanceType": "ml.g5.xlarge",
            "InstanceCount": 2,
            "VolumeSizeInGB": 30,
            "VolumeKmsKeyId": out["kmsKeyArn"],
        },
        "VpcConfig": {"SecurityGroupIds": ["sg-0workload"], "Subnets": ["subnet-0aaa1111", "subnet-0bbb2222"]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": f"s3://{stack.bucket}/checkpoints/{name}/", "LocalPath": "/opt/ml/checkpoints"},
        "Environment": {
            "MLPLAT_IMAGE": IMAGE,
            "MLPLAT_ENVIRONMENT": "dev",
            "MLFLOW_TRACKING_URI": tracking_uri,
        },
        "Tags": [
            {"Key": "mlplat:environment", "Value": "dev"},
            {"Key": "mlplat:team", "Value": "ml-research"},
            {"Key": "mlplat:cost-center", "Value": "cc-4100"},
            {"Key": "mlplat:component", "Value": "training"},
        ],
    }


SPOT_ARGS = ("--spot", "--instance-type", "ml.g5.xlarge", "--instances", "2", "--max-runtime", "3600",
             "--max-wait", "7200", "--epochs", "5", "--hp", "lr=0.01")  # fmt: skip


def test_moto_records_the_job_with_isolation_encryption_vpc_kms_spot_checkpoints_and_channel(
    stack: FakeStack, registry: Registry, recorder: Recorder, tmp_path: Path
) -> None:
    name = job_name()
    upload_job_model(stack, name, tmp_path)

    code, output = train(stack, name, *SPOT_ARGS, "--client", "boto3")

    assert code == 0, output
    job = boto3.client("sagemaker", region_name="us-east-1").describe_training_job(TrainingJobName=name)
    expected = expected_request(stack, name, cloud_train.ISOLATED_TRACKING_URI)
    for field in ("RoleArn", "HyperParameters", "InputDataConfig", "OutputDataConfig", "ResourceConfig", "VpcConfig",
                  "StoppingCondition", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                  "EnableManagedSpotTraining", "CheckpointConfig"):  # fmt: skip
        assert job[field] == expected[field], field
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE


def test_the_request_sent_is_exactly_the_planned_one(
    stack: FakeStack, registry: Registry, recorder: Recorder, tmp_path: Path
) -> None:
    name = job_name()
    upload_job_model(stack, name, tmp_path)

    code, output = train(stack, name, *SPOT_ARGS, "--client", "boto3")

    assert code == 0, output
    assert recorder.requests == [expected_request(stack, name, cloud_train.ISOLATED_TRACKING_URI)]


def test_the_sagemaker_sdk_sends_the_same_request_as_boto3(
    stack: FakeStack, registry: Registry, recorder: Recorder, tmp_path: Path
) -> None:
    if not cloud_train.sdk_available():
        pytest.skip("the SageMaker Python SDK (`cloud` extra) is not installed")
    name = job_name()
    upload_job_model(stack, name, tmp_path)

    code, output = train(stack, name, *SPOT_ARGS, "--client", "sdk")

    assert code == 0, output
    assert "(submitted with sagemaker-sdk)" in output
    assert recorder.requests == [expected_request(stack, name, cloud_train.ISOLATED_TRACKING_URI)]


def upload_job_output(stack: FakeStack, name: str, tmp_path: Path) -> None:
    """The container's /opt/ml/output/data as SageMaker uploads it: `output.tar.gz` holding `metrics.json`."""
    import io
    import tarfile

    metrics = json.dumps({"final": {"test_rmse": 2.1, "test_r2": 0.55}, "stop_reason": "patience"}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("metrics.json")
        info.size = len(metrics)
        tar.addfile(info, io.BytesIO(metrics))
    stack.s3().put_object(Bucket=stack.bucket, Key=f"training-jobs/{name}/output/output.tar.gz", Body=buffer.getvalue())


def test_an_isolated_job_gets_its_run_and_version_registered_from_its_artifact(
    stack: FakeStack, registry: Registry, recorder: Recorder, tmp_path: Path
) -> None:
    name = job_name()
    upload_job_model(stack, name, tmp_path)
    upload_job_output(stack, name, tmp_path)

    code, output = train(stack, name, "--json")

    assert code == 0, output
    result = json.loads(runner_stdout(output))
    client = registry.client()
    version = client.get_model_version(stack.model, str(result["version"]))
    run = client.get_run(result["run_id"])
    assert result["version"] == 1
    assert version.run_id == run.info.run_id
    assert run.info.run_name == name
    assert run.data.tags["mlplat.training_job"] == name
    assert run.data.params["registered_model_name"] == stack.model
    assert run.data.metrics["test_rmse"] == 2.1
    assert run.data.metrics["train:progress"] == 100.0  # moto's FinalMetricDataList
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} == {"model/MLmodel", "model/artifacts"}


def runner_stdout(output: str) -> str:
    """The JSON report: the progress lines go to stderr, which CliRunner interleaves before it."""
    return output[output.index("{") :]


def test_a_job_with_network_access_is_pointed_at_the_tracking_server_and_its_own_run_is_found(
    stack: FakeStack, registry: Registry, recorder: Recorder, model_dir: Path
) -> None:
    name = job_name()
    # What the container does when it can reach the tracking server: a run named after the job, a version from it.
    client = registry.client()
    experiment = client.get_experiment_by_name("mlplat-training")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("mlplat-training")
    run = client.create_run(experiment_id, run_name=name)
    client.log_artifacts(run.info.run_id, str(model_dir), "model")
    client.create_registered_model(stack.model)
    client.create_model_version(stack.model, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)

    code, output = train(stack, name, "--no-network-isolation", "--client", "boto3")

    assert code == 0, output
    request = recorder.requests[0]
    assert request["EnableNetworkIsolation"] is False
    assert request["Environment"]["MLFLOW_TRACKING_URI"] == registry.tracking_uri
    assert f"  run       {run.info.run_id} (experiment mlplat-training)\n" in output
    assert f"  model     {stack.model} version 1\n" in output


def test_the_tracking_server_defaults_to_the_stacks(
    stack: FakeStack, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    result = runner.invoke(
        app,
        ["train", "--stack", "dev", "--outputs", str(stack.outputs_file), "--stack-file", str(stack.stack_file),
         "--no-network-isolation", "--dry-run"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["Environment"]["MLFLOW_TRACKING_URI"] == stack.outputs["trackingServerArn"]


def test_the_status_is_streamed_until_the_job_completes(
    stack: FakeStack, registry: Registry, recorder: Recorder, tmp_path: Path
) -> None:
    name = job_name()
    upload_job_model(stack, name, tmp_path)
    recorder.script = [
        {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"},
        {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"},
        {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"},
        {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Uploading"},
        {"BillableTimeInSeconds": 120, "TrainingTimeInSeconds": 400},
    ]

    code, output = train(stack, name, "--client", "boto3")

    assert code == 0, output
    statuses = [line.split("] ", 1)[1].split(":")[0] for line in output.splitlines() if line.startswith("[")]
    assert statuses == [
        "InProgress / Starting",
        "InProgress / Training",
        "InProgress / Uploading",
        "Completed / Completed",
    ]
    assert f"training job {name} completed (submitted with boto3)\n" in output
    assert "  billed    120 s of 400 s (70% saved)\n" in output


def test_a_failed_job_exits_non_zero_with_its_failure_reason(
    stack: FakeStack, registry: Registry, recorder: Recorder
) -> None:
    name = job_name()
    recorder.script = [
        {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"},
        {
            "TrainingJobStatus": "Failed",
            "SecondaryStatus": "Failed",
            "FailureReason": "AlgorithmError: --epochs must be an integer >= 1 (got '0')",
        },
    ]

    code, output = train(stack, name, "--client", "boto3")

    assert code == 1
    assert output.endswith(
        f"error: training job {name!r} failed: AlgorithmError: --epochs must be an integer >= 1 (got '0')\n"
    )
    assert registry.client().search_registered_models(f"name = '{stack.model}'") == []


def test_a_stopped_job_exits_non_zero(stack: FakeStack, registry: Registry, recorder: Recorder) -> None:
    name = job_name()
    recorder.script = [{"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxWaitTimeExceeded"}]

    code, output = train(stack, name, "--client", "boto3")

    assert code == 1
    assert output.endswith(f"error: training job {name!r} was stopped (MaxWaitTimeExceeded)\n")


def test_following_a_job_gives_up_after_the_timeout(stack: FakeStack, registry: Registry, recorder: Recorder) -> None:
    name = job_name()
    recorder.script = [{"TrainingJobStatus": "InProgress", "SecondaryStatus": "Pending"}]

    code, output = train(stack, name, "--client", "boto3", "--timeout", "0")

    assert code == 1
    assert output.endswith(
        f"error: training job {name!r} is still InProgress (Pending) after 0 s; it keeps running: follow it with "
        f"`aws sagemaker describe-training-job --training-job-name {name}`\n"
    )


def test_a_missing_dataset_is_refused_before_any_job_is_created(
    stack: FakeStack, registry: Registry, recorder: Recorder
) -> None:
    name = job_name()

    code, output = train(stack, name, "--dataset-version", "v9")

    assert code == 1
    assert (
        output == f"error: no data at s3://{stack.bucket}/datasets/{stack.model}/v9/: upload the dataset there first\n"
    )
    assert recorder.requests == []


def test_a_job_artifact_without_an_mlflow_model_is_reported(
    stack: FakeStack, registry: Registry, recorder: Recorder, tmp_path: Path
) -> None:
    name = job_name()
    upload_job_model(stack, name, tmp_path, with_mlmodel=False)

    code, output = train(stack, name, "--client", "boto3")

    artifact = f"s3://{stack.bucket}/training-jobs/{name}/output/model.tar.gz"
    assert code == 1
    assert output.endswith(
        f"error: the job's model artifact {artifact} holds no MLflow model (no MLmodel at its root)\n"
    )


def test_max_wait_shorter_than_the_runtime_is_refused(stack: FakeStack, recorder: Recorder) -> None:
    code, output = train(stack, job_name(), "--spot", "--max-runtime", "3600", "--max-wait", "600")

    assert (code, output) == (1, "error: --max-wait must be >= --max-runtime (got 600 < 3600 seconds)\n")
    assert recorder.requests == []


def test_max_wait_without_spot_is_refused(stack: FakeStack, recorder: Recorder) -> None:
    code, output = train(stack, job_name(), "--max-wait", "600")

    assert (code, output) == (1, "error: --max-wait applies to spot capacity only; add --spot or drop --max-wait\n")


def test_spot_waits_twice_the_runtime_by_default(stack: FakeStack, recorder: Recorder) -> None:
    code, output = train(stack, job_name(), "--spot", "--max-runtime", "1800", "--dry-run")

    assert code == 0, output
    assert json.loads(output)["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}


def test_dry_run_prints_the_request_and_creates_nothing(stack: FakeStack, recorder: Recorder) -> None:
    name = job_name()

    code, output = train(stack, name, "--dry-run")

    assert code == 0, output
    assert json.loads(output)["TrainingJobName"] == name
    assert recorder.requests == []


def test_an_unknown_stack_is_refused() -> None:
    result = runner.invoke(app, ["train", "--stack", "qa", "--on", "sagemaker"])

    assert result.exit_code == 2
    assert result.output == (
        "error: unknown stack 'qa': stacks/Pulumi.qa.yaml does not exist "
        "(known: dev, prod, staging; or pass --stack-file PATH)\n"
    )


def test_missing_outputs_are_named(stack: FakeStack, recorder: Recorder) -> None:
    data = json.loads(stack.outputs_file.read_text())
    del data["trainingRoleArn"]
    stack.outputs_file.write_text(json.dumps(data))

    code, output = train(stack, job_name())

    assert code == 2
    assert output == f"error: stack 'dev' outputs ({stack.outputs_file}) are missing trainingRoleArn\n"


def test_a_bad_hyperparameter_is_refused(stack: FakeStack, recorder: Recorder) -> None:
    code, output = train(stack, job_name(), "--hp", "lr")

    assert (code, output) == (1, "error: --hp must be KEY=VALUE (got 'lr')\n")


def test_default_job_names_fit_sagemaker_and_kubernetes_limits() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 21, 19, 41, 31, tzinfo=UTC)
    long_model = "a" * 40

    assert cloud_train.default_job_name("mlplat-dev", "abalone", now=now) == "mlplat-dev-abalone-20261121-194131"
    assert len(cloud_train.default_job_name("mlplat-staging", long_model, now=now)) == 63
    assert len(cloud_train.default_job_name("", long_model, max_length=50, now=now)) == 50
