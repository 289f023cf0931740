"""The training job's result: the last stdout line `MLPLAT_RESULT {json}`, written by training and read by launchers.

The launchers (the local platform, `mlplat monitor --retrain`) read the fields they act on through the typed
attributes; every field the job reported is kept in `fields`, so a recipe may report more without a change here.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RESULT_PREFIX = "MLPLAT_RESULT "


@dataclass(frozen=True)
class TrainingResult:
    """What one finished training job reports: the registered version and what the promotion gate decided."""

    version: str
    """The registered model version the job created."""
    run_id: str = ""
    registered_model_name: str = ""
    decision: str = ""
    """The promotion gate's decision (`champion`, `challenger`, `rejected`)."""
    aliases: tuple[str, ...] = ()
    """The aliases the gate set on the new version."""
    job_name: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Every field as the job reported it (metrics, directories, the gate's reason, ...)."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "TrainingResult":
        """The result from its JSON object; ValueError when it names no version."""
        version = value.get("version")
        if version in (None, ""):
            raise ValueError("the training result names no model version")
        aliases = value.get("aliases") or ()
        return cls(
            version=str(version),
            run_id=str(value.get("run_id") or ""),
            registered_model_name=str(value.get("registered_model_name") or ""),
            decision=str(value.get("decision") or ""),
            aliases=tuple(str(a) for a in aliases) if isinstance(aliases, list | tuple) else (),
            job_name=str(value.get("job_name") or ""),
            fields=dict(value),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object the job printed."""
        return dict(self.fields)

    def metric(self, name: str) -> float | None:
        """A numeric field (e.g. `test_rmse`), None when the job did not report it."""
        value = self.fields.get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def line(self) -> str:
        """The stdout line that carries this result."""
        return result_line(self.to_json())

    @classmethod
    def from_text(cls, text: str) -> "TrainingResult | None":
        """The last result line in a job's output; None when there is none or it is not a JSON object.

        ValueError when the line is an object without a version.
        """
        value = result_object(text)
        return None if value is None else cls.from_json(value)


def result_object(text: str) -> dict[str, Any] | None:
    """The JSON object of the last result line in a job's output, as printed; None when there is none or it is not a
    JSON object. For launchers that pass the result on untouched."""
    for line in reversed(text.splitlines()):
        if line.startswith(RESULT_PREFIX):
            try:
                value = json.loads(line[len(RESULT_PREFIX) :])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def result_line(result: Mapping[str, Any]) -> str:
    """`MLPLAT_RESULT {json}`: how a job prints its result as its last stdout line."""
    return RESULT_PREFIX + json.dumps(dict(result))
