"""Stack config values checked against botocore's AWS API models before any resource is registered."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from components import aws_enums
from components.config import ConfigError, load_stack, validate
from mlplat import synth
from mlplat.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _stack(stack: str, edit: dict[str, Any], tmp_path: Path) -> Path:
    document = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    changed = copy.deepcopy(document)
    for key, value in edit.items():
        holder: Any = changed["config"]
        *steps, last = key
        for step in steps:
            holder = holder[step]
        holder[last] = value
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(changed))
    return path


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_shipped_stack_uses_only_values_aws_enumerates(stack: str) -> None:
    assert aws_enums.problems(load_stack(stack)) == []


def test_a_misspelled_endpoint_instance_type_fails_plan_with_exit_2_before_any_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _stack("dev", {("mlplat:endpoints", 0, "instanceType"): "ml.c5.xlarg"}, tmp_path)

    def no_program(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the program ran: a resource could have been registered")

    monkeypatch.setattr(synth, "run", no_program)
    result = runner.invoke(app, ["plan", "--stack", "dev", "--stack-file", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{path}: mlplat:endpoints[0].instanceType is not a SageMaker endpoint instance type "
        "(got 'ml.c5.xlarg'; did you mean 'ml.c5.xlarge'?)"
    ]


def test_a_tracking_server_size_aws_does_not_have_fails_plan_with_exit_2(tmp_path: Path) -> None:
    path = _stack("prod", {("mlplat:tracking", "size"): "Huge"}, tmp_path)
    result = runner.invoke(app, ["plan", "--stack", "prod", "--stack-file", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{path}: mlplat:tracking.size must be 'Small', 'Medium' or 'Large' (got 'Huge')"
    ]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (("mlplat:gpuPools", 0, "instanceTypes", 0), "g5.12xlarg",
         "mlplat:gpuPools[0].instanceTypes[0] is not an EC2 instance type (got 'g5.12xlarg'; did you mean "
         "'g5.12xlarge'?)"),
        (("mlplat:cluster", "systemNodes", "instanceType"), "m6i.xxlarge",
         "mlplat:cluster.systemNodes.instanceType is not an EC2 instance type (got 'm6i.xxlarge'; did you mean "
         "'m6i.xlarge'?)"),
        (("mlplat:gpuPools", 0, "instanceFamilies"), ["g6ee"],
         "mlplat:gpuPools[0].instanceFamilies[0] is not an EC2 instance family (got 'g6ee'; did you mean 'g6e'?)"),
        (("mlplat:tracking", "mlflowVersion"), "2.99",
         "mlplat:tracking.mlflowVersion is not an MLflow version SageMaker runs (components/catalog.py, as of "
         "2026-12-01) (got '2.99')"),
        (("aws:region",), "us-east-7",
         "aws:region is not a region where SageMaker runs (botocore endpoints) (got 'us-east-7'; did you mean "
         "'us-east-2'?)"),
    ],
)  # fmt: skip
def test_each_enumerated_key_is_named_when_aws_does_not_know_its_value(
    key: tuple[Any, ...], value: Any, message: str
) -> None:
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.prod.yaml").read_text())["config"]
    raw = {k.partition(":")[2] if k.startswith("mlplat:") else "region": v for k, v in document.items()}
    top = key[0].partition(":")[2] if key[0].startswith("mlplat:") else "region"
    holder: Any = raw
    path = (top, *key[1:])
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    with pytest.raises(ConfigError) as raised:
        validate(raw, "prod")
    assert f"prod: {message}" in raised.value.problems
