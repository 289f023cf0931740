"""Stack config validation as `mlplat plan` meets it: every problem reported exactly, before anything runs."""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import config as stack_config
from components.config import ConfigError, StackConfig, load_from_pulumi, load_stack_file
from mlplat import synth
from mlplat.config_cmd import SCHEMA_PATH, schema_text

REPO = Path(__file__).resolve().parents[1]
DEV = yaml.safe_load((REPO / "stacks" / "Pulumi.dev.yaml").read_text())

Mutation = Callable[[dict[str, Any]], Any]


def _set(section: str, **values: Any) -> Mutation:
    return lambda cfg: cfg[f"mlplat:{section}"].update(values)


def _endpoint(**values: Any) -> Mutation:
    return lambda cfg: cfg["mlplat:endpoints"][0].update(values)


# (id, how the dev stack is broken, the exact problems after "<file>: ")
BAD_CONFIGS: list[tuple[str, Mutation | str, list[str]]] = [
    ("missing-key", lambda cfg: cfg.pop("mlplat:budget"), ["mlplat:budget is required"]),
    ("missing-region", lambda cfg: cfg.pop("aws:region"), ["aws:region is required"]),
    (
        "wrong-type",
        _set("network", azCount="three"),
        ["mlplat:network.azCount must be a valid integer, unable to parse string as an integer (got 'three')"],
    ),
    (
        "min-over-max",
        _endpoint(minCapacity=3, maxCapacity=2),
        ["mlplat:endpoints[0].maxCapacity must be >= minCapacity (got 2 < 3)"],
    ),
    (
        "unknown-tracking-size",
        _set("tracking", size="Huge"),
        ["mlplat:tracking.size must be 'Small', 'Medium' or 'Large' (got 'Huge')"],
    ),
    ("negative-budget", _set("budget", limitUsd=-5), ["mlplat:budget.limitUsd must be greater than 0 (got -5)"]),
    (
        "threshold-over-100",
        _set("budget", thresholds=[50, 120]),
        ["mlplat:budget.thresholds[1] must be less than or equal to 100 (got 120)"],
    ),
    (
        "thresholds-not-increasing",
        _set("budget", thresholds=[80, 50]),
        ["mlplat:budget.thresholds must be strictly increasing (got [80.0, 50.0])"],
    ),
    (
        "duplicate-endpoint-names",
        lambda cfg: cfg["mlplat:endpoints"].append(dict(cfg["mlplat:endpoints"][0])),
        ["mlplat:endpoints has duplicate name 'abalone-dev'"],
    ),
    ("unknown-key", lambda cfg: cfg.update({"mlplat:colour": "blue"}), ["mlplat:colour is not a known key"]),
    ("unknown-nested-key", _set("network", natGateways=2), ["mlplat:network.natGateways is not a known key"]),
    ("bad-yaml", "config:\n  mlplat:environment: [dev\n", ["not valid YAML (while parsing a flow sequence)"]),
    ("not-a-mapping", "- dev\n- prod\n", ["must be a YAML mapping with a config: block"]),
    (
        "unknown-nat-mode",
        _set("network", nat="double"),
        ["mlplat:network.nat must be 'none', 'single' or 'per-az' (got 'double')"],
    ),
    (
        "unknown-environment",
        lambda cfg: cfg.update({"mlplat:environment": "qa"}),
        ["mlplat:environment must be 'dev', 'staging' or 'prod' (got 'qa')"],
    ),
    (
        "checkpoints-expire-before-tiering",
        _set("artifacts", checkpointExpirationDays=30),
        ["mlplat:artifacts.checkpointExpirationDays must be > checkpointTransitionDays (got 30 <= 30)"],
    ),
    (
        "unsupported-log-retention",
        _set("network", flowLogRetentionDays=10),
        [
            "mlplat:network.flowLogRetentionDays must be 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, "
            "731, 1827 or 3653 (got 10)"
        ],
    ),
    (
        "several-problems-at-once",
        lambda cfg: (_set("budget", limitUsd=0)(cfg), _set("network", azCount=5)(cfg)),
        [
            "mlplat:network.azCount must be less than or equal to 3 (got 5)",
            "mlplat:budget.limitUsd must be greater than 0 (got 0)",
        ],
    ),
]


