"""IAM policy helpers shared by the components: JSON documents from statements that hold Outputs, service trust."""

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

Statement = Mapping[str, Any]
"""One IAM statement; values may be `pulumi.Input`s (ARNs of resources not yet created)."""

POLICY_VERSION = "2012-10-17"

# Every KMS action an account administrator needs on a key it owns, spelled out: a key policy that grants the
# account root `kms:*` works, but a wildcard action is what the policy pack forbids everywhere else.
KEY_ADMIN_ACTIONS: tuple[str, ...] = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)


def policy_document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    """An IAM policy document as JSON, with every Output inside the statements resolved."""
    resolved = pulumi.Output.all(*[pulumi.Output.from_input(dict(s)) for s in statements])
    return resolved.apply(lambda items: json.dumps({"Version": POLICY_VERSION, "Statement": list(items)}))


def owned_role_policy(
    owner: pulumi.Resource, suffix: str, role: aws.iam.Role, statements: Sequence[Statement]
) -> aws.iam.RolePolicy:
    """An inline policy on `role` that the component `owner` grants and owns: `<owner>-<suffix>`, its child."""
    return aws.iam.RolePolicy(
        f"{owner.pulumi_resource_name}-{suffix}",
        role=role.id,
        policy=policy_document(list(statements)),
        opts=pulumi.ResourceOptions(parent=owner),
    )


def service_trust(service: str, source_account: pulumi.Input[str] | None = None) -> pulumi.Output[str]:
    """An assume-role policy that trusts one AWS service, optionally only on behalf of one account.

    The `aws:SourceAccount` condition closes the confused-deputy hole: another account cannot make the service
    assume this role for its own resources.
    """
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return policy_document([statement])


def account_id() -> pulumi.Output[str]:
    """The deploying account's ID (an invoke, answered by the mocks offline)."""
    return aws.get_caller_identity_output().account_id


def partition() -> pulumi.Output[str]:
    """The AWS partition (`aws`, `aws-cn`, `aws-us-gov`)."""
    return aws.get_partition_output().partition


def account_root_statement(account: pulumi.Input[str], arn_partition: pulumi.Input[str]) -> Statement:
    """The key-policy statement that lets the account (and so IAM policies in it) administer and use a key."""
    return {
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": pulumi.Output.concat("arn:", arn_partition, ":iam::", account, ":root")},
        "Action": list(KEY_ADMIN_ACTIONS),
        # In a key policy "*" means "this key"; it is the only form KMS accepts.
        "Resource": "*",
    }


def log_group_arn(
    region: str, account: pulumi.Input[str], arn_partition: pulumi.Input[str], group: str
) -> pulumi.Output[str]:
    """The ARN of a log group by name, known before the group exists (key policies must name it first)."""
    return pulumi.Output.concat("arn:", arn_partition, ":logs:", region, ":", account, ":log-group:", group)


def write_logs_statement(group_arn: pulumi.Input[str]) -> Statement:
    """Create the streams of one log group (or a `*` pattern of groups) and write to them: a job's container logs."""
    return {
        "Sid": "WriteLogs",
        "Effect": "Allow",
        "Action": [
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
        ],
        "Resource": [group_arn, pulumi.Output.concat(group_arn, ":log-stream:*")],
    }


def logs_key_statement(region: str, group_arn: pulumi.Input[str]) -> Statement:
    """The key-policy statement that lets CloudWatch Logs use a key for one log group and no other."""
    return {
        "Sid": "CloudWatchLogsUsesKeyForThisGroup",
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{region}.amazonaws.com"},
        "Action": [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
            "kms:GenerateDataKey",
            "kms:DescribeKey",
        ],
        # In a key policy "*" means "this key"; the encryption context pins the one log group.
        "Resource": "*",
        "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group_arn}},
    }


