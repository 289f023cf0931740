"""Checks on tags: every taggable AWS resource carries the stack tags that budgets and cost reports filter on."""

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from policies.base import Config, StackResource, Violation, get, peek

# Every pulumi-aws resource type whose `tags` input is a string map, scanned from the SDK's source
# (tests/policies/test_tagging.py regenerates it and fails when the installed SDK disagrees).
TAGGABLE_TYPES_FILE = Path(__file__).resolve().parent / "data" / "aws_taggable_types.json"


@cache
def taggable_types() -> frozenset[str]:
    """The pulumi-aws type tokens that take a `tags` map."""
    return frozenset(json.loads(TAGGABLE_TYPES_FILE.read_text()))


def _tags(resource: StackResource) -> dict[str, Any] | None:
    """Tags the resource will carry (its own, `tagsAll`, the provider's defaults); None when not known yet."""
    merged: dict[str, Any] = {}
    sources = [
        get(resource.provider_props, "defaultTags", "tags"),
        get(resource.props, "tagsAll"),
        get(resource.props, "tags"),
    ]
    for source in sources:
        if source is None:
            continue
        if not isinstance(source, Mapping):
            return None
        merged.update({str(k): v for k, v in source.items()})
    return merged


def _known_tags(resource: StackResource) -> dict[str, Any] | None:
    try:
        return _tags(resource)
    except UnknownValueError:
        return None


def stack_tags(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every taggable AWS resource carries the required tags, with the stack's values where the config names them."""
    required = [str(t) for t in config["requiredTags"]]
    expected: Mapping[str, Any] = config.get("expectedValues") or {}
    found: list[Violation] = []
    for resource in resources:
        if resource.type not in taggable_types():
            continue
        tags = _known_tags(resource)
        if tags is None:
            continue
        missing = [key for key in required if key not in tags]
        if missing:
            found.append(
                Violation(
                    f"missing tags {', '.join(missing)}; set them once for the whole stack (the platform's tag "
                    "transform or the provider's defaultTags), not per resource.",
                    resource.urn,
                )
            )
        for key, value in expected.items():
            actual = peek(tags, key)
            if key in tags and actual is not None and str(actual) != str(value):
                found.append(
                    Violation(
                        f"tag {key} is {actual!r}, expected {str(value)!r}; this stack's tags come from its stack "
                        "file (mlplat:environment, mlplat:team, mlplat:costCenter).",
                        resource.urn,
                    )
                )
    return found
