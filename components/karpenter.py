"""The Karpenter controller of a GPU cluster: its tag-scoped IAM role, its node role, its interruption queue and the
pinned Helm release that runs it on the system node group.

The controller's policy follows Karpenter's reference controller policy (`cloudformation.yaml` of
aws/karpenter-provider-aws), scoped tighter: instances, fleets, volumes and launch templates may be created only when
the request tags them as owned by this cluster, existing launch templates are usable only when they carry that tag,
`iam:PassRole` names the one node role, and the queue actions name the one queue. The node instance profile is
created here (and named in each EC2NodeClass), so the controller needs no instance-profile write actions.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import iam, nodepool, versions
from components.cluster import SYSTEM_POOL, irsa_trust_policy

SERVICE_ACCOUNT = "karpenter"
DISCOVERY_TAG = "karpenter.sh/discovery"
"""Tag on the private subnets and the cluster security group that each EC2NodeClass selects them by."""
NODEPOOL_TAG = "karpenter.sh/nodepool"
EKS_CLUSTER_NAME_TAG = "eks:eks-cluster-name"

# EventBridge events Karpenter acts on before EC2 takes a node away: (rule role, source, detail-type).
INTERRUPTION_EVENTS = (
    ("spot-interruption", "aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("rebalance", "aws.ec2", "EC2 Instance Rebalance Recommendation"),
    ("instance-state-change", "aws.ec2", "EC2 Instance State-change Notification"),
    ("scheduled-change", "aws.health", "AWS Health Event"),
)
QUEUE_RETENTION_SECONDS = 300
QUEUE_ACTIONS = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]
READ_ACTIONS = [
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeCapacityReservations",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
]


@dataclass(frozen=True)
class ClusterAccess:
    """What Karpenter (and the cluster services that install it) need to know of the cluster."""

    provider: k8s.Provider
    """Kubernetes provider of the cluster (built from its outputs)."""
    cluster_name: pulumi.Input[str]
    """The cluster Karpenter provisions for; keys its settings and every tag condition."""
    cluster_arn: pulumi.Input[str]
    """The cluster's ARN (`eks:DescribeCluster`: Karpenter discovers the API endpoint from it)."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider, trusted by the controller's role."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL, keying the trust conditions."""
    region: str
    """AWS region of the cluster."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets GPU nodes launch in; each gets the discovery tag."""
    cluster_security_group_id: pulumi.Input[str]
    """The security group EKS made for the cluster; GPU nodes join it (discovery tag)."""


@dataclass(frozen=True)
class KarpenterArgs(ClusterAccess):
    """Inputs of the Karpenter controller."""

    chart: versions.Chart = versions.KARPENTER
    """The pinned Karpenter chart (from the cluster version's row)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the AWS resources here."""


