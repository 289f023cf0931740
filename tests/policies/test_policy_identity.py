"""Identity policies: wildcard actions, PassRole, FullAccess managed policies, trust scope."""

import json
from typing import Any

import pytest
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


# One bad fixture per condition each identity policy checks; each case is named after its condition.
@pytest.mark.parametrize(
    ("statement", "messages"),
    [
        pytest.param(
            {**READ, "Action": "*"},
            ["statement 'ReadArtifacts' allows every action (\"*\"); list the actions this role needs."],
            id="Action star",
        ),
        pytest.param(
            {**READ, "Action": ["s3:GetObject", "kms:*"]},
            ["statement 'ReadArtifacts' allows every kms action (\"kms:*\"); list the actions it needs."],
            id="Action service star",
        ),
        pytest.param(
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            ["statement 1 allows everything but its NotAction list; list the allowed actions instead."],
            id="NotAction with Allow, no Sid",
        ),
        pytest.param({**READ, "Action": "s3:Get*"}, [], id="a prefix wildcard is not every action of a service"),
        pytest.param({**READ, "Effect": "Deny", "Action": "*"}, [], id="Deny of star"),
    ],
)
def test_iam_no_wildcard_action_checks_each_condition(statement: dict[str, Any], messages: list[str]) -> None:
    assert run("iam-no-wildcard-action", ROLE_POLICY, {"policy": doc(statement)}) == messages


def test_iam_no_wildcard_action_names_an_unnamed_inline_policy() -> None:
    props = {"inlinePolicies": [{"policy": doc({**READ, "Action": "*"})}]}
    assert run("iam-no-wildcard-action", ROLE, props) == [
        "inline policy: statement 'ReadArtifacts' allows every action (\"*\"); list the actions this role needs."
    ]


def test_iam_no_wildcard_action_reports_every_statement_with_its_own_label() -> None:
    props = {"policy": doc({**READ, "Action": "*"}, {"Effect": "Allow", "Action": "s3:*", "Resource": "*"})}
    assert run("iam-no-wildcard-action", ROLE_POLICY, props) == [
        "statement 'ReadArtifacts' allows every action (\"*\"); list the actions this role needs.",
        'statement 2 allows every s3 action ("s3:*"); list the actions it needs.',
    ]


PASS_STAR = (
    "statement 'PassTrainingRole' allows iam:PassRole on every role; list the role ARNs it passes and add the "
    "condition iam:PassedToService."
)


@pytest.mark.parametrize(
    ("action", "messages"),
    [
        pytest.param("iam:PassRole", [PASS_STAR], id="iam:PassRole"),
        pytest.param("IAM:PASSROLE", [PASS_STAR], id="iam:PassRole in another case"),
        pytest.param("*", [PASS_STAR], id="star"),
        pytest.param("iam:*", [PASS_STAR], id="iam star"),
        pytest.param("iam:Pass*", [PASS_STAR], id="iam:Pass prefix"),
        pytest.param("iam:P*", [PASS_STAR], id="iam:P prefix"),
        pytest.param("iam:Get*", [], id="an iam prefix that is not PassRole"),
        pytest.param("iam:PassRoleX", [], id="a longer action name"),
        pytest.param("s3:*", [], id="another service"),
    ],
)
def test_iam_no_passrole_wildcard_checks_each_spelling_on_every_role(action: str, messages: list[str]) -> None:
    props = {"policy": doc({**PASS, "Action": action, "Resource": ["arn:aws:s3:::x", "*"]})}
    assert run("iam-no-passrole-wildcard", ROLE_POLICY, props) == messages


def test_iam_no_passrole_wildcard_ignores_a_deny() -> None:
    props = {"policy": doc({**PASS, "Effect": "Deny", "Resource": "*"})}
    assert run("iam-no-passrole-wildcard", ROLE_POLICY, props) == []


def test_iam_no_passrole_wildcard_names_the_roles_inline_policy() -> None:
    props = {"inlinePolicies": [{"name": "pass", "policy": doc({**PASS, "Resource": "*"})}]}
    assert run("iam-no-passrole-wildcard", ROLE, props) == [f"inline policy 'pass': {PASS_STAR}"]


FULL_ACCESS = "attaches the AWS managed policy {}; write a policy with the actions and resources this role needs."


