"""iam-actions-exist and iam-arns-well-formed: statements checked against AWS's authorization reference."""

import json
from typing import Any

import pytest
from policy_support import UNKNOWN, run

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
KEY = "aws:kms/key:Key"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
SERVER = "arn:aws:sagemaker:us-east-1:111122223333:mlflow-tracking-server/mlplat-prod-tracking"
APP = "arn:aws:sagemaker:us-east-1:111122223333:mlflow-app/app-0123456789ab"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(sid: str, actions: list[str], resource: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}


def test_real_actions_on_the_resource_types_they_apply_to_pass() -> None:
    policy = doc(
        allow("ReadArtifacts", ["s3:GetObject", "s3:ListBucket"], ["arn:aws:s3:::art", "arn:aws:s3:::art/mlflow/*"]),
        allow("UseMlflow", ["sagemaker-mlflow:CreateRun", "sagemaker-mlflow:LogBatch"], SERVER),
        allow("UseApp", ["sagemaker:CallMlflowAppApi"], APP),
        allow("Ui", ["sagemaker-mlflow:AccessUI"], "*"),
        allow("EcrLogin", ["ecr:GetAuthorizationToken"], "*"),
    )
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": doc()}) == []
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": policy}) == []
    assert run("iam-arns-well-formed", ROLE_POLICY, {"policy": policy}) == []


def test_a_non_existent_action_is_named_with_its_statement() -> None:
    policy = doc(allow("UseMlflow", ["sagemaker-mlflow:CreateRun", "sagemaker-mlflow:CreateLoggedModel"], SERVER))
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": policy}) == [
        "statement 'UseMlflow': sagemaker-mlflow:CreateLoggedModel is not an action in AWS's authorization "
        "reference for sagemaker-mlflow."
    ]


def test_an_unknown_service_prefix_is_named() -> None:
    policy = doc(allow("Typo", ["sagemakr:CreateModel"], "*"))
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": policy}) == [
        "statement 'Typo': sagemakr:CreateModel names the service prefix 'sagemakr', which AWS's authorization "
        "reference lacks."
    ]


def test_an_action_on_the_wrong_resource_type_names_the_types_it_applies_to() -> None:
    policy = doc(allow("UseMlflow", ["sagemaker-mlflow:CreateRun"], APP))
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": policy}) == [
        f"statement 'UseMlflow': sagemaker-mlflow:CreateRun is granted on {APP}, but it applies to "
        "mlflow-tracking-server (arn:${Partition}:sagemaker:${Region}:${Account}:mlflow-tracking-server/"
        "${MlflowTrackingServerName})."
    ]


def test_an_action_without_resource_level_permissions_granted_on_an_arn_is_reported() -> None:
    policy = doc(allow("OpenUi", ["sagemaker-mlflow:AccessUI"], SERVER))
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": policy}) == [
        f"statement 'OpenUi': sagemaker-mlflow:AccessUI is granted on {SERVER}, but it applies to only \"*\" "
        "(it has no resource-level permissions)."
    ]


def test_inline_and_trust_policies_of_a_role_are_checked_and_labelled() -> None:
    props = {
        "assumeRolePolicy": doc({"Effect": "Allow", "Principal": {"Service": "x"}, "Action": "sts:AssumeRoles"}),
        "inlinePolicies": [{"name": "use", "policy": doc(allow("Get", ["s3:GetObjects"], "arn:aws:s3:::b/*"))}],
    }
    assert run("iam-actions-exist", ROLE, props) == [
        "inline policy 'use': statement 'Get': s3:GetObjects is not an action in AWS's authorization reference for s3.",
        "trust policy: statement 1: sts:AssumeRoles is not an action in AWS's authorization reference for sts.",
    ]


