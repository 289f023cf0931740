"""The README's example: a program composing Network, ArtifactStore and TrackingServer without MlPlatform."""

import importlib.util
from pathlib import Path

import pytest

from mlplat import synth

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "components_only" / "__main__.py"


@pytest.fixture(scope="module")
def record() -> synth.PlanRecord:
    spec = importlib.util.spec_from_file_location("example_components_only", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return synth.run(module.program, stack="team", config={"aws:region": "us-east-1"})


def test_the_example_builds_exactly_its_three_components_at_the_top_level(record: synth.PlanRecord) -> None:
    top = sorted((r.type, r.name) for r in record.children(record.stack_urn))

    assert top == [
        ("mlplat:artifacts:ArtifactStore", "team-store"),
        ("mlplat:network:Network", "team-net"),
        ("mlplat:tracking:TrackingServer", "team-tracking"),
    ]
    assert not [r for r in record.resources if r.type == "mlplat:platform:MlPlatform"]


def test_the_tracking_server_stores_artifacts_under_the_buckets_mlflow_prefix(record: synth.PlanRecord) -> None:
    tracking = record.descendants(record.get("mlplat:tracking:TrackingServer", "team-tracking").urn)
    servers = [r for r in tracking if r.type.startswith("aws:sagemaker/mlflow")]

    assert len(servers) == 1
    assert servers[0].inputs["artifactStoreUri"] == f"s3://{record.outputs['teamBucket']}/mlflow"


def test_the_example_exports_what_it_built(record: synth.PlanRecord) -> None:
    assert sorted(record.outputs) == ["teamBucket", "teamTracking", "teamVpc"]
    assert record.outputs["teamVpc"].startswith("vpc-")
