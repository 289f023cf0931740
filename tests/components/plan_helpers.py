"""Helpers for reading plan records in the component tests."""

import json
from typing import Any

from mlplat import synth

COMPONENT_TAG = "mlplat:component"


def document(resource: synth.ResourceRecord, key: str = "policy") -> dict[str, Any]:
    """A JSON-document input (a policy) parsed."""
    parsed: dict[str, Any] = json.loads(resource.inputs[key])
    return parsed


def statements(resource: synth.ResourceRecord, key: str = "policy") -> list[dict[str, Any]]:
    """The statements of a policy-document input, each as a dict."""
    found = document(resource, key)["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    """An IAM field that may be a string or a list, as a list."""
    return value if isinstance(value, list) else [value]


def parent_type(resource: synth.ResourceRecord) -> str:
    """The parent's type token as the URN carries it (`<parent type>$<type>`)."""
    qualified = resource.urn.split("::")[2]
    return qualified.split("$")[-2]


def owned(plan: synth.PlanRecord, type_token: str, component_type: str) -> list[synth.ResourceRecord]:
    """Resources of a type whose parent is a component of `component_type` (other components may hold the same type)."""
    return [r for r in plan.of_type(type_token) if parent_type(r) == component_type]
