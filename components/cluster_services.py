"""The cluster services a GPU cluster needs: the NVIDIA device plugin, the cluster-autoscaler and metrics-server.

Each is a Helm release at a pinned chart version, installed through the Kubernetes provider built from the cluster's
outputs. The autoscaler's IRSA role may change only Auto Scaling groups tagged as owned by this cluster; everything
else it gets is read-only.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import nodepool
from components.cluster import SYSTEM_POOL, irsa_trust_policy
from components.k8s_objects import GPU_TOLERATION


@dataclass(frozen=True)
class Chart:
    """A Helm chart pinned to one version."""

    chart: str
    version: str
    repo: str
    namespace: str = "kube-system"


DEVICE_PLUGIN = Chart("nvidia-device-plugin", "0.17.1", "https://nvidia.github.io/k8s-device-plugin")
CLUSTER_AUTOSCALER = Chart("cluster-autoscaler", "9.47.0", "https://kubernetes.github.io/autoscaler")
METRICS_SERVER = Chart("metrics-server", "3.12.2", "https://kubernetes-sigs.github.io/metrics-server/")

# The autoscaler's minor must match the cluster's (its scheduler simulation is built from that release).
AUTOSCALER_IMAGE_TAGS = {"1.31": "v1.31.2", "1.32": "v1.32.1", "1.33": "v1.33.0"}
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"

SYSTEM_NODE_SELECTOR = {nodepool.POOL_LABEL: SYSTEM_POOL}

# Read-only calls the autoscaler makes to discover groups and instance shapes; none supports resource scoping.
AUTOSCALER_DESCRIBE_ACTIONS = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
]
AUTOSCALER_WRITE_ACTIONS = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]


@dataclass(frozen=True)
class ClusterServicesArgs:
    """Inputs of the cluster services."""

    provider: k8s.Provider
    """Kubernetes provider of the cluster (built from its outputs)."""
    cluster_name: pulumi.Input[str]
    """The cluster's name: autoscaler auto-discovery and its tag conditions."""
    cluster_arn: pulumi.Input[str]
    """The cluster's ARN: scopes `eks:DescribeNodegroup` to this cluster's node groups."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider, trusted by the autoscaler's role."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL, keying the trust conditions."""
    region: str
    """AWS region the autoscaler calls."""
    kubernetes_version: str
    """Cluster minor version; picks the autoscaler image."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the AWS resources here."""


def autoscaler_policy(cluster_name: str, cluster_arn: str) -> dict[str, Any]:
    """The autoscaler's permissions: scale and terminate only groups this cluster owns, describe the rest."""
    nodegroups = cluster_arn.replace(":cluster/", ":nodegroup/", 1) + "/*/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ScaleOwnedGroups",
                "Effect": "Allow",
                "Action": AUTOSCALER_WRITE_ACTIONS,
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned",
                        "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
                    }
                },
            },
            {"Sid": "Discover", "Effect": "Allow", "Action": AUTOSCALER_DESCRIBE_ACTIONS, "Resource": "*"},
            {"Sid": "ReadNodeGroups", "Effect": "Allow", "Action": ["eks:DescribeNodegroup"], "Resource": nodegroups},
        ],
    }


def device_plugin_values() -> dict[str, Any]:
    """Run the device plugin on GPU nodes only, tolerating their taint."""
    return {
        "tolerations": [GPU_TOLERATION],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": nodepool.GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]}
                            ]
                        }
                    ]
                }
            }
        },
        "priorityClassName": "system-node-critical",
    }


def autoscaler_values(
    cluster_name: pulumi.Input[str], role_arn: pulumi.Input[str], region: str, image_tag: str
) -> dict[str, Any]:
    """Auto-discover this cluster's groups, balance similar pools, pick the least waste, run on system nodes."""
    return {
        "autoDiscovery": {"clusterName": cluster_name},
        "awsRegion": region,
        "cloudProvider": "aws",
        "image": {"tag": image_tag},
        "rbac": {
            "serviceAccount": {
                "create": True,
                "name": AUTOSCALER_SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            }
        },
        "extraArgs": {
            "balance-similar-node-groups": True,
            "expander": "least-waste",
            "skip-nodes-with-system-pods": False,
            "scale-down-unneeded-time": "10m",
            "scale-down-delay-after-add": "10m",
        },
        "nodeSelector": SYSTEM_NODE_SELECTOR,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534},
        "containerSecurityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def metrics_server_values() -> dict[str, Any]:
    """Two replicas on the system nodes, so HPA metrics survive a node drain."""
    return {
        "replicas": 2,
        "nodeSelector": SYSTEM_NODE_SELECTOR,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
    }


class ClusterServices(pulumi.ComponentResource):
    """The NVIDIA device plugin, the cluster-autoscaler (with its scoped IRSA role) and metrics-server."""

    autoscaler_role_arn: pulumi.Output[str]
    releases: dict[str, k8s.helm.v3.Release]

    def __init__(self, name: str, args: ClusterServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if args.kubernetes_version not in AUTOSCALER_IMAGE_TAGS:
            known = ", ".join(AUTOSCALER_IMAGE_TAGS)
            raise ValueError(
                f"mlplat:cluster.version has no pinned cluster-autoscaler image; use one of {known} "
                f"(got {args.kubernetes_version!r})"
            )
        super().__init__("mlplat:cluster_services:ClusterServices", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider)

        role = aws.iam.Role(
            f"{name}-autoscaler-role",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn, args.oidc_issuer, CLUSTER_AUTOSCALER.namespace, AUTOSCALER_SERVICE_ACCOUNT
            ),
            tags=dict(args.tags),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-autoscaler-policy",
            role=role.id,
            policy=pulumi.Output.all(args.cluster_name, args.cluster_arn).apply(
                lambda v: json.dumps(autoscaler_policy(v[0], v[1]))
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )

        self.releases = {
            "device-plugin": self._release(name, "device-plugin", DEVICE_PLUGIN, device_plugin_values(), on_cluster),
            "autoscaler": self._release(
                name,
                "autoscaler",
                CLUSTER_AUTOSCALER,
                autoscaler_values(
                    args.cluster_name, role.arn, args.region, AUTOSCALER_IMAGE_TAGS[args.kubernetes_version]
                ),
                pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[policy])),
            ),
            "metrics-server": self._release(
                name, "metrics-server", METRICS_SERVER, metrics_server_values(), on_cluster
            ),
        }
        self.autoscaler_role_arn = role.arn
        self.register_outputs({"autoscalerRoleArn": role.arn})

    @staticmethod
    def _release(
        name: str, role: str, chart: Chart, values: Mapping[str, Any], opts: pulumi.ResourceOptions
    ) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            f"{name}-{role}",
            chart=chart.chart,
            version=chart.version,
            repository_opts={"repo": chart.repo},
            namespace=chart.namespace,
            values=dict(values),
            atomic=True,
            cleanup_on_fail=True,
            opts=opts,
        )