def sagemaker_vpc_statements(vpc_arn: pulumi.Input[str]) -> list[Statement]:
    """What SageMaker needs to put a job's or model's network interfaces in the platform's VPC, and only there."""
    return [
        {
            "Sid": "DescribeNetwork",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
            ],
            # EC2 Describe* actions have no resource-level permissions: AWS accepts only "*".
            "Resource": "*",
        },
        {
            "Sid": "NetworkInterfacesInThisVpc",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            # The interfaces do not exist yet, so they cannot be named; the ec2:Vpc condition pins every
            # subnet, security group and interface involved to the platform's VPC.
            "Resource": "*",
            "Condition": {"ArnEquals": {"ec2:Vpc": vpc_arn}},
        },
    ]


MlflowKind = Literal["app", "server"]
"""SageMaker managed MLflow comes as a serverless MLflow App or a sized tracking server; IAM differs between them."""

# What a client does on a tracking server, spelled out (the policy pack forbids `sagemaker-mlflow:*`); every name is
# an action of AWS's authorization reference (the pack's iam-actions-exist policy checks that).
MLFLOW_CLIENT_OPERATIONS: tuple[str, ...] = (
    "CreateExperiment",
    "CreateModelVersion",
    "CreateRegisteredModel",
    "CreateRun",
    "DeleteTag",
    "FinalizeLoggedModel",
    "GetDownloadURIForModelVersionArtifacts",
    "GetExperiment",
    "GetExperimentByName",
    "GetLatestModelVersions",
    "GetLoggedModel",
    "GetMetricHistory",
    "GetModelVersion",
    "GetModelVersionByAlias",
    "GetRegisteredModel",
    "GetRun",
    "ListArtifacts",
    "ListLoggedModelArtifacts",
    "LogBatch",
    "LogInputs",
    "LogLoggedModelParams",
    "LogMetric",
    "LogModel",
    "LogOutputs",
    "LogParam",
    "SearchExperiments",
    "SearchLoggedModels",
    "SearchModelVersions",
    "SearchRegisteredModels",
    "SearchRuns",
    "SetExperimentTag",
    "SetLoggedModelTags",
    "SetRegisteredModelAlias",
    "SetRegisteredModelTag",
    "SetTag",
    "UpdateExperiment",
    "UpdateModelVersion",
    "UpdateRegisteredModel",
    "UpdateRun",
)


def mlflow_statements(
    kind: MlflowKind,
    arn: pulumi.Input[str],
    operations: Sequence[str] = MLFLOW_CLIENT_OPERATIONS,
    *,
    ui: bool = False,
    sid: str = "UseMlflow",
) -> list[Statement]:
    """The statements that let a role use one managed MLflow, for either kind; `ui` adds the web UI.

    An App is used through one action, `sagemaker:CallMlflowAppApi` on the app's ARN, which covers every MLflow
    operation (so `operations` does not narrow it); its UI opens through a presigned app URL. A tracking server
    authorizes each MLflow operation as its own `sagemaker-mlflow:` action on the server's ARN, except `AccessUI`,
    which AWS evaluates against `"*"` only.
    """
    if kind == "app":
        app_actions = ["sagemaker:CallMlflowAppApi"]
        if ui:
            app_actions.append("sagemaker:CreatePresignedMlflowAppUrl")
        return [{"Sid": sid, "Effect": "Allow", "Action": app_actions, "Resource": arn}]
    statements: list[Statement] = [
        {
            "Sid": sid,
            "Effect": "Allow",
            "Action": [f"sagemaker-mlflow:{operation}" for operation in operations],
            "Resource": arn,
        }
    ]
    if ui:
        statements += [
            {
                "Sid": f"{sid}PresignedUrl",
                "Effect": "Allow",
                "Action": ["sagemaker:CreatePresignedMlflowTrackingServerUrl"],
                "Resource": arn,
            },
            {
                "Sid": f"{sid}Ui",
                "Effect": "Allow",
                "Action": ["sagemaker-mlflow:AccessUI"],
                # AccessUI has no resource type in AWS's reference: only "*" grants it.
                "Resource": "*",
            },
        ]
    return statements