@pytest.mark.parametrize(
    ("type_", "statement"),
    [
        (KEY, {"Sid": "K", "Effect": "Allow", "Principal": {"AWS": "a"}, "Action": "kms:Decrypts", "Resource": "*"}),
        (BUCKET_POLICY, allow("B", ["s3:GetObjects"], "arn:aws:s3:::b/*")),
        (TOPIC_POLICY, allow("T", ["sns:Publishes"], "arn:aws:sns:us-east-1:111122223333:alarms")),
        (QUEUE_POLICY, allow("Q", ["sqs:SendMessages"], "arn:aws:sqs:us-east-1:111122223333:jobs")),
    ],
)
def test_key_bucket_topic_and_queue_policies_are_checked_too(type_: str, statement: dict[str, Any]) -> None:
    action = statement["Action"] if isinstance(statement["Action"], str) else statement["Action"][0]
    (message,) = run("iam-actions-exist", type_, {"policy": doc(statement)})
    assert message == (
        f"statement {statement['Sid']!r}: {action} is not an action in AWS's authorization reference for "
        f"{action.split(':')[0]}."
    )


def test_a_wildcard_action_must_match_some_action_and_a_deny_is_checked_as_well() -> None:
    policy = doc(
        allow("Reads", ["s3:Get*"], "arn:aws:s3:::b/*"),
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b"},
        {"Sid": "Nope", "Effect": "Deny", "Principal": "*", "Action": "s3:Frobnicate*", "Resource": "*"},
    )
    assert run("iam-actions-exist", BUCKET_POLICY, {"policy": policy}) == [
        "statement 'Nope': s3:Frobnicate* is not an action in AWS's authorization reference for s3."
    ]


def test_an_action_the_stack_config_accepts_is_not_reported() -> None:
    policy = doc(allow("New", ["sagemaker:CallFutureApi"], "*"))
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": policy}, acceptedActions=["sagemaker:CallFutureApi"]) == []


def test_a_document_unknown_during_preview_is_skipped() -> None:
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": UNKNOWN}) == []
    assert run("iam-arns-well-formed", ROLE_POLICY, {"policy": UNKNOWN}) == []
    assert run("iam-actions-exist", ROLE, {"inlinePolicies": UNKNOWN, "assumeRolePolicy": UNKNOWN}) == []


def test_a_malformed_arn_is_named_with_the_formats_its_service_has() -> None:
    policy = doc(allow("Logs", ["logs:PutLogEvents"], "arn:aws:logs:us-east-1:1111:log-group:/aws/x"))
    (message,) = run("iam-arns-well-formed", ROLE_POLICY, {"policy": policy})
    assert message.startswith(
        "statement 'Logs': Resource 'arn:aws:logs:us-east-1:1111:log-group:/aws/x' is not a well-formed logs ARN "
        "(its resource types are: arn:${Partition}:logs:"
    )


@pytest.mark.parametrize(
    ("arn", "problem"),
    [
        ("my-bucket/*", "is not an ARN (expected arn:<partition>:<service>:<region>:<account>:<resource>)"),
        ("arn:amazon:s3:::b", "has the partition 'amazon' (expected aws, aws-cn or aws-us-gov)"),
        ("arn:aws:sagemkr:us-east-1:111122223333:model/m", "names the service 'sagemkr', which AWS's authorization "
         "reference lacks"),
    ],
)  # fmt: skip
def test_arns_that_are_not_arns_or_name_no_service_are_reported(arn: str, problem: str) -> None:
    policy = doc(allow("S", ["s3:GetObject"], arn))
    expected = f"statement 'S': Resource {arn!r} {problem}."
    assert run("iam-arns-well-formed", ROLE_POLICY, {"policy": policy}) == [expected]


def test_aws_public_parameters_without_an_account_are_well_formed_but_other_empty_accounts_are_not() -> None:
    public = doc(allow("AmiIds", ["ssm:GetParameter"], "arn:aws:ssm:us-west-2::parameter/aws/service/eks/*"))
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": public}) == []
    assert run("iam-arns-well-formed", ROLE_POLICY, {"policy": public}) == []
    private = doc(allow("Mine", ["ssm:GetParameter"], "arn:aws:ssm:us-west-2::parameter/team/secret"))
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": private}) == [
        "statement 'Mine': ssm:GetParameter is granted on arn:aws:ssm:us-west-2::parameter/team/secret, but it "
        "applies to parameter (arn:${Partition}:ssm:${Region}:${Account}:parameter/${ParameterNameWithoutLeadingSlash}"
        "), * (*)."
    ]
