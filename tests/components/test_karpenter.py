"""KarpenterController under mocks: the controller's role statement by statement, its IRSA trust, the node role and
profile, the interruption queue with its four EventBridge rules and its policy, the discovery tags, the release."""

import json
from typing import Any

import botocore.session
import pulumi_kubernetes as k8s
import pytest
from gpu_mocks import ACCOUNT, OIDC_HOST, OIDC_ISSUER, Synthesis, synthesize

from components import versions
from components.karpenter import KarpenterArgs, KarpenterController, controller_policy, queue_policy

CLUSTER = "mlplat-prod-compute-cluster"
CLUSTER_ARN = f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{CLUSTER}"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC_HOST}"
EC2 = f"arn:aws:ec2:us-east-1:{ACCOUNT}"
NODE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/kp-node-role"
PROFILE = f"arn:aws:mock:us-east-1:{ACCOUNT}:kp-node-profile"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:kp-interruptions"
OWNED = {
    f"aws:RequestTag/kubernetes.io/cluster/{CLUSTER}": "owned",
    "aws:RequestTag/eks:eks-cluster-name": CLUSTER,
}
CREATED = [
    f"{EC2}:fleet/*",
    f"{EC2}:instance/*",
    f"{EC2}:volume/*",
    f"{EC2}:network-interface/*",
    f"{EC2}:launch-template/*",
    f"{EC2}:spot-instances-request/*",
]
RESOURCE_TAGGED = {
    "StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{CLUSTER}": "owned"},
    "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
}


def _build() -> dict[str, object]:
    provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
    controller = KarpenterController(
        "kp",
        KarpenterArgs(
            provider=provider,
            cluster_name=CLUSTER,
            cluster_arn=CLUSTER_ARN,
            oidc_provider_arn=OIDC_ARN,
            oidc_issuer=OIDC_ISSUER,
            region="us-east-1",
            subnet_ids=["subnet-a", "subnet-b"],
            cluster_security_group_id="sg-cluster",
            tags={"mlplat:environment": "prod"},
        ),
    )
    return {"role": controller.role_arn}


@pytest.fixture(scope="module")
def plan() -> Synthesis:
    return synthesize(_build)


@pytest.fixture(scope="module")
def statements(plan: Synthesis) -> dict[str, dict[str, Any]]:
    found = plan.named("kp-policy").policy()["Statement"]
    return {s.pop("Sid"): s for s in found}


def test_the_controller_policy_has_exactly_the_reference_statements_it_needs(
    statements: dict[str, dict[str, Any]],
) -> None:
    assert list(statements) == [
        "AllowScopedEC2InstanceAccessActions",
        "AllowScopedEC2LaunchTemplateAccessActions",
        "AllowScopedEC2InstanceActionsWithTags",
        "AllowScopedResourceCreationTagging",
        "AllowScopedResourceTagging",
        "AllowScopedDeletion",
        "AllowRegionalReadActions",
        "AllowSSMReadActions",
        "AllowPricingReadActions",
        "AllowInterruptionQueueActions",
        "AllowPassingInstanceRole",
        "AllowInstanceProfileReadActions",
        "AllowAPIServerEndpointDiscovery",
    ]


def test_launches_may_use_existing_amis_subnets_groups_and_reservations(statements: dict[str, Any]) -> None:
    assert statements["AllowScopedEC2InstanceAccessActions"] == {
        "Effect": "Allow",
        "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
        "Resource": [
            "arn:aws:ec2:us-east-1::image/*",
            "arn:aws:ec2:us-east-1::snapshot/*",
            f"{EC2}:security-group/*",
            f"{EC2}:subnet/*",
            f"{EC2}:capacity-reservation/*",
        ],
    }


def test_launches_may_use_only_launch_templates_this_cluster_owns(statements: dict[str, Any]) -> None:
    assert statements["AllowScopedEC2LaunchTemplateAccessActions"] == {
        "Effect": "Allow",
        "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
        "Resource": f"{EC2}:launch-template/*",
        "Condition": RESOURCE_TAGGED,
    }


def test_run_instances_and_create_fleet_create_only_resources_tagged_with_the_cluster(
    statements: dict[str, Any],
) -> None:
    assert statements["AllowScopedEC2InstanceActionsWithTags"] == {
        "Effect": "Allow",
        "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
        "Resource": CREATED,
        "Condition": {"StringEquals": OWNED, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}},
    }


