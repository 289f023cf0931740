"""Identity policies: wildcard actions, PassRole, FullAccess managed policies, trust scope."""

import json
from typing import Any

from policy_support import run

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/ABC"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


READ = {"Sid": "ReadArtifacts", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::art/*"}
PASS = {
    "Sid": "PassTrainingRole",
    "Effect": "Allow",
    "Action": "iam:PassRole",
    "Resource": "arn:aws:iam::111122223333:role/training",
    "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
}
SERVICE_TRUST = {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
IRSA_TRUST = {
    "Effect": "Allow",
    "Principal": {"Federated": f"arn:aws:iam::111122223333:oidc-provider/{ISSUER}"},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {
        "StringEquals": {
            f"{ISSUER}:sub": "system:serviceaccount:research:trainer",
            f"{ISSUER}:aud": "sts.amazonaws.com",
        }
    },
}


def test_a_scoped_role_policy_passes() -> None:
    assert run("iam-no-wildcard-action", ROLE_POLICY, {"policy": doc(READ, PASS)}) == []


def test_an_allow_of_every_action_is_reported() -> None:
    assert run("iam-no-wildcard-action", ROLE_POLICY, {"policy": doc({**READ, "Action": "*"})}) == [
        "statement 'ReadArtifacts' allows every action (\"*\"); list the actions this role needs."
    ]


def test_an_allow_of_every_action_of_a_service_is_reported() -> None:
    assert run("iam-no-wildcard-action", ROLE_POLICY, {"policy": doc({**READ, "Action": ["s3:*"]})}) == [
        "statement 'ReadArtifacts' allows every s3 action (\"s3:*\"); list the actions it needs."
    ]


def test_not_action_with_allow_is_reported() -> None:
    statement = {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}
    assert run("iam-no-wildcard-action", ROLE_POLICY, {"policy": doc(statement)}) == [
        "statement 1 allows everything but its NotAction list; list the allowed actions instead."
    ]


def test_a_deny_of_every_action_is_fine() -> None:
    assert run("iam-no-wildcard-action", ROLE_POLICY, {"policy": doc({**READ, "Effect": "Deny", "Action": "*"})}) == []


def test_wildcards_in_a_role_inline_policy_name_the_inline_policy() -> None:
    inline = {"name": "ops", "policy": doc({**READ, "Action": "*"})}
    props = {"assumeRolePolicy": doc(SERVICE_TRUST), "inlinePolicies": [inline]}
    assert run("iam-no-wildcard-action", ROLE, props) == [
        "inline policy 'ops': statement 'ReadArtifacts' allows every action (\"*\"); list the actions this role needs."
    ]


def test_pass_role_on_named_roles_passes() -> None:
    assert run("iam-no-passrole-wildcard", ROLE_POLICY, {"policy": doc(PASS)}) == []


def test_pass_role_on_every_role_is_reported() -> None:
    assert run("iam-no-passrole-wildcard", ROLE_POLICY, {"policy": doc({**PASS, "Resource": "*"})}) == [
        "statement 'PassTrainingRole' allows iam:PassRole on every role; list the role ARNs it passes and add the "
        "condition iam:PassedToService."
    ]


def test_a_pass_role_prefix_wildcard_on_every_role_is_reported() -> None:
    statement = {"Effect": "Allow", "Action": ["iam:Pass*"], "Resource": ["*"]}
    assert run("iam-no-passrole-wildcard", ROLE_POLICY, {"policy": doc(statement)}) == [
        "statement 1 allows iam:PassRole on every role; list the role ARNs it passes and add the condition "
        "iam:PassedToService."
    ]


def test_a_scoped_aws_managed_policy_passes() -> None:
    props = {"role": "node", "policyArn": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"}
    assert run("iam-no-full-access-policies", ATTACHMENT, props) == []


def test_a_full_access_managed_policy_is_reported() -> None:
    props = {"role": "training", "policyArn": "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"}
    assert run("iam-no-full-access-policies", ATTACHMENT, props) == [
        "attaches the AWS managed policy AmazonSageMakerFullAccess; write a policy with the actions and resources "
        "this role needs."
    ]


def test_administrator_access_in_managed_policy_arns_is_reported() -> None:
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    props = {"assumeRolePolicy": doc(SERVICE_TRUST), "managedPolicyArns": [admin]}
    assert run("iam-no-full-access-policies", ROLE, props) == [
        "attaches the AWS managed policy AdministratorAccess; write a policy with the actions and resources this role "
        "needs."
    ]


def test_a_full_access_policy_listed_as_an_exception_passes() -> None:
    arn = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
    assert run("iam-no-full-access-policies", ATTACHMENT, {"policyArn": arn}, allowedPolicyArns=[arn]) == []


def test_a_role_trusting_one_service_passes() -> None:
    assert run("iam-trust-scoped", ROLE, {"assumeRolePolicy": doc(SERVICE_TRUST)}) == []


def test_a_role_trusting_one_service_account_passes() -> None:
    assert run("iam-trust-scoped", ROLE, {"assumeRolePolicy": doc(IRSA_TRUST)}) == []


def test_a_federated_trust_without_a_pinned_subject_is_reported() -> None:
    loose = {**IRSA_TRUST, "Condition": {"StringLike": {f"{ISSUER}:sub": "system:serviceaccount:research:*"}}}
    assert run("iam-trust-scoped", ROLE, {"assumeRolePolicy": doc(loose)}) == [
        f"statement 1 trusts arn:aws:iam::111122223333:oidc-provider/{ISSUER} without pinning one subject; add the "
        "condition StringEquals {<issuer>:sub: system:serviceaccount:<namespace>:<name>}."
    ]


def test_a_role_trusting_a_whole_account_is_reported() -> None:
    trust = {**SERVICE_TRUST, "Principal": {"AWS": "arn:aws:iam::111122223333:root"}}
    assert run("iam-trust-scoped", ROLE, {"assumeRolePolicy": doc(trust)}) == [
        "statement 1 trusts every identity of account arn:aws:iam::111122223333:root; trust a service or one "
        "service account."
    ]


def test_a_role_trusting_everyone_is_reported() -> None:
    assert run("iam-trust-scoped", ROLE, {"assumeRolePolicy": doc({**SERVICE_TRUST, "Principal": "*"})}) == [
        'statement 1 trusts every principal ("*"); trust a service or one service account.'
    ]


def test_an_aws_principal_listed_as_an_exception_passes() -> None:
    admin = "arn:aws:iam::111122223333:role/break-glass"
    trust = {**SERVICE_TRUST, "Principal": {"AWS": admin}}
    assert run("iam-trust-scoped", ROLE, {"assumeRolePolicy": doc(trust)}, allowedAwsPrincipals=[admin]) == []
