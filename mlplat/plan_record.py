"""The plan record: every resource one stack's program registers, and what it exports, as data and as JSON.

It is what `mlplat.synth` produces and what `mlplat plan --json` writes; `load_plan` reads that file back.

The record (`PlanRecord.to_json()`, schema in `mlplat/plan.schema.json`), schemaVersion 1:

    {
      "schemaVersion": 1,
      "project": "mlplat",
      "stack": "prod",
      "stackFile": "stacks/Pulumi.prod.yaml",
      "config": {...},                # the validated StackConfig, camelCase keys, defaults filled in
      "resources": [                  # parents before children, siblings by name; components and custom alike
        {
          "urn": "urn:pulumi:prod::mlplat::...$mlplat:artifacts:ArtifactStore$aws:s3/bucket:Bucket::<name>",
          "type": "aws:s3/bucket:Bucket",
          "name": "<logical name>",
          "parent": "<parent URN>",   # the stack's URN for top-level resources
          "custom": true,             # false for component resources
          "inputs": {...},            # the engine's camelCase keys, Outputs resolved, after transforms
          "options": {...}            # optional; only the options that are set: dependsOn (every URN this
                                      # resource waits for), propertyDependencies {input: [URN]}, customTimeouts
                                      # {create, update, delete}, protect, retainOnDelete, deleteBeforeReplace,
                                      # ignoreChanges, replaceOnChanges, provider
        }
      ],
      "outputs": {...},               # the stack's exports, resolved
      "counts": {"<type>": n}         # resources per type, sorted by type
    }
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
PROJECT = "mlplat"


@dataclass(frozen=True)
class ResourceRecord:
    """One registered resource, as the engine saw it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record's JSON form (see the module docstring)."""
        data = {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": self.inputs,
        }
        if self.options:
            data["options"] = self.options
        return data


@dataclass(frozen=True)
class PlanRecord:
    """Everything one stack's program registered and exported."""

    stack: str
    stack_file: str
    config: dict[str, Any]
    resources: list[ResourceRecord]
    outputs: dict[str, Any]
    stack_urn: str = ""
    project: str = PROJECT
    _by_urn: dict[str, ResourceRecord] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_urn.update({r.urn: r for r in self.resources})

    @property
    def counts(self) -> dict[str, int]:
        """Resources per type, sorted by type."""
        return dict(sorted(Counter(r.type for r in self.resources).items()))

    def of_type(self, type_token: str) -> list[ResourceRecord]:
        """Every resource of one type, in registration order."""
        return [r for r in self.resources if r.type == type_token]

    def get(self, type_token: str, name: str) -> ResourceRecord:
        """The one resource of this type and logical name; KeyError if there is none."""
        for resource in self.resources:
            if resource.type == type_token and resource.name == name:
                return resource
        raise KeyError(f"{type_token}::{name}")

    def by_urn(self, urn: str) -> ResourceRecord | None:
        """The resource with this URN, or None (the stack itself is not recorded)."""
        return self._by_urn.get(urn)

    def children(self, urn: str) -> list[ResourceRecord]:
        """Direct children of the resource with this URN (the stack's URN gives the top level)."""
        return [r for r in self.resources if r.parent == urn]

    def descendants(self, urn: str) -> list[ResourceRecord]:
        """Every resource beneath the resource with this URN."""
        found: list[ResourceRecord] = []
        for child in self.children(urn):
            found.append(child)
            found.extend(self.descendants(child.urn))
        return found

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data (see the module docstring and `mlplat/plan.schema.json`)."""
        return {
            "schemaVersion": SCHEMA_VERSION,
            "project": self.project,
            "stack": self.stack,
            "stackFile": self.stack_file,
            "config": self.config,
            "resources": [r.to_json() for r in self.resources],
            "outputs": self.outputs,
            "counts": self.counts,
        }


def walk(record: PlanRecord) -> Iterator[tuple[int, ResourceRecord]]:
    """(depth, resource) in tree order, from the stack's top-level resources down."""

    def visit(urn: str, depth: int) -> Iterator[tuple[int, ResourceRecord]]:
        for child in record.children(urn):
            yield depth, child
            yield from visit(child.urn, depth + 1)

    yield from visit(record.stack_urn, 0)


PLAN_HINT = "write one with `mlplat plan --stack <stack> --json-out PATH`"


def load_plan(path: Path, stack: str | None = None) -> PlanRecord:
    """A plan record written by `mlplat plan --json`; BadInput when it is unreadable or of another stack."""
    # Imported here: the record's readers (the policy pack) need none of the command line.
    from mlplat import clikit

    doc = clikit.read_json(path, "a plan record", PLAN_HINT)
    if not isinstance(doc, dict) or not isinstance(doc.get("resources"), list) or "stack" not in doc:
        raise clikit.BadInput(f"{path}: is not a plan record (no stack and resources); {PLAN_HINT}")
    if stack is not None and str(doc["stack"]) != stack:
        raise clikit.BadInput(
            f"{path} is the plan of stack {doc['stack']!r}, not {stack!r}; pass --stack {doc['stack']} "
            f"or the plan of {stack!r}"
        )
    try:
        resources = [
            ResourceRecord(
                urn=r["urn"],
                type=r["type"],
                name=r["name"],
                parent=r.get("parent", ""),
                custom=bool(r.get("custom")),
                inputs=r.get("inputs") or {},
            )
            for r in doc["resources"]
        ]
    except (KeyError, TypeError, AttributeError):
        raise clikit.BadInput(f"{path}: a resource lacks urn, type or name; {PLAN_HINT}") from None
    plan_stack = str(doc["stack"])
    return PlanRecord(
        stack=plan_stack,
        stack_file=str(doc.get("stackFile", "")),
        config=doc.get("config") or {},
        resources=resources,
        outputs=doc.get("outputs") or {},
        stack_urn=f"urn:pulumi:{plan_stack}::{doc.get('project', PROJECT)}::pulumi:pulumi:Stack::"
        f"{doc.get('project', PROJECT)}-{plan_stack}",
    )
