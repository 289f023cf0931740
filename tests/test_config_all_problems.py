"""Stack config validation reports every problem at once: field errors and the cross-field checks together."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from components.config import ConfigError, load_stack_file
from mlplat.cli import app

REPO = Path(__file__).resolve().parents[1]


def _prod_with(tmp_path: Path, network: dict[str, object], endpoint: dict[str, object]) -> Path:
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.prod.yaml").read_text())
    document["config"]["mlplat:network"].update(network)
    document["config"]["mlplat:endpoints"][0].update(endpoint)
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_a_field_error_and_a_cross_field_error_are_both_reported(tmp_path: Path) -> None:
    path = _prod_with(tmp_path, {"azCount": 9}, {"maxCapacity": 1})
    with pytest.raises(ConfigError) as caught:
        load_stack_file(path)
    assert caught.value.problems == [
        f"{path}: mlplat:network.azCount must be less than or equal to 3 (got 9)",
        f"{path}: mlplat:endpoints[0].maxCapacity must be >= minCapacity (got 1 < 2)",
    ]


def test_a_cross_field_check_on_a_key_that_failed_its_type_is_not_repeated(tmp_path: Path) -> None:
    path = _prod_with(tmp_path, {"azCount": 9}, {"maxCapacity": 0})
    with pytest.raises(ConfigError) as caught:
        load_stack_file(path)
    assert caught.value.problems == [
        f"{path}: mlplat:network.azCount must be less than or equal to 3 (got 9)",
        f"{path}: mlplat:endpoints[0].maxCapacity must be greater than or equal to 1 (got 0)",
    ]


def test_config_validate_prints_every_problem_with_its_key_path_and_exits_2(tmp_path: Path) -> None:
    path = _prod_with(tmp_path, {"azCount": 9}, {"maxCapacity": 1})
    result = CliRunner().invoke(app, ["config", "validate", "--stack-file", str(path)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: {path}: mlplat:network.azCount must be less than or equal to 3 (got 9)",
        f"error: {path}: mlplat:endpoints[0].maxCapacity must be >= minCapacity (got 1 < 2)",
    ]
