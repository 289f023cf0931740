"""Bad input ends with exit status 2 and exactly one `error: ...` line on stderr, before anything is tracked."""

import json
from pathlib import Path
from typing import Any

import pytest
from training_support import ABALONE, Finished, job_dirs, run_training

from mlplat.local import services

ABALONE_COLUMNS = "Sex, Length, Diameter, Height, WholeWeight, ShuckedWeight, VisceraWeight, ShellWeight, Rings"


def assert_bad_input(finished: Finished, message: str) -> None:
    assert finished.returncode == 2, finished.stderr
    assert finished.stderr_lines == [message]
    assert "MLPLAT_RESULT" not in finished.stdout


def edited_abalone(tmp_path: Path, line: int, column: str, value: str) -> Path:
    """A copy of abalone.csv with one cell replaced (line numbers count the header as line 1)."""
    lines = ABALONE.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    path = tmp_path / "abalone.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_missing_target_column_names_the_file_and_its_columns(tmp_path: Path) -> None:
    lines = ABALONE.read_text().splitlines()
    path = tmp_path / "no-target.csv"
    path.write_text("\n".join(",".join(line.split(",")[:-1]) for line in lines) + "\n")

    finished = run_training(["--data", str(path), *job_dirs(tmp_path)])

    assert_bad_input(
        finished,
        f"error: target column 'Rings' not found in {path} "
        "(columns: Sex, Length, Diameter, Height, WholeWeight, ShuckedWeight, VisceraWeight, ShellWeight)",
    )


def test_target_flag_naming_an_absent_column_is_reported(tmp_path: Path) -> None:
    finished = run_training(["--data", str(ABALONE), "--target", "Age", *job_dirs(tmp_path)])

    assert_bad_input(finished, f"error: target column 'Age' not found in {ABALONE} (columns: {ABALONE_COLUMNS})")


def test_non_numeric_value_in_a_numeric_column_is_reported_with_its_line(tmp_path: Path) -> None:
    path = edited_abalone(tmp_path, line=5, column="Length", value="abc")

    finished = run_training(["--data", str(path), *job_dirs(tmp_path)])

    assert_bad_input(finished, f"error: column 'Length' in {path} has a non-numeric value 'abc' on line 5")


def test_non_numeric_target_value_is_reported(tmp_path: Path) -> None:
    path = edited_abalone(tmp_path, line=100, column="Rings", value="old")

    finished = run_training(["--data", str(path), *job_dirs(tmp_path)])

    assert_bad_input(finished, f"error: column 'Rings' in {path} has a non-numeric value 'old' on line 100")


def test_classification_target_with_a_single_class_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "one-class.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i * 2},benign\n" for i in range(30)))

    finished = run_training(["--data", str(path), "--target", "label", *job_dirs(tmp_path)])

    assert_bad_input(
        finished, "error: target column 'label' has a single class ('benign'); classification needs at least two"
    )


def test_regression_of_a_text_target_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "text.csv"
    path.write_text("a,label\n" + "".join(f"{i},{'yes' if i % 2 else 'no'}\n" for i in range(30)))

    finished = run_training(["--data", str(path), "--target", "label", "--task", "regression", *job_dirs(tmp_path)])

    assert_bad_input(
        finished,
        "error: target column 'label' is not numeric (e.g. 'no'); regression needs numbers (use --task classification)",
    )


def test_empty_value_is_reported_with_its_line(tmp_path: Path) -> None:
    path = edited_abalone(tmp_path, line=7, column="Sex", value="")

    finished = run_training(["--data", str(path), *job_dirs(tmp_path)])

    assert_bad_input(finished, f"error: column 'Sex' in {path} has an empty value on line 7")


def test_empty_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")

    finished = run_training(["--data", str(path), *job_dirs(tmp_path)])

    assert_bad_input(finished, f"error: data file {path} is empty")


def test_file_with_only_a_header_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(ABALONE.read_text().splitlines()[0] + "\n")

    finished = run_training(["--data", str(path), *job_dirs(tmp_path)])

    assert_bad_input(finished, f"error: data file {path} has a header but no rows")


def test_missing_channel_directory_is_reported_with_how_to_fix_it(tmp_path: Path) -> None:
    channel = tmp_path / "input" / "data" / "train"

    finished = run_training(job_dirs(tmp_path), env={"SM_CHANNEL_TRAIN": str(channel)})

    assert_bad_input(
        finished, f"error: training data not found: {channel} does not exist (set --data or SM_CHANNEL_TRAIN)"
    )


def test_channel_without_csv_files_is_reported(tmp_path: Path) -> None:
    channel = tmp_path / "train"
    channel.mkdir()
    (channel / "notes.txt").write_text("no data here")

    finished = run_training(["--data", str(channel), *job_dirs(tmp_path)])

    assert_bad_input(finished, f"error: training data not found: no .csv files in {channel}")