def write_stack(tmp_path: Path, broken: Mutation | str) -> Path:
    """The dev stack file with one thing broken, in tmp_path."""
    path = tmp_path / "Pulumi.dev.yaml"
    if isinstance(broken, str):
        path.write_text(broken)
    else:
        document = copy.deepcopy(DEV)
        broken(document["config"])
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def no_program(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make running the Pulumi program fail loudly; returns the stacks it was asked to run."""
    started: list[str] = []

    def refuse(stack: str, *args: Any, **kwargs: Any) -> None:
        started.append(stack)
        raise AssertionError("the program ran")

    monkeypatch.setattr(synth, "_in_fresh_thread", refuse)
    return started


@pytest.mark.parametrize(
    ("broken", "problems"), [(b, p) for _, b, p in BAD_CONFIGS], ids=[i for i, _, _ in BAD_CONFIGS]
)
def test_a_bad_stack_file_is_rejected_with_one_exact_line_per_problem(
    tmp_path: Path, broken: Mutation | str, problems: list[str]
) -> None:
    path = write_stack(tmp_path, broken)
    with pytest.raises(ConfigError) as raised:
        load_stack_file(path)
    assert raised.value.problems == [f"{path}: {p}" for p in problems]


@pytest.mark.parametrize("broken", [b for _, b, _ in BAD_CONFIGS], ids=[i for i, _, _ in BAD_CONFIGS])
def test_a_bad_stack_file_never_reaches_the_program(
    tmp_path: Path, no_program: list[str], broken: Mutation | str
) -> None:
    with pytest.raises(ConfigError):
        synth.synthesize(write_stack(tmp_path, broken), "dev")
    assert no_program == []


def test_a_missing_stack_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_stack_file(tmp_path / "Pulumi.nope.yaml")
    assert raised.value.problems == [f"{tmp_path / 'Pulumi.nope.yaml'}: no such stack file"]


def test_shipped_stack_files_are_named_relative_to_the_project(tmp_path: Path) -> None:
    assert stack_config.display_path(REPO / "stacks" / "Pulumi.prod.yaml") == "stacks/Pulumi.prod.yaml"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_shipped_stack_is_valid(stack: str) -> None:
    assert stack_config.load_stack(stack).environment == stack


def test_the_program_reads_the_same_config_the_offline_tools_read() -> None:
    engine_config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in DEV["config"].items()}
    loaded: list[StackConfig] = []
    synth.run(lambda: loaded.append(load_from_pulumi()), stack="dev", config=engine_config)
    assert loaded == [stack_config.load_stack("dev")]


def test_a_cost_center_that_looks_like_a_number_stays_text() -> None:
    engine_config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in DEV["config"].items()}
    engine_config["mlplat:costCenter"] = "4100"
    loaded: list[StackConfig] = []
    synth.run(lambda: loaded.append(load_from_pulumi()), stack="dev", config=engine_config)
    assert loaded[0].cost_center == "4100"


def test_the_program_rejects_bad_config_before_registering_anything() -> None:
    engine_config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in DEV["config"].items()}
    engine_config["mlplat:budget"] = json.dumps({"limitUsd": -1, "emails": ["a@example.com"]})
    with pytest.raises(ConfigError) as raised:
        synth.run(lambda: load_from_pulumi() and None, stack="dev", config=engine_config)
    assert raised.value.problems == ["stacks/Pulumi.dev.yaml: mlplat:budget.limitUsd must be greater than 0 (got -1)"]


def test_the_committed_config_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text() == schema_text()


def test_the_config_schema_describes_every_top_level_key_by_its_stack_file_name() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert set(schema["properties"]) == {f.alias or n for n, f in StackConfig.model_fields.items()}
    assert {"costCenter", "gpuPools", "environment", "budget"} <= set(schema["properties"])
    assert set(schema["required"]) == {"environment", "region", "team", "costCenter", "budget"}


def test_pulumi_yaml_points_at_the_config_schema() -> None:
    assert "stacks/mlplat.schema.json" in (REPO / "Pulumi.yaml").read_text()
