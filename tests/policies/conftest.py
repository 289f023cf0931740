"""Plans of the shipped stacks and of the bad fixture stack, synthesized once per test session."""

from collections.abc import Callable
from pathlib import Path

import pytest

from mlplat import synth

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BAD_STACK = FIXTURES / "Pulumi.bad.yaml"


@pytest.fixture(scope="session")
def plan_of() -> Callable[[str], synth.PlanRecord]:
    """`plan_of("prod")`: the synthesized plan of a shipped stack (or `"bad"`, the fixture), cached."""
    cache: dict[str, synth.PlanRecord] = {}

    def get(stack: str) -> synth.PlanRecord:
        if stack not in cache:
            path = BAD_STACK if stack == "bad" else None
            cache[stack] = synth.synthesize(path, stack) if path else synth.synthesize_stack(stack)
        return cache[stack]

    return get
