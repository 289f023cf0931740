"""iam-actions-exist and iam-arns-well-formed: statements checked against AWS's authorization reference."""

import json
from typing import Any

import pytest
from policy_support import UNKNOWN, run

from policies import iam_reference

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
        '), "*".'
    ]


# One bad fixture per condition each reference policy checks; each case is named after its condition.
@pytest.mark.parametrize(
    ("statement", "messages"),
    [
        pytest.param(
            allow("S", ["s3GetObject"], "*"),
            ["statement 'S': 's3GetObject' is not an action (expected <service>:<Action>)."],
            id="no colon",
        ),
        pytest.param(
            allow("S", [":GetObject"], "*"),
            ["statement 'S': ':GetObject' is not an action (expected <service>:<Action>)."],
            id="empty service",
        ),
        pytest.param(
            allow("S", ["s3:"], "*"),
            ["statement 'S': 's3:' is not an action (expected <service>:<Action>)."],
            id="empty action name",
        ),
        pytest.param(allow("S", ["S3:getobject"], "arn:aws:s3:::b/*"), [], id="an action in another case"),
        pytest.param(allow("S", ["s3:GetObjec?"], "arn:aws:s3:::b/*"), [], id="a question-mark wildcard that matches"),
        pytest.param(
            allow("S", ["s3:Frob?"], "*"),
            ["statement 'S': s3:Frob? is not an action in AWS's authorization reference for s3."],
            id="a question-mark wildcard that matches nothing",
        ),
        pytest.param(
            {"Sid": "S", "Effect": "Allow", "NotAction": "s3:Frobnicate", "Resource": "*"},
            ["statement 'S': s3:Frobnicate is not an action in AWS's authorization reference for s3."],
            id="a NotAction is checked",
        ),
        pytest.param(
            {"Sid": "S", "Effect": "Allow", "Action": "sagemaker-mlflow:CreateRun", "NotResource": APP},
            [],
            id="NotResource is not a grant on a resource type",
        ),
        pytest.param(allow("S", ["sagemaker-mlflow:CreateRun"], "my-server"), [], id="a resource that is no ARN"),
        pytest.param(allow("S", ["sagemaker-mlflow:CreateRun"], [APP, "*"]), [], id="star among the resources"),
        pytest.param(allow("S", ["sagemaker-mlflow:Create*"], APP), [], id="a wildcard action is not matched to types"),
        pytest.param(allow("S", ["*"], APP), [], id="star action"),
        pytest.param(
            allow("S", ["sagemaker-mlflow:CreateRun"], [APP, SERVER]), [], id="one resource of the right type suffices"
        ),
    ],
)
def test_iam_actions_exist_checks_each_condition(statement: dict[str, Any], messages: list[str]) -> None:
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": doc(statement)}) == messages


def test_iam_actions_exist_accepts_a_configured_action_in_any_case() -> None:
    policy = doc(allow("New", ["sagemaker:callfutureapi"], "*"))
    assert run("iam-actions-exist", ROLE_POLICY, {"policy": policy}, acceptedActions=["SageMaker:CallFutureApi"]) == []


def test_iam_actions_exist_labels_an_unnamed_inline_policy() -> None:
    props = {"inlinePolicies": [{"policy": doc(allow("Get", ["s3:GetObjects"], "*"))}]}
    assert run("iam-actions-exist", ROLE, props) == [
        "inline policy: statement 'Get': s3:GetObjects is not an action in AWS's authorization reference for s3."
    ]


def test_iam_arns_well_formed_leaves_the_trust_policy_to_iam_trust_scoped() -> None:
    trust = doc({"Effect": "Allow", "Principal": {"Service": "x"}, "Action": "sts:AssumeRole", "Resource": "bad"})
    assert run("iam-arns-well-formed", ROLE, {"assumeRolePolicy": trust}) == []


SQS_TEMPLATE = "arn:${Partition}:sqs:${Region}:${Account}:${QueueName}"


@pytest.mark.parametrize(
    ("arn", "problem"),
    [
        pytest.param("*", None, id="star"),
        pytest.param("arn:aws-cn:s3:::b", None, id="the China partition"),
        pytest.param("arn:aws-us-gov:sqs:us-gov-west-1:111122223333:jobs", None, id="a GovCloud region"),
        pytest.param("arn:aws-eusc:s3:::b", None, id="the European sovereign partition"),
        pytest.param("arn:aws:sqs:*:*:jobs", None, id="star region and account"),
        pytest.param("arn:aws:iam::aws:policy/AdministratorAccess", None, id="the aws account of managed policies"),
        pytest.param(
            "arn:aws:sqs:us-east-1:1111:jobs",
            f"is not a well-formed sqs ARN (its resource types are: {SQS_TEMPLATE})",
            id="an account of four digits, a service of one type",
        ),
        pytest.param(
            "arn:aws:sqs:useast1:111122223333:jobs",
            f"is not a well-formed sqs ARN (its resource types are: {SQS_TEMPLATE})",
            id="a region without dashes",
        ),
        pytest.param(
            "arn:aws-mars:s3:::b",
            "has the partition 'aws-mars' (expected aws, aws-cn or aws-us-gov)",
            id="an unknown partition",
        ),
    ],
)
def test_arn_problem_for_each_part_of_an_arn(arn: str, problem: str | None) -> None:
    assert iam_reference.arn_problem(arn) == problem


def test_arn_problem_shows_six_resource_types_then_an_ellipsis() -> None:
    problem = iam_reference.arn_problem("arn:aws:logs:us-east-1:1111:log-group:/aws/x")
    assert problem is not None and problem.endswith("; ...)")
    assert problem.count("arn:${Partition}:logs:") == 6


def test_arn_problem_skips_an_accepted_service() -> None:
    assert iam_reference.arn_problem("arn:aws:sqs:us-east-1:1111:jobs", frozenset({"sqs"})) is None


@pytest.mark.parametrize(
    ("statement", "config", "messages"),
    [
        pytest.param(
            {"Sid": "S", "Effect": "Deny", "Action": "sqs:*", "NotResource": "arn:aws:sqs:us-east-1:1111:jobs"},
            {},
            [
                "statement 'S': NotResource 'arn:aws:sqs:us-east-1:1111:jobs' is not a well-formed sqs ARN (its "
                f"resource types are: {SQS_TEMPLATE})."
            ],
            id="NotResource is checked",
        ),
        pytest.param(
            allow("S", ["sqs:SendMessage"], "arn:aws:sqs:us-east-1:1111:jobs"),
            {"acceptedServices": ["sqs"]},
            [],
            id="an accepted service",
        ),
        pytest.param(allow("S", ["sqs:SendMessage"], [7, None]), {}, [], id="resources that are no strings"),
    ],
)
def test_iam_arns_well_formed_checks_each_condition(
    statement: dict[str, Any], config: dict[str, Any], messages: list[str]
) -> None:
    assert run("iam-arns-well-formed", ROLE_POLICY, {"policy": doc(statement)}, **config) == messages