def test_tags_may_be_written_only_while_creating_cluster_tagged_resources(statements: dict[str, Any]) -> None:
    assert statements["AllowScopedResourceCreationTagging"] == {
        "Effect": "Allow",
        "Action": "ec2:CreateTags",
        "Resource": CREATED,
        "Condition": {
            "StringEquals": {**OWNED, "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
            "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
        },
    }


def test_existing_instances_may_gain_only_the_node_claim_name_and_cluster_tags(statements: dict[str, Any]) -> None:
    assert statements["AllowScopedResourceTagging"] == {
        "Effect": "Allow",
        "Action": "ec2:CreateTags",
        "Resource": f"{EC2}:instance/*",
        "Condition": {
            **RESOURCE_TAGGED,
            "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]},
        },
    }


def test_only_this_clusters_instances_and_templates_may_be_deleted(statements: dict[str, Any]) -> None:
    assert statements["AllowScopedDeletion"] == {
        "Effect": "Allow",
        "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
        "Resource": [f"{EC2}:instance/*", f"{EC2}:launch-template/*"],
        "Condition": RESOURCE_TAGGED,
    }


def test_describe_calls_are_limited_to_the_clusters_region(statements: dict[str, Any]) -> None:
    read = statements["AllowRegionalReadActions"]
    assert read["Resource"] == "*"
    assert read["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
    assert all(a.startswith("ec2:Describe") for a in read["Action"])


def test_ssm_reads_only_the_public_aws_parameters_and_pricing_is_read_only(statements: dict[str, Any]) -> None:
    assert statements["AllowSSMReadActions"]["Resource"] == "arn:aws:ssm:us-east-1::parameter/aws/service/*"
    assert statements["AllowSSMReadActions"]["Action"] == "ssm:GetParameter"
    assert statements["AllowPricingReadActions"]["Action"] == "pricing:GetProducts"


def test_the_queue_actions_name_only_the_interruption_queue(statements: dict[str, Any]) -> None:
    assert statements["AllowInterruptionQueueActions"] == {
        "Effect": "Allow",
        "Action": ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
        "Resource": QUEUE,
    }


def test_pass_role_names_only_the_node_role_and_only_for_ec2(statements: dict[str, Any]) -> None:
    assert statements["AllowPassingInstanceRole"] == {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": NODE_ROLE,
        "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
    }


def test_the_controller_reads_only_its_profile_and_its_cluster(statements: dict[str, Any]) -> None:
    assert statements["AllowInstanceProfileReadActions"]["Resource"] == PROFILE
    assert statements["AllowAPIServerEndpointDiscovery"] == {
        "Effect": "Allow",
        "Action": "eks:DescribeCluster",
        "Resource": CLUSTER_ARN,
    }


def test_every_action_granted_is_an_operation_of_its_service_in_botocores_models() -> None:
    document = controller_policy(CLUSTER, CLUSTER_ARN, "us-east-1", ACCOUNT, "aws", NODE_ROLE, PROFILE, QUEUE)
    actions = {
        a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    session = botocore.session.get_session()
    # iam:PassRole authorizes handing a role to EC2; it is a permission, not an API operation.
    unknown = [
        action
        for action in sorted(actions - {"iam:PassRole"})
        if action.split(":")[1] not in session.get_service_model(action.split(":")[0]).operation_names
    ]
    assert unknown == []


def test_only_the_karpenter_service_account_may_assume_the_controller_role(plan: Synthesis) -> None:
    trust = json.loads(plan.named("kp-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {
            f"{OIDC_HOST}:sub": "system:serviceaccount:kube-system:karpenter",
            f"{OIDC_HOST}:aud": "sts.amazonaws.com",
        }
    }


def test_nodes_join_through_an_ec2_linux_access_entry_for_the_node_role(plan: Synthesis) -> None:
    entry = plan.named("kp-node-access").inputs
    assert (entry["type"], entry["principalArn"], entry["clusterName"]) == ("EC2_LINUX", NODE_ROLE, CLUSTER)
    assert plan.named("kp-node-profile").inputs["role"] == "kp-node-role"


def test_the_interruption_queue_is_encrypted_and_keeps_messages_five_minutes(plan: Synthesis) -> None:
    queue = plan.named("kp-interruptions").inputs
    assert queue["sqsManagedSseEnabled"] is True
    assert queue["messageRetentionSeconds"] == 300


def test_four_eventbridge_rules_feed_the_queue(plan: Synthesis) -> None:
    patterns = {
        r.name: json.loads(r.inputs["eventPattern"]) for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")
    }
    assert patterns == {
        "kp-spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
        "kp-rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
        "kp-instance-state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
        "kp-scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    }
    assert {t.inputs["arn"] for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget")} == {QUEUE}


def test_the_queue_accepts_events_only_from_its_rules_and_only_over_tls() -> None:
    assert queue_policy(QUEUE, ["arn:rule/a"])["Statement"] == [
        {
            "Sid": "AllowInterruptionEvents",
            "Effect": "Allow",
            "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
            "Action": "sqs:SendMessage",
            "Resource": QUEUE,
            "Condition": {"ArnEquals": {"aws:SourceArn": ["arn:rule/a"]}},
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": QUEUE,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]


def test_the_subnets_and_cluster_security_group_get_the_discovery_tag(plan: Synthesis) -> None:
    tags = {(t.inputs["resourceId"], t.inputs["key"], t.inputs["value"]) for t in plan.of_type("aws:ec2/tag:Tag")}
    assert tags == {(rid, "karpenter.sh/discovery", CLUSTER) for rid in ("subnet-a", "subnet-b", "sg-cluster")}


def test_the_release_is_the_pinned_chart_on_the_system_nodes_with_the_queue_and_node_repair(plan: Synthesis) -> None:
    release = plan.named("kp-release").inputs
    assert (release["chart"], release["version"], release["namespace"]) == (
        "oci://public.ecr.aws/karpenter/karpenter",
        versions.KARPENTER.version,
        "kube-system",
    )
    values = release["values"]
    assert values["nodeSelector"] == {"mlplat.io/pool": "system"}
    assert values["settings"] == {
        "clusterName": CLUSTER,
        "interruptionQueue": "kp-interruptions",
        "featureGates": {"nodeRepair": True},
    }
    assert values["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/kp-role"
    }