def test_s3_uri_of_a_missing_bucket_is_reported(tmp_path: Path, s3_server: Any) -> None:
    finished = run_training(
        ["--data", "s3://no-such-bucket/abalone.csv", *job_dirs(tmp_path)],
        env={"AWS_ENDPOINT_URL": s3_server.endpoint_url},
    )

    assert_bad_input(
        finished,
        "error: cannot read s3://no-such-bucket/abalone.csv: NoSuchBucket: The specified bucket does not exist",
    )


def test_s3_uri_without_csv_objects_is_reported(tmp_path: Path, s3_server: Any) -> None:
    uri = f"s3://{s3_server.bucket}/datasets/nothing-here/"

    finished = run_training(["--data", uri, *job_dirs(tmp_path)], env={"AWS_ENDPOINT_URL": s3_server.endpoint_url})

    assert_bad_input(finished, f"error: training data not found: no .csv objects under {uri}")


def test_unreachable_s3_endpoint_is_reported(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{services.free_port()}"
    uri = "s3://mlplat-test-artifacts/datasets/abalone.csv"

    finished = run_training(["--data", uri, *job_dirs(tmp_path)], env={"AWS_ENDPOINT_URL": endpoint})

    assert_bad_input(
        finished,
        f'error: cannot read {uri}: Could not connect to the endpoint URL: "{endpoint}/mlplat-test-artifacts/'
        'datasets/abalone.csv"',
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--epochs", "0"], {}, "error: --epochs must be an integer >= 1 (got '0')"),
        (["--batch-size", "many"], {}, "error: --batch-size must be an integer >= 1 (got 'many')"),
        (["--lr", "-0.1"], {}, "error: --lr must be a number > 0 (got '-0.1')"),
        (
            ["--hidden", "64,x"],
            {},
            "error: --hidden must be a comma-separated list of layer widths >= 1, e.g. '64,32' (got '64,x')",
        ),
        ([], {"MLPLAT_DROPOUT": "1.5"}, "error: MLPLAT_DROPOUT must be a number >= 0 and < 1 (got '1.5')"),
        (["--promote-margin", "0.1"], {}, "error: unrecognized arguments: --promote-margin 0.1"),
        (["--epoch", "3"], {}, "error: unrecognized arguments: --epoch 3"),
        (
            ["--val-fraction", "0.45", "--test-fraction", "0.45"],
            {},
            "error: val_fraction + test_fraction must be < 0.9 so that a training split remains",
        ),
    ],
    ids=["epochs", "batch-size", "lr", "hidden", "dropout-env", "unknown-flag", "abbreviated-flag", "fractions"],
)
def test_bad_hyperparameter_is_reported_with_where_it_came_from(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    finished = run_training(["--data", str(ABALONE), *job_dirs(tmp_path), *args], env=env)

    assert_bad_input(finished, message)


def test_bad_value_in_hyperparameters_json_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text(json.dumps({"epochs": "5", "lr": "fast"}))

    finished = run_training(["--data", str(ABALONE), "--hyperparameters", str(path), *job_dirs(tmp_path)])

    assert_bad_input(finished, f"error: hyperparameter 'lr' in {path} must be a number > 0 (got 'fast')")


def test_unknown_key_in_hyperparameters_json_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text(json.dumps({"epoch": "5", "sagemaker_region": "us-east-1"}))

    finished = run_training(["--data", str(ABALONE), "--hyperparameters", str(path), *job_dirs(tmp_path)])

    assert finished.returncode == 2
    assert len(finished.stderr_lines) == 1
    assert finished.stderr_lines[0].startswith(f"error: unknown hyperparameter 'epoch' in {path} (known: batch_size, ")


def test_hyperparameters_file_that_is_not_json_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text("{epochs: 5}")

    finished = run_training(["--data", str(ABALONE), "--hyperparameters", str(path), *job_dirs(tmp_path)])

    assert_bad_input(
        finished,
        f"error: hyperparameters file {path} is not valid JSON (Expecting property name enclosed in double "
        "quotes at line 1)",
    )


def test_bad_input_creates_no_run_and_registers_nothing(
    tmp_path: Path, tracking_env: dict[str, str], mlflow_client: Any
) -> None:
    path = edited_abalone(tmp_path, line=3, column="Height", value="tall")

    finished = run_training(
        [
            "--data", str(path), *job_dirs(tmp_path),
            "--experiment-name", "bad-input-experiment",
            "--registered-model-name", "bad-input-model",
        ],
        env=tracking_env,
    )  # fmt: skip

    assert finished.returncode == 2
    assert mlflow_client.get_experiment_by_name("bad-input-experiment") is None
    assert mlflow_client.search_registered_models(filter_string="name = 'bad-input-model'") == []
