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
