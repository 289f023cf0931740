"""Scale-to-zero and serverless endpoints in stack config: each refused where SageMaker does not offer it, by key."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError, validate

REPO = Path(__file__).resolve().parents[1]
DEV = yaml.safe_load((REPO / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
SOURCE = "stacks/Pulumi.dev.yaml"


def _raw(region: str = "us-east-1", **endpoint: Any) -> dict[str, Any]:
    config = copy.deepcopy(DEV)
    config["mlplat:endpoints"][0].update(endpoint)
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("mlplat:")}
    raw["region"] = region
    return raw


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate(raw, SOURCE)
    return caught.value.problems


def test_dev_scales_its_endpoint_to_zero_by_default() -> None:
    assert validate(_raw(), SOURCE).endpoints[0].min_capacity == 0


def test_scale_to_zero_on_an_instance_type_without_inference_components_names_the_key() -> None:
    assert _problems(_raw(instanceType="ml.t2.medium")) == [
        f"{SOURCE}: mlplat:endpoints[0].minCapacity: 0 needs inference components, which ml.t2.medium does not "
        "support (families as of 2026-10-01: ml.c5, ml.m5, ml.g5, ...) (got instanceType 'ml.t2.medium')"
    ]


def test_scale_to_zero_in_a_region_without_inference_components_names_the_key() -> None:
    assert _problems(_raw(region="us-gov-west-1")) == [
        f"{SOURCE}: mlplat:endpoints[0].minCapacity: 0 needs inference components, which us-gov-west-1 does not "
        "offer (regions as of 2026-10-01)"
    ]


def test_an_instance_endpoint_on_ml_t2_stays_valid() -> None:
    assert validate(_raw(instanceType="ml.t2.medium", minCapacity=1), SOURCE).endpoints[0].min_capacity == 1


def test_serverless_memory_must_be_a_whole_number_of_gib_up_to_six() -> None:
    (problem,) = _problems(
        _raw(minCapacity=1, dataCapturePercent=0, serverless={"memoryMiB": 1500, "maxConcurrency": 2})
    )
    assert problem.startswith(
        f"{SOURCE}: mlplat:endpoints[0].serverless.memoryMiB must be 1024, 2048, 3072, 4096, 5120 or 6144"
    )


def test_serverless_concurrency_is_bounded_by_sagemakers_limit() -> None:
    assert _problems(
        _raw(minCapacity=1, dataCapturePercent=0, serverless={"memoryMiB": 1024, "maxConcurrency": 201})
    ) == [f"{SOURCE}: mlplat:endpoints[0].serverless.maxConcurrency must be less than or equal to 200 (got 201)"]


def test_serverless_and_scale_to_zero_are_exclusive() -> None:
    assert _problems(_raw(dataCapturePercent=0, serverless={"memoryMiB": 1024, "maxConcurrency": 1})) == [
        f"{SOURCE}: mlplat:endpoints[0].serverless and minCapacity: 0 are exclusive (serverless scales to zero itself)"
    ]


def test_serverless_cannot_capture_data() -> None:
    assert _problems(_raw(minCapacity=1, serverless={"memoryMiB": 1024, "maxConcurrency": 1})) == [
        f"{SOURCE}: mlplat:endpoints[0].dataCapturePercent must be 0 on a serverless endpoint (serverless inference "
        "has no data capture) (got 100)"
    ]
