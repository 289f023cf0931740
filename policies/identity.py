"""Checks on IAM: no wildcard grants, no FullAccess managed policies, trust scoped to a service or one subject."""

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policies.base import (
    Config,
    Props,
    actions,
    as_list,
    get,
    is_allow,
    principals,
    statement_label,
    statements,
)

ROLE = "aws:iam/role:Role"
IDENTITY_POLICY_TYPES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
# Resource policies (KMS keys, buckets) may not grant wildcard actions either.
RESOURCE_POLICY_TYPES = ("aws:kms/key:Key", "aws:kms/keyPolicy:KeyPolicy", "aws:s3/bucketPolicy:BucketPolicy")
WILDCARD_ACTION_TYPES = (ROLE, *IDENTITY_POLICY_TYPES, *RESOURCE_POLICY_TYPES)
PASS_ROLE_TYPES = (ROLE, *IDENTITY_POLICY_TYPES)
ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
)
MANAGED_POLICY_TYPES = (ROLE, *ATTACHMENT_TYPES)

_AWS_MANAGED = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?(?P<name>[^/]+)$")
_BROAD_MANAGED = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
_ACCOUNT_ROOT = re.compile(r"^(\d{12}|arn:aws[a-z-]*:iam::\d{12}:root)$")
_ASSUME_ACTIONS = ("sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML", "sts:TagSession")


def _documents(resource_type: str, props: Props) -> Iterator[tuple[str, Any]]:
    """(prefix, document) for every permission document a resource carries; prefix names inline policies."""
    if resource_type == ROLE:
        for inline in as_list(get(props, "inlinePolicies")):
            name = get(inline, "name")
            yield (f"inline policy {name!r}: " if name else "inline policy: "), get(inline, "policy")
    else:
        yield "", get(props, "policy")


def no_wildcard_action(resource_type: str, props: Props, config: Config) -> list[str]:
    """No Allow statement grants every action, every action of a service, or everything but a list."""
    found: list[str] = []
    for prefix, doc in _documents(resource_type, props):
        for i, statement in enumerate(statements(doc)):
            if not is_allow(statement):
                continue
            label = f"{prefix}{statement_label(i, statement)}"
            granted = actions(statement)
            if "*" in granted:
                found.append(f'{label} allows every action ("*"); list the actions this role needs.')
            for action in granted:
                if action.endswith(":*"):
                    service = action.split(":", 1)[0]
                    found.append(f'{label} allows every {service} action ("{action}"); list the actions it needs.')
            if statement.get("NotAction") is not None:
                found.append(f"{label} allows everything but its NotAction list; list the allowed actions instead.")
    return found


def _passes_role(action: str) -> bool:
    action = action.lower()
    return action in ("*", "iam:*", "iam:passrole") or (
        action.startswith("iam:") and action.endswith("*") and "iam:passrole".startswith(action[:-1])
    )


def no_pass_role_wildcard(resource_type: str, props: Props, config: Config) -> list[str]:
    """`iam:PassRole` is granted on named roles only, never on "*"."""
    found: list[str] = []
    for prefix, doc in _documents(resource_type, props):
        for i, statement in enumerate(statements(doc)):
            if not is_allow(statement) or not any(_passes_role(a) for a in actions(statement)):
                continue
            if "*" in [str(r) for r in as_list(statement.get("Resource"))]:
                found.append(
                    f"{prefix}{statement_label(i, statement)} allows iam:PassRole on every role; list the role ARNs "
                    "it passes and add the condition iam:PassedToService."
                )
    return found


def _managed_arns(resource_type: str, props: Props) -> list[str]:
    if resource_type == ROLE:
        return [str(a) for a in as_list(get(props, "managedPolicyArns"))]
    if resource_type.endswith("RolePolicyAttachmentsExclusive"):
        return [str(a) for a in as_list(get(props, "policyArns"))]
    arn = get(props, "policyArn")
    return [str(arn)] if arn else []


def no_full_access_managed_policy(resource_type: str, props: Props, config: Config) -> list[str]:
    """No AWS managed policy that grants a whole service (`*FullAccess`) or the account (`AdministratorAccess`)."""
    allowed = set(config.get("allowedPolicyArns") or [])
    found: list[str] = []
    for arn in _managed_arns(resource_type, props):
        match = _AWS_MANAGED.match(arn)
        if match is None or arn in allowed:
            continue
        name = match.group("name")
        if name.endswith("FullAccess") or name in _BROAD_MANAGED:
            found.append(
                f"attaches the AWS managed policy {name}; write a policy with the actions and resources this role "
                "needs."
            )
    return found


def _pinned_subjects(condition: Any) -> list[str]:
    """Values of `<issuer>:sub` under StringEquals: the one subject a federated trust admits."""
    equals = get(condition, "StringEquals")
    if not isinstance(equals, Mapping):
        return []
    subjects: list[str] = []
    for key, value in equals.items():
        if str(key).endswith(":sub"):
            subjects += [str(v) for v in as_list(value)]
    return subjects


def trust_scoped(resource_type: str, props: Props, config: Config) -> list[str]:
    """A role trusts AWS services, or one federated subject (one service account, one CI environment)."""
    allowed_aws = set(config.get("allowedAwsPrincipals") or [])
    found: list[str] = []
    for i, statement in enumerate(statements(get(props, "assumeRolePolicy"))):
        if not is_allow(statement) or not any(a in _ASSUME_ACTIONS or a == "*" for a in actions(statement)):
            continue
        label = statement_label(i, statement)
        for kind, values in principals(statement).items():
            if kind == "*":
                found.append(f'{label} trusts every principal ("*"); trust a service or one service account.')
            elif kind == "AWS":
                for value in values:
                    if value in allowed_aws:
                        continue
                    if value == "*":
                        found.append(
                            f'{label} trusts every AWS principal ("*"); trust a service or one service account.'
                        )
                    elif _ACCOUNT_ROOT.match(value):
                        found.append(
                            f"{label} trusts every identity of account {value}; trust a service or one service account."
                        )
                    else:
                        found.append(
                            f"{label} trusts the AWS principal {value}; trust a service or one service account, or "
                            "list it in allowedAwsPrincipals."
                        )
            elif kind == "Federated":
                subjects = _pinned_subjects(statement.get("Condition"))
                if len(subjects) != 1 or "*" in subjects[0]:
                    found.append(
                        f"{label} trusts {', '.join(values)} without pinning one subject; add the condition "
                        "StringEquals {<issuer>:sub: system:serviceaccount:<namespace>:<name>}."
                    )
    return found
