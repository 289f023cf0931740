"""One problem with a setting, worded once: the stack file's config layer and a component's own constructor report it
with the same message, under the key path each caller knows.

A component module exposes `problems(prefix, ...)`. The config layer calls it with the stack file's key prefix
(`mlplat:gpuPools[0]`), so a problem reads `mlplat:gpuPools[0].gpuLimit must be greater than or equal to 1 (got 0)`;
the constructor calls it with an empty prefix and raises `InvalidArgs`, so a program that builds the component itself
reads `GpuNodePool gpu: gpuLimit must be greater than or equal to 1 (got 0)`. Field constraints the config's
types also enforce are worded as pydantic words them, so both layers say the same thing.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """What is wrong (`message`) with the value at `key`."""

    key: str
    message: str

    def __str__(self) -> str:
        # A message may qualify the key's value first (`minCapacity: 0 needs ...`): no space before its colon.
        if not self.key:
            return self.message
        return f"{self.key}{self.message}" if self.message.startswith(":") else f"{self.key} {self.message}"


def at(prefix: str, path: str) -> str:
    """`path` below `prefix`: (`mlplat:cluster`, `version`) -> `mlplat:cluster.version`; `[0]` attaches directly."""
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def at_least(key: str, value: float, minimum: float) -> list[Problem]:
    """`value` below `minimum`, in pydantic's words for `Field(ge=minimum)`."""
    return [] if value >= minimum else [Problem(key, f"must be greater than or equal to {minimum} (got {value!r})")]


def one_of(key: str, value: Any, choices: Sequence[Any]) -> list[Problem]:
    """`value` outside `choices`, in pydantic's words for a `Literal`."""
    if value in choices:
        return []
    quoted = [repr(c) for c in choices]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return [Problem(key, f"must be {listed} (got {value!r})")]


class InvalidArgs(ValueError):
    """A component's arguments that cannot be built, raised before any resource; `problems` holds each one."""

    def __init__(self, component: str, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{component}: " + "; ".join(str(p) for p in problems))


def refuse(component: str, problems: Sequence[Problem]) -> None:
    """Raise `InvalidArgs` naming `component` (its type and name) when there is any problem."""
    if problems:
        raise InvalidArgs(component, problems)
