"""`mlplat up --local --entry-point --source-dir`: a user's project through the whole local loop, on the session's
platform (its store and tracking server are reused; serving is restarted on the user's model, then given back)."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_support import mlplat

from mlplat.local.platform import LocalPlatform, UpOptions

pytestmark = pytest.mark.timeout(600)
REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"
EPOCHS = 3  # the loop's wiring is tested here; the example's own test checks that it converges


def up_digits(platform: Any, *more: str) -> Any:
    return mlplat(
        "up", "--local", "--home", str(platform.home), "--port", str(platform.port), "--json",
        "--entry-point", "train.py", "--source-dir", str(DIGITS), "--epochs", str(EPOCHS), *more,
    )  # fmt: skip


@pytest.fixture(scope="module")
def digits_up(local_platform: Any) -> Iterator[dict[str, Any]]:
    """One `up` on the digits example; afterwards the session platform serves the stack's model again."""
    local_platform.ensure_up()
    result = up_digits(local_platform)
    assert result.exit_code == 0, result.stderr
    yield json.loads(result.stdout)
    # The stack's champion exists already: nothing trains, serving is restarted on it.
    LocalPlatform(local_platform.home).up(UpOptions(port=local_platform.port))


def test_the_users_script_trains_through_the_runtime_and_its_model_is_registered_as_champion(
    digits_up: dict[str, Any], local_platform: Any
) -> None:
    from mlflow import MlflowClient

    model = digits_up["model"]
    assert (digits_up["trained"], model["name"], model["uri"]) == (True, "digits", "models:/digits@champion")
    run = MlflowClient(tracking_uri=digits_up["urls"]["mlflow"]).get_run(model["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlplat.mode"] == "script"
    assert run.data.tags["mlplat.promotion_decision"] == "champion"
    assert sorted(run.data.metrics) == ["test_accuracy", "train_loss"]


def test_serving_is_restarted_on_the_users_model_and_the_store_and_tracking_are_reused(
    digits_up: dict[str, Any],
) -> None:
    assert (digits_up["started"], digits_up["reused"]) == (["serving"], ["s3", "mlflow"])


def test_the_first_prediction_uses_the_models_serving_input_example(digits_up: dict[str, Any]) -> None:
    prediction = digits_up["prediction"]
    assert prediction["url"] == f"{digits_up['urls']['serving']}/invocations"
    assert prediction["input"] == {"example": "serving_input_example.json"}
    assert prediction["actual"] is None
    assert len(prediction["prediction"]) == 10  # the ten digits' logits of the example's first image


def test_up_again_on_the_unchanged_project_reuses_its_champion(digits_up: dict[str, Any], local_platform: Any) -> None:
    again = up_digits(local_platform)

    assert again.exit_code == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["trained"], report["model"]["version"]) == (False, digits_up["model"]["version"])
    assert report["started"] == []


@pytest.mark.parametrize("args", [["--entry-point", "train.py"], ["--source-dir", str(DIGITS)]])
def test_entry_point_and_source_dir_go_together(args: list[str], tmp_path: Path) -> None:
    result = mlplat("up", "--local", "--home", str(tmp_path / "home"), *args)

    assert (result.exit_code, result.stderr) == (2, "error: --entry-point and --source-dir go together\n")


def test_a_missing_entry_point_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = mlplat(
        "up", "--local", "--home", str(tmp_path / "home"), "--entry-point", "nope.py", "--source-dir", str(DIGITS)
    )

    assert (result.exit_code, result.stderr) == (2, f"error: --entry-point nope.py does not exist in {DIGITS}\n")
    assert not (tmp_path / "home").exists()


def test_the_report_names_the_example_the_prediction_was_made_for_and_the_scripts_metrics(
    digits_up: dict[str, Any], local_platform: Any
) -> None:
    result = mlplat(
        "up", "--local", "--home", str(local_platform.home), "--port", str(local_platform.port),
        "--entry-point", "train.py", "--source-dir", str(DIGITS),
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert re.fullmatch(
        r"prediction: \[(-?[0-9]+\.[0-9]{3}, ){9}-?[0-9]+\.[0-9]{3}\] for the model's serving_input_example\.json",
        first,
    ), first
    assert re.search(r"│ metrics +│ test_accuracy [0-9.]+, train_loss [0-9.]+ +│", result.stdout), result.stdout
    assert "4/6 training job: digits v" in result.stderr and "is already champion" in result.stderr
