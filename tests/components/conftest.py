"""Each shipped stack synthesized once per session (the real program under mocks), shared by the component tests."""

import pytest

from mlplat import synth

STACKS = ("dev", "staging", "prod")


class Plans:
    """Synthesizes a shipped stack the first time a test asks for it, then hands out the same record."""

    def __init__(self) -> None:
        self._records: dict[str, synth.PlanRecord] = {}

    def __getitem__(self, stack: str) -> synth.PlanRecord:
        if stack not in self._records:
            self._records[stack] = synth.synthesize_stack(stack)
        return self._records[stack]


@pytest.fixture(scope="session")
def plans() -> Plans:
    """Records of the shipped stacks, by name."""
    return Plans()


@pytest.fixture(scope="session")
def dev(plans: Plans) -> synth.PlanRecord:
    """The dev stack's record."""
    return plans["dev"]


@pytest.fixture(scope="session")
def staging(plans: Plans) -> synth.PlanRecord:
    """The staging stack's record."""
    return plans["staging"]


@pytest.fixture(scope="session")
def prod(plans: Plans) -> synth.PlanRecord:
    """The prod stack's record."""
    return plans["prod"]
