"""What every check shares: the resource views, the violation type, and readers over engine-style properties.

Checks read properties the way the policy engine hands them over: camelCase keys, nested mappings that may be the
engine's read-only proxies, and values that may be unknown during a preview. Reading an unknown value raises the
engine's `UnknownValueError`; a resource check lets it escape (the engine turns it into an advisory "can't run
during preview" note), while helpers that only ask "is this set?" treat an unknown value as set, because the
update will fill it in.
"""

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pulumi_policy.proxy import UnknownValueError

Props = Mapping[str, Any]
Config = Mapping[str, Any]

T = TypeVar("T")


@dataclass(frozen=True)
class StackResource:
    """One resource as a stack policy sees it (the engine's PolicyResource, or one entry of an offline plan)."""

    urn: str
    type: str
    name: str
    props: Props
    parent: str | None = None
    dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """URNs each property depends on (the engine's property dependencies; empty offline)."""
    provider_props: Props | None = None
    """Inputs of the provider that manages this resource, when known (carries `defaultTags`)."""
    id: str | None = None
    """The resource's ID when the plan knows it (offline mocks assign one)."""


@dataclass(frozen=True)
class Violation:
    """One finding of a stack policy, against one resource (`urn`) or the whole stack (`urn=None`)."""

    message: str
    urn: str | None = None


ResourceCheck = Callable[[str, Props, Config], list[str]]
"""`(resource_type, props, config) -> messages`: one message per problem, empty when the resource complies."""

StackCheck = Callable[[Sequence[StackResource], Config], list[Violation]]
"""`(resources, config) -> violations` over every resource of the stack."""


def known(read: Callable[[], T]) -> T | None:
    """The value `read()` returns, or None when it touches a value unknown during preview."""
    try:
        return read()
    except UnknownValueError:
        return None


def get(props: Any, *path: str | int) -> Any:
    """`props[a][b]...`, or None when a step is missing or of the wrong shape (unknown values still raise)."""
    value = props
    for step in path:
        if isinstance(step, int):
            if not is_list(value) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping) or not has_key(value, step):
                return None
            value = value[step]
    return value


def peek(props: Any, *path: str | int) -> Any:
    """`get`, but None when the value (or a step to it) is unknown during preview; for matching and stack checks."""
    try:
        return get(props, *path)
    except UnknownValueError:
        return None


def is_unknown(props: Any, *path: str | int) -> bool:
    """Whether the value (or a step to it) is unknown during preview."""
    try:
        get(props, *path)
    except UnknownValueError:
        return True
    return False


def is_true(props: Any, *path: str | int) -> bool | None:
    """Whether a boolean setting is on; None when it is unknown during preview."""
    try:
        return truthy(get(props, *path))
    except UnknownValueError:
        return None


def has_key(mapping: Mapping[str, Any], key: str) -> bool:
    """Whether `key` is present, without reading its value (so an unknown value does not raise)."""
    return any(k == key for k in mapping)


def is_set(props: Any, *path: str | int) -> bool:
    """Whether a value is present and not empty; an unknown value counts as set (the update will know it)."""
    try:
        value = get(props, *path)
    except UnknownValueError:
        return True
    return value is not None and value != "" and not (is_list(value) and len(value) == 0)


def is_list(value: Any) -> bool:
    """A JSON array (or the engine's proxy of one), never a string."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def as_list(value: Any) -> list[Any]:
    """None -> [], a scalar -> [scalar], a sequence -> list."""
    if value is None:
        return []
    if is_list(value):
        return list(value)
    return [value]


def truthy(value: Any) -> bool:
    """True for `true` and for the string "true" (pulumi-aws types some booleans as strings)."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def as_number(value: Any) -> float | None:
    """A number from a number or numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def document(value: Any) -> Mapping[str, Any] | None:
    """An IAM-style policy document from a JSON string or a mapping; None when absent or not a document."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return value if isinstance(value, Mapping) else None


def statements(value: Any) -> list[Mapping[str, Any]]:
    """The statements of a policy document (a JSON string or a mapping); `Statement` may be one object or a list."""
    doc = document(value)
    if doc is None:
        return []
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, Mapping)]


def statement_label(index: int, statement: Mapping[str, Any]) -> str:
    """`statement 'Sid'` or `statement 2` (1-based), as messages name them."""
    sid = statement.get("Sid")
    return f"statement {sid!r}" if isinstance(sid, str) and sid else f"statement {index + 1}"


def actions(statement: Mapping[str, Any], key: str = "Action") -> list[str]:
    """The statement's actions (or NotActions), as strings."""
    return [str(a) for a in as_list(statement.get(key))]


def principals(statement: Mapping[str, Any]) -> dict[str, list[str]]:
    """`{"AWS": [...], "Service": [...], "Federated": [...]}`; `Principal: "*"` becomes `{"*": ["*"]}`."""
    principal = statement.get("Principal")
    if principal is None:
        return {}
    if isinstance(principal, str):
        return {"*": ["*"]} if principal == "*" else {"AWS": [principal]}
    if isinstance(principal, Mapping):
        return {str(kind): [str(v) for v in as_list(values)] for kind, values in principal.items()}
    return {}


def is_allow(statement: Mapping[str, Any]) -> bool:
    """An Allow statement (Effect defaults to nothing; only an explicit Allow grants)."""
    return statement.get("Effect") == "Allow"


def of_type(resources: Sequence[StackResource], *types: str) -> Iterator[StackResource]:
    """The resources whose type is one of `types`, in plan order."""
    return (r for r in resources if r.type in types)


def refers_to(resource: StackResource, key: str, target: StackResource, siblings: Sequence[StackResource]) -> bool:
    """Whether `resource.props[key]` points at `target`.

    The engine says so through property dependencies. Offline (and for values already known) the value is
    compared with the target's ID, physical name and logical name. When neither can tell (a preview of a new
    target, whose ID is unknown, or a mock ID the plan did not record), a resource that shares its parent with
    exactly one resource of the target's type is taken to belong to it: every mlplat component builds a bucket
    or a VPC next to its companions.
    """
    depends_on = resource.dependencies.get(key)
    if depends_on:
        return target.urn in depends_on
    value = peek(resource.props, key)
    if isinstance(value, str) and value:
        if value in _names(target):
            return True
        if any(value in _names(other) for other in siblings if other.type == target.type):
            return False
    same_type = [s for s in siblings if s.type == target.type and s.parent == resource.parent]
    return resource.parent is not None and len(same_type) == 1 and same_type[0].urn == target.urn


def _names(resource: StackResource) -> set[str]:
    names = {resource.name}
    if resource.id:
        names.add(resource.id)
    physical = peek(resource.props, "bucket") or peek(resource.props, "name")
    if isinstance(physical, str) and physical:
        names.add(physical)
    return names


def companions(resources: Sequence[StackResource], target: StackResource, key: str, *types: str) -> list[StackResource]:
    """Resources of `types` whose `key` property refers to `target` (see `refers_to`)."""
    return [r for r in of_type(resources, *types) if refers_to(r, key, target, resources)]
