"""`mlplat monitor` against captures on disk and in S3, with profiles registered in a real MLflow server."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from monitor_support import abalone, build_profile, frame_records, shifted, write_capture
from typer.testing import CliRunner

from mlplat.monitor.drift import Profile
from mlplat.monitor_cmd import cli

MODEL = "abalone-monitor-cli"
ENDPOINT = "abalone-cli"


@pytest.fixture(scope="module")
def app():
    import typer

    root = typer.Typer()
    root.callback()(lambda: None)
    cli.register(root)
    return root


@pytest.fixture(scope="module")
def registered(mlflow_server) -> str:
    """Version 1 of MODEL, whose run holds the abalone reference profile; returns the tracking URI."""
    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri, registry_uri=mlflow_server.tracking_uri)
    experiment = client.create_experiment("monitor-cli-training")
    run = client.create_run(experiment)
    profile = build_profile(abalone(), prediction=abalone()["Rings"].astype(float).tolist())
    client.log_dict(run.info.run_id, profile, "reference_profile.json")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return mlflow_server.tracking_uri


def _captures(root: Path, frame, version: str = "1") -> str:
    now = datetime.now(UTC)
    write_capture(root, ENDPOINT, frame_records(frame, now, model_name=MODEL, model_version=version), now)
    return str(root / "data-capture" / ENDPOINT)


def _run(app, *args: str):
    return CliRunner().invoke(app, ["monitor", *args], catch_exceptions=False)


def test_in_distribution_traffic_exits_zero_and_logs_a_monitoring_run(app, registered, tmp_path) -> None:
    capture = _captures(tmp_path, abalone().sample(n=400, random_state=21))
    out = tmp_path / "out"
    result = _run(app, "--capture", capture, "--tracking-uri", registered, "--output-dir", str(out), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["drifted"], document["drifted_features"], document["rows"]) == (False, [], 400)
    assert document["model"]["name"] == MODEL and document["model"]["version"] == "1"
    assert document["plots"] == []
    assert json.loads((out / "report.json").read_text())["mlflow_run_id"] == document["mlflow_run_id"]
    run = MlflowClient(tracking_uri=registered).get_run(document["mlflow_run_id"])
    assert run.data.tags["mlplat.model.name"] == MODEL
    assert run.data.tags["mlplat.model.version"] == "1"
    assert run.data.tags["mlplat.drift"] == "false"
    assert run.data.metrics["drifted.Length"] == 0.0
    assert run.data.metrics["psi.Length"] == pytest.approx(document["features"][1]["psi"])
    assert "ks.pvalue.Length" in run.data.metrics and "chi2.pvalue.Sex" in run.data.metrics


def test_shifted_traffic_exits_three_naming_exactly_the_shifted_features(app, registered, tmp_path) -> None:
    capture = _captures(tmp_path, shifted(abalone().sample(n=400, random_state=22)))
    out = tmp_path / "out"
    result = _run(app, "--capture", capture, "--tracking-uri", registered, "--output-dir", str(out), "--json")
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    assert document["drifted_features"] == ["Sex", "Length", "WholeWeight"]
    assert document["prediction_drifted"] is False
    assert sorted(p.name for p in out.glob("*.png")) == ["Length.png", "Sex.png", "WholeWeight.png"]
    assert (out / "Length.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = MlflowClient(tracking_uri=registered).get_run(document["mlflow_run_id"])
    assert run.data.tags["mlplat.drifted_features"] == "Sex,Length,WholeWeight"
    assert run.data.metrics["new_categories.Sex"] == 1.0
    artifacts = {a.path for a in MlflowClient(tracking_uri=registered).list_artifacts(document["mlflow_run_id"])}
    assert {"report.json", "Length.png", "Sex.png", "WholeWeight.png"} <= artifacts


def test_the_table_names_the_drifted_features_in_one_verdict_line(app, registered, tmp_path) -> None:
    capture = _captures(tmp_path, shifted(abalone().sample(n=200, random_state=23), new_category_every=None))
    result = _run(
        app, "--capture", capture, "--tracking-uri", registered, "--output-dir", str(tmp_path / "o"), "--no-log"
    )
    assert result.exit_code == 3
    assert "drift over threshold (PSI >= 0.2 and p < 0.01): Length, WholeWeight" in result.stdout
    assert "mean 0.5" in result.stdout


def test_thresholds_can_be_overridden_per_run(app, registered, tmp_path) -> None:
    capture = _captures(tmp_path, shifted(abalone().sample(n=200, random_state=24), new_category_every=None))
    args = ["--capture", capture, "--profile", str(_profile_file(tmp_path)), "--no-log", "--json"]
    result = _run(app, *args, "--psi-threshold", "50", "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["thresholds"] == {"psi": 50.0, "p_value": 0.01, "min_records": 50}


def _profile_file(tmp_path: Path) -> Path:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(build_profile(abalone())))
    Profile.from_dict(json.loads(path.read_text()))
    return path


def test_an_empty_capture_window_is_bad_input_with_one_clear_line(app, tmp_path) -> None:
    (tmp_path / "data-capture" / ENDPOINT).mkdir(parents=True)
    result = _run(app, "--capture", str(tmp_path / "data-capture" / ENDPOINT), "--since", "2h")
    assert result.exit_code == 2
    assert result.stderr == f"error: no capture records under {tmp_path / 'data-capture' / ENDPOINT} in the last 2h\n"


def test_a_model_version_that_is_not_registered_is_bad_input(app, registered, tmp_path) -> None:
    capture = _captures(tmp_path, abalone().head(20), version="99")
    result = _run(app, "--capture", capture, "--tracking-uri", registered, "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert result.stderr == f"error: model '{MODEL}' version 99 is not registered at {registered}\n"


def test_a_registered_version_without_a_profile_is_bad_input(app, registered, tmp_path) -> None:
    client = MlflowClient(tracking_uri=registered, registry_uri=registered)
    run = client.create_run(client.get_experiment_by_name("monitor-cli-training").experiment_id)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id).version
    capture = _captures(tmp_path, abalone().head(20), version=str(version))
    result = _run(app, "--capture", capture, "--tracking-uri", registered, "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: run {run.info.run_id} of model '{MODEL}' version {version} has no reference_profile.json\n"
    )


def test_a_malformed_profile_file_is_bad_input(app, tmp_path) -> None:
    capture = _captures(tmp_path, abalone().head(20))
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "mlplat-profile/1", "features": {}}')
    result = _run(app, "--capture", capture, "--profile", str(bad), "--no-log")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: profile file {bad}: features must be a non-empty object of feature name to profile\n"
    )


def test_captures_that_do_not_name_their_model_need_model_and_version(app, tmp_path) -> None:
    now = datetime.now(UTC)
    write_capture(tmp_path, ENDPOINT, frame_records(abalone().head(20), now, model_version=None), now)
    result = _run(app, "--capture", str(tmp_path / "data-capture" / ENDPOINT), "--no-log")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the capture records do not name the model version that served them")


@pytest.mark.parametrize("args", [[], ["--local", "--stack", "dev"], ["--stack", "dev", "--capture", "x"]])
def test_exactly_one_source_must_be_given(app, args: list[str]) -> None:
    result = _run(app, *args, "--since", "1h")
    assert result.exit_code == 2
    assert result.stderr == "error: give exactly one of --local, --stack <env> or --capture <dir|s3://...>\n"


def test_a_bad_window_is_bad_input(app) -> None:
    result = _run(app, "--capture", "x", "--since", "yesterday")
    assert result.exit_code == 2
    assert result.stderr == "error: --since 'yesterday' is not a duration like 30m, 24h or 7d\n"


def test_local_without_a_running_platform_is_bad_input(app, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLPLAT_HOME", str(tmp_path / "home"))
    result = _run(app, "--local")
    assert result.exit_code == 2
    assert "the local platform is not running under" in result.stderr


def test_local_home_flag_names_the_platform_to_monitor(app, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLPLAT_HOME", str(tmp_path / "elsewhere"))
    home = (tmp_path / "home").resolve()
    result = _run(app, "--local", "--home", str(home))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: the local platform is not running under {home}; start it with `mlplat up --local`\n"
    )


def test_an_unknown_stack_endpoint_is_bad_input(app) -> None:
    result = _run(app, "--stack", "dev", "--endpoint", "nope")
    assert result.exit_code == 2
    assert result.stderr == "error: stack dev has no endpoint 'nope' (it has abalone-dev)\n"


def _outputs(tmp_path: Path, bucket: str) -> Path:
    path = tmp_path / "dev-outputs.json"
    path.write_text(
        json.dumps(
            {
                "environment": "dev",
                "region": "us-east-1",
                "vpcId": "vpc-1",
                "privateSubnetIds": ["subnet-1"],
                "bucketName": bucket,
                "bucketArn": f"arn:aws:s3:::{bucket}",
                "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k",
                "trackingServerArn": "arn:aws:sagemaker:us-east-1:111122223333:mlflow-app/app-1",
                "trackingServerUrl": "https://t.example",
                "trainingRoleArn": "arn:aws:iam::111122223333:role/t",
                "servingRoleArn": "arn:aws:iam::111122223333:role/s",
                "workloadSecurityGroupId": "sg-1",
                "endpointNames": ["abalone-dev"],
                "budgetName": "b",
            }
        )
    )
    return path


def test_a_stack_reads_its_endpoint_capture_from_the_stack_bucket_with_the_stack_thresholds(
    app, aws_env, tmp_path
) -> None:
    now = datetime.now(UTC)
    frame = shifted(abalone().sample(n=300, random_state=25), new_category_every=None)
    body = "".join(json.dumps(r) + "\n" for r in frame_records(frame, now, model_name=None, model_version=None))
    # SageMaker's own capture: a variant directory, and no model name or version in the records.
    key = f"data-capture/abalone-dev/AllTraffic/{now:%Y/%m/%d/%H}/capture-1.jsonl"
    aws_env.client().put_object(Bucket=aws_env.bucket, Key=key, Body=body.encode())
    result = _run(
        app,
        "--stack", "dev",
        "--outputs", str(_outputs(tmp_path, aws_env.bucket)),
        "--profile", str(_profile_file(tmp_path)),
        "--no-log", "--json", "--output-dir", str(tmp_path / "o"),
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    assert document["capture"] == f"s3://{aws_env.bucket}/data-capture/abalone-dev/"
    assert document["thresholds"] == {"psi": 0.25, "p_value": 0.01, "min_records": 50}
    assert document["model"] == {"name": "abalone", "version": "1", "profile": str(tmp_path / "profile.json")}
    assert document["drifted_features"] == ["Length", "WholeWeight"]


def test_drift_is_published_to_the_alarm_topic(app, aws_env, tmp_path) -> None:
    import boto3

    sns = boto3.client("sns", endpoint_url=aws_env.endpoint_url)
    topic = sns.create_topic(Name="drift-alarms")["TopicArn"]
    capture = _captures(tmp_path, shifted(abalone().sample(n=200, random_state=26)))
    result = _run(
        app, "--capture", capture, "--profile", str(_profile_file(tmp_path)), "--no-log", "--json",
        "--alarm-topic", topic, "--output-dir", str(tmp_path / "o"),
    )  # fmt: skip
    assert result.exit_code == 3
    assert json.loads(result.stdout)["alarm_message_id"]
