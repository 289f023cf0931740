"""Policy test helpers: run one registry policy as the engine would; edit resources one field at a time."""

import copy
from typing import Any

from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policies import registry
from policies.base import StackResource, Violation

UNKNOWN = UNKNOWN_STRING_VALUE
STACK = "urn:pulumi:test::mlplat::"
ROOT = f"{STACK}mlplat:platform:MlPlatform::mlplat-test"


def urn(type_: str, name: str, parent_type: str = "mlplat:platform:MlPlatform") -> str:
    """A URN under a parent of `parent_type`, as the engine writes it."""
    return f"{STACK}{parent_type}${type_}::{name}"


def run(policy: str, type_: str, props: dict[str, Any], **config: Any) -> list[str]:
    """Messages of resource policy `policy` for one resource, props proxied like the engine proxies them."""
    spec = registry.BY_NAME[policy]
    assert spec.check is not None, f"{policy} is a stack policy"
    assert type_ in spec.resource_types, f"{policy} does not apply to {type_}"
    return spec.check(type_, unknown_checking_proxy(copy.deepcopy(props)), registry.effective_config(spec, config))


def run_stack(policy: str, resources: list[StackResource], **config: Any) -> list[Violation]:
    """Violations of stack policy `policy` over `resources`."""
    spec = registry.BY_NAME[policy]
    assert spec.stack_check is not None, f"{policy} is a resource policy"
    return spec.stack_check(resources, registry.effective_config(spec, config))


def resource(
    type_: str,
    name: str,
    props: dict[str, Any],
    parent: str | None = ROOT,
    id: str | None = None,
    dependencies: dict[str, list[str]] | None = None,
    provider: dict[str, Any] | None = None,
) -> StackResource:
    """A stack resource with proxied props, as a stack policy receives it."""
    return StackResource(
        urn=urn(type_, name),
        type=type_,
        name=name,
        props=unknown_checking_proxy(copy.deepcopy(props)),
        parent=parent,
        dependencies=dependencies or {},
        provider_props=unknown_checking_proxy(copy.deepcopy(provider)) if provider is not None else None,
        id=id,
    )


def _walk(doc: Any, path: str) -> tuple[Any, str | int]:
    steps: list[str | int] = [int(p) if p.isdigit() else p for p in path.split(".")]
    for step in steps[:-1]:
        doc = doc[step]
    return doc, steps[-1]


def changed(props: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `props` with the dotted `path` (list indices as numbers) set to `value`."""
    result = copy.deepcopy(props)
    holder, last = _walk(result, path)
    holder[last] = value
    return result


def removed(props: dict[str, Any], path: str) -> dict[str, Any]:
    """A deep copy of `props` without the dotted `path`."""
    result = copy.deepcopy(props)
    holder, last = _walk(result, path)
    del holder[last]
    return result
