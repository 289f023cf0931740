"""The `mlplat-guard` CrossGuard policy pack: wraps every registry entry into a policy and serves the pack.

`pulumi preview --policy-pack policies --policy-pack-config policies/config/<env>.json` runs this file (the engine
runs the directory, so `policies` itself is put on the import path first). Building `PolicyPack` starts the
analyzer server and never returns, which is why nothing else in the project imports this module.
"""

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import registry
from policies.base import StackResource


def _schema(spec: registry.PolicySpec) -> PolicyConfigSchema | None:
    return (
        PolicyConfigSchema(properties={k: dict(v) for k, v in spec.config_schema.items()})
        if spec.config_schema
        else None
    )


def _stack_resource(resource: PolicyResource) -> StackResource:
    return StackResource(
        urn=resource.urn,
        type=resource.resource_type,
        name=resource.name,
        props=resource.props,
        parent=resource.parent.urn if resource.parent is not None else None,
        dependencies={key: [dep.urn for dep in deps] for key, deps in resource.property_dependencies.items()},
        provider_props=resource.provider.props if resource.provider is not None else None,
    )


def _fields(spec: registry.PolicySpec) -> dict[str, Any]:
    """What CrossGuard shows of a policy, the same for resource and stack policies."""
    return {
        "name": spec.name,
        "description": spec.description,
        "enforcement_level": EnforcementLevel(spec.enforcement),
        "config_schema": _schema(spec),
        "remediation_steps": spec.remediation,
    }


def resource_policy(spec: registry.PolicySpec) -> ResourceValidationPolicy:
    """A resource validation policy that runs `spec.check` on the resource types it applies to."""
    check, types = spec.check, frozenset(spec.resource_types)
    assert check is not None

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in types:
            return
        for message in check(args.resource_type, args.props, registry.effective_config(spec, args.get_config())):
            report_violation(message, None)

    return ResourceValidationPolicy(validate=validate, **_fields(spec))


def stack_policy(spec: registry.PolicySpec) -> StackValidationPolicy:
    """A stack validation policy that runs `spec.stack_check` over every resource of the stack."""
    check = spec.stack_check
    assert check is not None

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources: Sequence[StackResource] = [_stack_resource(r) for r in args.resources]
        for violation in check(resources, registry.effective_config(spec, args.get_config())):
            report_violation(violation.message, violation.urn)

    return StackValidationPolicy(validate=validate, **_fields(spec))


def policies() -> list[Any]:
    """Every policy of the pack, in registry order."""
    return [stack_policy(s) if s.is_stack_policy else resource_policy(s) for s in registry.POLICIES]


def main() -> None:
    """Serve the pack to the engine (blocks)."""
    PolicyPack(
        name=registry.PACK_NAME,
        policies=policies(),
        enforcement_level=EnforcementLevel.MANDATORY,
        description="mlplat guard rails: storage, identity, network, GPU compute, SageMaker, Kubernetes, cost, tags.",
    )


if __name__ == "__main__":
    main()
