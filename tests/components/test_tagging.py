"""Tags set once: which types are taggable, and how the stack and component transforms merge."""

import json
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from components import tagging
from mlplat import synth

TAGGABLE_TYPES = Path(__file__).resolve().parents[2] / "policies" / "data" / "aws_taggable_types.json"


@pytest.mark.parametrize(
    ("type_token", "taggable"),
    [
        ("aws:s3/bucket:Bucket", True),
        ("aws:sagemaker/mlflowApp:MlflowApp", True),
        ("aws:budgets/budget:Budget", True),
        ("aws:s3/bucketPolicy:BucketPolicy", False),
        ("aws:iam/rolePolicy:RolePolicy", False),
        ("aws:autoscaling/group:Group", False),
        ("kubernetes:core/v1:Namespace", False),
        ("mlplat:network:Network", False),
    ],
)
def test_taggable_means_the_sdk_class_takes_a_tags_map(type_token: str, taggable: bool) -> None:
    assert tagging.is_taggable(type_token) is taggable


def test_taggable_agrees_with_the_policy_packs_list_for_every_type_the_platform_uses() -> None:
    listed = set(json.loads(TAGGABLE_TYPES.read_text()))
    used = {
        r.type
        for stack in ("dev", "prod")
        for r in synth.synthesize_stack(stack).resources
        if r.type.startswith("aws:")
    }
    assert {t for t in used if tagging.is_taggable(t)} == used & listed


def _tagged_bucket(bucket_tags: dict[str, str] | None, component: str | None) -> dict[str, str]:
    """Tags of a bucket two components down: the outer sets the stack tags, the inner maybe a component tag."""

    def program() -> None:
        outer = pulumi.ComponentResource(
            "mlplat:test:Outer", "outer", None, pulumi.ResourceOptions(transforms=[tagging.stack_tags({"env": "dev"})])
        )
        inner_opts = pulumi.ResourceOptions(parent=outer)
        if component is not None:
            inner_opts = tagging.with_component_tag(inner_opts, component)
        inner = pulumi.ComponentResource("mlplat:test:Inner", "inner", None, inner_opts)
        aws.s3.Bucket("bucket", tags=bucket_tags, opts=pulumi.ResourceOptions(parent=inner))

    (bucket,) = synth.run(program).of_type("aws:s3/bucket:Bucket")
    tags: dict[str, str] = bucket.inputs["tags"]
    return tags


def test_stack_tags_reach_resources_nested_under_the_component_that_sets_them() -> None:
    assert _tagged_bucket(None, None) == {"env": "dev"}


def test_stack_tags_win_over_a_resources_own_value() -> None:
    assert _tagged_bucket({"env": "prod", "owner": "me"}, None) == {"env": "dev", "owner": "me"}


def test_the_component_tag_names_the_enclosing_component() -> None:
    assert _tagged_bucket(None, "artifacts") == {"env": "dev", tagging.COMPONENT_TAG: "artifacts"}


def test_a_resource_may_name_its_own_component() -> None:
    tags = _tagged_bucket({tagging.COMPONENT_TAG: "special"}, "artifacts")
    assert tags[tagging.COMPONENT_TAG] == "special"
