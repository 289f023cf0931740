"""IAM helpers: policy documents from statements holding Outputs, service trust, image repositories."""

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components import iam, images
from mlplat import synth


def _document(record: synth.PlanRecord, type_token: str, key: str = "policy") -> dict[str, Any]:
    (resource,) = record.of_type(type_token)
    parsed: dict[str, Any] = json.loads(resource.inputs[key])
    return parsed


def test_policy_document_resolves_outputs_nested_in_statements() -> None:
    def program() -> None:
        bucket = aws.s3.Bucket("b")
        statement = {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [pulumi.Output.concat(bucket.arn, "/*")],
        }
        aws.iam.Policy("p", policy=iam.policy_document([statement]))
        pulumi.export("bucketArn", bucket.arn)

    record = synth.run(program)
    assert _document(record, "aws:iam/policy:Policy") == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"{record.outputs['bucketArn']}/*"]}
        ],
    }


def test_service_trust_pins_the_service_and_the_source_account() -> None:
    def program() -> None:
        aws.iam.Role("r", assume_role_policy=iam.service_trust("sagemaker.amazonaws.com", iam.account_id()))

    assert _document(synth.run(program), "aws:iam/role:Role", "assumeRolePolicy")["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        }
    ]


def test_key_admin_actions_are_spelled_out() -> None:
    assert all(a.startswith("kms:") and "*" not in a for a in iam.KEY_ADMIN_ACTIONS)
    assert "kms:PutKeyPolicy" in iam.KEY_ADMIN_ACTIONS


@pytest.mark.parametrize(
    ("image", "parsed"),
    [
        ("mlplat/serving:0.1.0", images.ImageRef(None, "mlplat/serving", "0.1.0")),
        ("mlplat/serving", images.ImageRef(None, "mlplat/serving", "latest")),
        ("localhost:5000/mlplat/serving:1", images.ImageRef("localhost:5000", "mlplat/serving", "1")),
        (
            "123456789012.dkr.ecr.us-west-2.amazonaws.com/team/model@sha256:" + "a" * 64,
            images.ImageRef("123456789012.dkr.ecr.us-west-2.amazonaws.com", "team/model", "sha256:" + "a" * 64),
        ),
    ],
)
def test_image_references_split_into_registry_repository_and_tag(image: str, parsed: images.ImageRef) -> None:
    assert images.parse(image) == parsed


def test_ecr_pull_is_scoped_to_the_images_repositories_and_skips_other_registries() -> None:
    def program() -> None:
        statements = images.ecr_pull_statements(
            ["mlplat/serving:0.1.0", "999999999999.dkr.ecr.eu-west-1.amazonaws.com/x/y:2", "ghcr.io/o/r:1"],
            "us-east-1",
            "123456789012",
            "aws",
        )
        aws.iam.Policy("p", policy=iam.policy_document(statements))

    pull = _document(synth.run(program), "aws:iam/policy:Policy")["Statement"][1]
    assert pull["Resource"] == [
        "arn:aws:ecr:us-east-1:123456789012:repository/mlplat/serving",
        "arn:aws:ecr:eu-west-1:999999999999:repository/x/y",
    ]


def test_service_trust_without_an_account_trusts_the_service_alone() -> None:
    def program() -> None:
        aws.iam.Role("r", assume_role_policy=iam.service_trust("lambda.amazonaws.com"))

    assert _document(synth.run(program), "aws:iam/role:Role", "assumeRolePolicy") == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def test_account_partition_root_and_log_group_arns_come_from_the_deploying_account() -> None:
    def program() -> None:
        account, arn_partition = iam.account_id(), iam.partition()
        pulumi.export("account", account)
        pulumi.export("partition", arn_partition)
        pulumi.export("root", iam.account_root_statement(account, arn_partition)["Principal"]["AWS"])
        pulumi.export("group", iam.log_group_arn("eu-west-1", account, arn_partition, "/aws/sagemaker/Endpoints"))

    assert synth.run(program).outputs == {
        "account": "123456789012",
        "partition": "aws",
        "root": "arn:aws:iam::123456789012:root",
        "group": "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints",
    }


def test_the_account_root_statement_administers_the_key_with_the_actions_spelled_out() -> None:
    statement = dict(iam.account_root_statement("111122223333", "aws-cn"))
    statement.pop("Principal")  # an Output; resolved in the test above
    assert statement == {
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Action": list(iam.KEY_ADMIN_ACTIONS),
        "Resource": "*",
    }