def controller_policy(
    cluster_name: str,
    cluster_arn: str,
    region: str,
    account: str,
    partition: str,
    node_role_arn: str,
    instance_profile_arn: str,
    queue_arn: str,
) -> dict[str, Any]:
    """The controller's statements: Karpenter's reference policy, scoped to this cluster's tags, role and queue."""
    ec2 = f"arn:{partition}:ec2:{region}"
    created = [f"{ec2}:{account}:{kind}/*" for kind in ("fleet", "instance", "volume", "network-interface")]
    created += [f"{ec2}:{account}:launch-template/*", f"{ec2}:{account}:spot-instances-request/*"]
    owned = {f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}": "owned"}
    request_tagged = {
        "StringEquals": {**owned, f"aws:RequestTag/{EKS_CLUSTER_NAME_TAG}": cluster_name},
        "StringLike": {f"aws:RequestTag/{NODEPOOL_TAG}": "*"},
    }
    resource_tagged = {
        "StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"},
        "StringLike": {f"aws:ResourceTag/{NODEPOOL_TAG}": "*"},
    }
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # Existing inputs of a launch: public AMIs and snapshots, the VPC's subnets and groups, reservations.
                "Sid": "AllowScopedEC2InstanceAccessActions",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Resource": [
                    f"{ec2}::image/*",
                    f"{ec2}::snapshot/*",
                    f"{ec2}:{account}:security-group/*",
                    f"{ec2}:{account}:subnet/*",
                    f"{ec2}:{account}:capacity-reservation/*",
                ],
            },
            {
                "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Resource": f"{ec2}:{account}:launch-template/*",
                "Condition": resource_tagged,
            },
            {
                "Sid": "AllowScopedEC2InstanceActionsWithTags",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                "Resource": created,
                "Condition": request_tagged,
            },
            {
                "Sid": "AllowScopedResourceCreationTagging",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": created,
                "Condition": {
                    "StringEquals": {
                        **request_tagged["StringEquals"],
                        "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                    },
                    "StringLike": request_tagged["StringLike"],
                },
            },
            {
                "Sid": "AllowScopedResourceTagging",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": f"{ec2}:{account}:instance/*",
                "Condition": {
                    **resource_tagged,
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": [EKS_CLUSTER_NAME_TAG, "karpenter.sh/nodeclaim", "Name"]
                    },
                },
            },
            {
                "Sid": "AllowScopedDeletion",
                "Effect": "Allow",
                "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                "Resource": [f"{ec2}:{account}:instance/*", f"{ec2}:{account}:launch-template/*"],
                "Condition": resource_tagged,
            },
            {
                "Sid": "AllowRegionalReadActions",
                "Effect": "Allow",
                "Action": READ_ACTIONS,
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
            },
            {
                "Sid": "AllowSSMReadActions",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*",
            },
            {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Action": "pricing:GetProducts", "Resource": "*"},
            {
                "Sid": "AllowInterruptionQueueActions",
                "Effect": "Allow",
                "Action": QUEUE_ACTIONS,
                "Resource": queue_arn,
            },
            {
                "Sid": "AllowPassingInstanceRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": node_role_arn,
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            },
            {
                "Sid": "AllowInstanceProfileReadActions",
                "Effect": "Allow",
                "Action": "iam:GetInstanceProfile",
                "Resource": instance_profile_arn,
            },
            {
                "Sid": "AllowAPIServerEndpointDiscovery",
                "Effect": "Allow",
                "Action": "eks:DescribeCluster",
                "Resource": cluster_arn,
            },
        ],
    }


def queue_policy(queue_arn: str, rule_arns: list[str]) -> dict[str, Any]:
    """EventBridge may send to the queue only from this cluster's rules; nothing reaches it without TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowInterruptionEvents",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def controller_values(
    cluster_name: pulumi.Input[str], queue_name: pulumi.Input[str], role_arn: pulumi.Input[str]
) -> dict[str, Any]:
    """Two replicas on the system nodes (never on nodes it manages), the interruption queue, node repair on."""
    return {
        "replicas": 2,
        "nodeSelector": {nodepool.POOL_LABEL: SYSTEM_POOL},
        "serviceAccount": {"name": SERVICE_ACCOUNT, "annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        "settings": {
            "clusterName": cluster_name,
            "interruptionQueue": queue_name,
            # Replaces GPU nodes whose NVIDIA driver or accelerator the node monitoring agent reports unhealthy.
            "featureGates": {"nodeRepair": True},
        },
        "controller": {
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
        },
    }


class KarpenterController(pulumi.ComponentResource):
    """Karpenter's IAM role, node role and instance profile, interruption queue and rules, and its Helm release."""

    role_arn: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    instance_profile_name: pulumi.Output[str]
    queue_name: pulumi.Output[str]
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:karpenter:KarpenterController", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        account, partition = iam.account_id(), iam.partition()

        node_role, node_role_deps = nodepool.create_node_role(f"{name}-node", tags, self)
        profile = aws.iam.InstanceProfile(f"{name}-node-profile", role=node_role.name, tags=tags, opts=child)
        # Karpenter's nodes join through an access entry for their role (the cluster has no aws-auth ConfigMap).
        node_access = aws.eks.AccessEntry(
            f"{name}-node-access",
            cluster_name=args.cluster_name,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_role_deps),
        )

        for i, subnet_id in enumerate(args.subnet_ids):
            aws.ec2.Tag(
                f"{name}-subnet-{i}-discovery",
                resource_id=subnet_id,
                key=DISCOVERY_TAG,
                value=args.cluster_name,
                opts=child,
            )
        aws.ec2.Tag(
            f"{name}-sg-discovery",
            resource_id=args.cluster_security_group_id,
            key=DISCOVERY_TAG,
            value=args.cluster_name,
            opts=child,
        )

        queue = aws.sqs.Queue(
            f"{name}-interruptions",
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            tags=tags,
            opts=child,
        )
        rules = []
        for event, source, detail_type in INTERRUPTION_EVENTS:
            rule = aws.cloudwatch.EventRule(
                f"{name}-{event}",
                description=f"{detail_type} events for Karpenter",
                event_pattern=json.dumps({"source": [source], "detail-type": [detail_type]}),
                tags=tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{event}-target", rule=rule.name, arn=queue.arn, opts=pulumi.ResourceOptions(parent=rule)
            )
            rules.append(rule)
        aws.sqs.QueuePolicy(
            f"{name}-interruptions-policy",
            queue_url=queue.url,
            policy=pulumi.Output.all(queue.arn, *(r.arn for r in rules)).apply(
                lambda v: json.dumps(queue_policy(v[0], list(v[1:])))
            ),
            opts=pulumi.ResourceOptions(parent=queue),
        )

        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn, args.oidc_issuer, args.chart.namespace, SERVICE_ACCOUNT
            ),
            tags=tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(
                args.cluster_name, args.cluster_arn, account, partition, node_role.arn, profile.arn, queue.arn
            ).apply(lambda v: json.dumps(controller_policy(v[0], v[1], args.region, *v[2:]))),
            opts=pulumi.ResourceOptions(parent=role),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            chart=args.chart.chart,
            version=args.chart.version,
            namespace=args.chart.namespace,
            values=controller_values(args.cluster_name, queue.name, role.arn),
            atomic=True,
            cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[policy, node_access]),
        )
        self.role_arn = role.arn
        self.node_role_arn = node_role.arn
        self.instance_profile_name = profile.name
        self.queue_name = queue.name
        self.register_outputs(
            {
                "roleArn": role.arn,
                "nodeRoleArn": node_role.arn,
                "instanceProfileName": profile.name,
                "queueArn": queue.arn,
            }
        )