@pytest.mark.parametrize(
    ("type_", "props", "messages"),
    [
        pytest.param(
            ATTACHMENT,
            {"policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"},
            [FULL_ACCESS.format("AmazonS3FullAccess")],
            id="FullAccess suffix",
        ),
        pytest.param(
            ATTACHMENT,
            {"policyArn": "arn:aws:iam::aws:policy/job-function/PowerUserAccess"},
            [FULL_ACCESS.format("PowerUserAccess")],
            id="PowerUserAccess under a path",
        ),
        pytest.param(
            ATTACHMENT,
            {"policyArn": "arn:aws-us-gov:iam::aws:policy/IAMFullAccess"},
            [FULL_ACCESS.format("IAMFullAccess")],
            id="IAMFullAccess in another partition",
        ),
        pytest.param(
            ATTACHMENT,
            {"policyArn": "arn:aws:iam::111122223333:policy/MyFullAccess"},
            [],
            id="a customer managed policy is not AWS managed",
        ),
        pytest.param(ATTACHMENT, {}, [], id="no policyArn"),
        pytest.param(
            "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
            {
                "policyArns": [
                    "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                    "arn:aws:iam::aws:policy/AdministratorAccess",
                ]
            },
            [FULL_ACCESS.format("AdministratorAccess")],
            id="exclusive attachments list",
        ),
    ],
)
def test_iam_no_full_access_policies_checks_each_condition(
    type_: str, props: dict[str, Any], messages: list[str]
) -> None:
    assert run("iam-no-full-access-policies", type_, props) == messages


TRUST_FEDERATED = (
    f"statement 1 trusts arn:aws:iam::111122223333:oidc-provider/{ISSUER} without pinning one subject; add the "
    "condition StringEquals {<issuer>:sub: system:serviceaccount:<namespace>:<name>}."
)


def _trust(**statement: Any) -> dict[str, Any]:
    return {"assumeRolePolicy": doc({**SERVICE_TRUST, **statement})}


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param(
            _trust(Principal={"AWS": "*"}),
            ['statement 1 trusts every AWS principal ("*"); trust a service or one service account.'],
            id="AWS star",
        ),
        pytest.param(
            _trust(Principal={"AWS": "111122223333"}),
            ["statement 1 trusts every identity of account 111122223333; trust a service or one service account."],
            id="a bare account id",
        ),
        pytest.param(
            _trust(Principal={"AWS": "arn:aws:iam::111122223333:role/ci"}),
            [
                "statement 1 trusts the AWS principal arn:aws:iam::111122223333:role/ci; trust a service or one "
                "service account, or list it in allowedAwsPrincipals."
            ],
            id="a named AWS role not listed",
        ),
        pytest.param(
            _trust(Principal="*", Action="*"),
            ['statement 1 trusts every principal ("*"); trust a service or one service account.'],
            id="action star",
        ),
        pytest.param(
            _trust(Principal="*", Action="sts:TagSession"),
            ['statement 1 trusts every principal ("*"); trust a service or one service account.'],
            id="sts:TagSession",
        ),
        pytest.param(_trust(Principal="*", Action="s3:GetObject"), [], id="not an assume action"),
        pytest.param(_trust(Principal="*", Effect="Deny"), [], id="Deny"),
        pytest.param(
            {"assumeRolePolicy": doc({**IRSA_TRUST, "Condition": {}})}, [TRUST_FEDERATED], id="federated, no condition"
        ),
        pytest.param(
            {
                "assumeRolePolicy": doc(
                    {
                        **IRSA_TRUST,
                        "Condition": {
                            "StringEquals": {
                                f"{ISSUER}:sub": ["system:serviceaccount:a:b", "system:serviceaccount:a:c"]
                            }
                        },
                    }
                )
            },
            [TRUST_FEDERATED],
            id="federated, two subjects",
        ),
        pytest.param(
            {
                "assumeRolePolicy": doc(
                    {**IRSA_TRUST, "Condition": {"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:a:*"}}}
                )
            },
            [TRUST_FEDERATED],
            id="federated, a wildcard subject",
        ),
        pytest.param(
            {
                "assumeRolePolicy": doc(
                    {**IRSA_TRUST, "Condition": {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}}}
                )
            },
            [TRUST_FEDERATED],
            id="federated, audience only",
        ),
    ],
)
def test_iam_trust_scoped_checks_each_condition(props: dict[str, Any], messages: list[str]) -> None:
    assert run("iam-trust-scoped", ROLE, props) == messages