def test_cloudwatch_logs_of_the_region_may_use_the_key_for_one_log_group_only() -> None:
    group = "arn:aws:logs:eu-west-1:123456789012:log-group:/mlplat/drift"
    assert iam.logs_key_statement("eu-west-1", group) == {
        "Sid": "CloudWatchLogsUsesKeyForThisGroup",
        "Effect": "Allow",
        "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
        "Action": [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
            "kms:GenerateDataKey",
            "kms:DescribeKey",
        ],
        "Resource": "*",
        "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group}},
    }


def test_sagemaker_may_describe_the_network_and_manage_interfaces_in_the_platforms_vpc_only() -> None:
    vpc = "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0abc"
    assert iam.sagemaker_vpc_statements(vpc) == [
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
            "Resource": "*",
            "Condition": {"ArnEquals": {"ec2:Vpc": vpc}},
        },
    ]


APP = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-app/app-1"
SERVER = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/tracking"


def test_an_mlflow_app_is_used_through_one_action_on_the_app() -> None:
    assert iam.mlflow_statements("app", APP, ["GetRun"]) == [
        {"Sid": "UseMlflow", "Effect": "Allow", "Action": ["sagemaker:CallMlflowAppApi"], "Resource": APP}
    ]


def test_an_mlflow_apps_ui_adds_the_presigned_app_url() -> None:
    assert iam.mlflow_statements("app", APP, ui=True, sid="Team") == [
        {
            "Sid": "Team",
            "Effect": "Allow",
            "Action": ["sagemaker:CallMlflowAppApi", "sagemaker:CreatePresignedMlflowAppUrl"],
            "Resource": APP,
        }
    ]


def test_a_tracking_server_grants_each_operation_as_its_own_action_on_the_server() -> None:
    assert iam.mlflow_statements("server", SERVER, ["GetRun", "LogBatch"], sid="Reader") == [
        {
            "Sid": "Reader",
            "Effect": "Allow",
            "Action": ["sagemaker-mlflow:GetRun", "sagemaker-mlflow:LogBatch"],
            "Resource": SERVER,
        }
    ]


def test_a_tracking_server_grants_every_client_operation_by_default() -> None:
    (statement,) = iam.mlflow_statements("server", SERVER)
    assert statement["Action"] == [f"sagemaker-mlflow:{name}" for name in iam.MLFLOW_CLIENT_OPERATIONS]
    assert statement["Sid"] == "UseMlflow"


def test_a_tracking_servers_ui_adds_the_presigned_url_on_the_server_and_access_ui_on_star() -> None:
    assert iam.mlflow_statements("server", SERVER, ["GetRun"], ui=True) == [
        {"Sid": "UseMlflow", "Effect": "Allow", "Action": ["sagemaker-mlflow:GetRun"], "Resource": SERVER},
        {
            "Sid": "UseMlflowPresignedUrl",
            "Effect": "Allow",
            "Action": ["sagemaker:CreatePresignedMlflowTrackingServerUrl"],
            "Resource": SERVER,
        },
        {"Sid": "UseMlflowUi", "Effect": "Allow", "Action": ["sagemaker-mlflow:AccessUI"], "Resource": "*"},
    ]


def test_an_owned_role_policy_is_named_after_and_parented_by_the_component_that_grants_it() -> None:
    class Owner(pulumi.ComponentResource):
        def __init__(self) -> None:
            super().__init__("test:index:Owner", "team-a")

    def program() -> None:
        owner = Owner()
        role = aws.iam.Role("r", assume_role_policy=iam.service_trust("sagemaker.amazonaws.com"))
        statement = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}
        iam.owned_role_policy(owner, "data", role, (statement,))
        pulumi.export("roleId", role.id)

    record = synth.run(program)
    (policy,) = record.of_type("aws:iam/rolePolicy:RolePolicy")
    assert (policy.name, policy.parent) == ("team-a-data", "urn:pulumi:test::mlplat::test:index:Owner::team-a")
    assert policy.inputs["role"] == record.outputs["roleId"]
    assert json.loads(policy.inputs["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}],
    }


def test_writing_logs_covers_one_group_and_its_streams() -> None:
    group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/TrainingJobs"

    def program() -> None:
        aws.iam.Policy("p", policy=iam.policy_document([iam.write_logs_statement(group)]))

    assert _document(synth.run(program), "aws:iam/policy:Policy")["Statement"] == [
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Resource": [group, f"{group}:log-stream:*"],
        }
    ]
