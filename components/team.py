"""A team's namespace on the GPU cluster: a CPU/memory quota, its Kueue LocalQueue (Kueue admits GPUs gang by gang),
default limits, default-deny networking, and one service account whose IRSA role reaches the team's slice of the
platform and nothing else.

`render_team_namespace` is the one source of the Kubernetes objects (plain dicts); the component registers exactly
those. The role's statements come in through the args; `team_role_statements` builds the standard set from the
artifact store's and tracking server's grant methods: read `datasets/`, read and write `checkpoints/` and `mlflow/`,
use the bucket's key, call the tracking server.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import iam
from components.artifacts import ArtifactStore
from components.cluster import irsa_trust_policy
from components.k8s_objects import create_objects
from components.kueue import render_local_queue
from components.problems import Problem, at, at_least, refuse
from components.tracking import TrackingServer
from contracts.bucket import CHECKPOINTS_PREFIX, CODE_PREFIX, DATA_CAPTURE_PREFIX, DATASETS_PREFIX, MLFLOW_PREFIX

SERVICE_ACCOUNT = "workload"
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
TEAM_LABEL = "mlplat.io/team"
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")

# code/: `mlplat train --on eks --entry-point` runs the user's source archive uploaded there.
READ_PREFIXES = (DATASETS_PREFIX, CHECKPOINTS_PREFIX, MLFLOW_PREFIX, CODE_PREFIX)
# data-capture/: a team's cluster-served endpoints write their captured requests there for the drift monitor.
WRITE_PREFIXES = (CHECKPOINTS_PREFIX, MLFLOW_PREFIX, DATA_CAPTURE_PREFIX)


@dataclass(frozen=True)
class TeamSpec:
    """What a team's namespace holds, as plain values."""

    team: str
    """Namespace name (the team's name in config)."""
    gpu_quota: int
    """GPUs the team's ClusterQueue holds as nominal quota (more may be borrowed from idle teams)."""
    cpu_quota: str = "32"
    """CPU requests quota."""
    memory_quota: str = "128Gi"
    """Memory requests and limits quota."""
    vpc_cidr: str = "10.0.0.0/16"
    """The VPC's CIDR: HTTPS to the interface endpoints inside it is allowed."""
    public_https_egress: bool = True
    """Allow HTTPS to public addresses (the S3 gateway endpoint and SageMaker MLflow answer there)."""
    service_account: str = SERVICE_ACCOUNT
    """The one service account whose role reaches AWS."""
    default_cpu_request: str = "500m"
    """Container CPU request when a pod names none."""
    default_memory_request: str = "1Gi"
    """Container memory request when a pod names none."""
    default_cpu_limit: str = "2"
    """Container CPU limit when a pod names none."""
    default_memory_limit: str = "4Gi"
    """Container memory limit when a pod names none."""


def problems(prefix: str, *, gpu_quota: int, gpu_supply: int | None = None) -> list[Problem]:
    """Problems with a team's quota under `prefix` (`mlplat:teams[0]`, or empty for the component's own);
    `gpu_supply` is the most GPUs the stack's pools can ever hold together."""
    key = at(prefix, "gpuQuota")
    found = at_least(key, gpu_quota, 0)
    if gpu_supply is not None and gpu_quota > gpu_supply:
        found.append(Problem(key, f"is more than the GPU pools can ever supply (got {gpu_quota} > {gpu_supply})"))
    return found


@dataclass(frozen=True)
class TeamNamespaceArgs:
    """Inputs of one team's namespace."""

    spec: TeamSpec
    """Quota, network and naming settings."""
    provider: k8s.Provider
    """Kubernetes provider of the cluster."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL."""
    statements: Sequence[iam.Statement]
    """Everything the team's role may do (`team_role_statements` builds the standard set)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the IAM role."""


def team_role_statements(artifacts: ArtifactStore, tracking: TrackingServer) -> list[iam.Statement]:
    """Read `datasets/`, read and write `checkpoints/` and `mlflow/`, use the bucket's key, call the tracking server.

    Built from the artifact store's and tracking server's own grant methods, so the ARNs and actions have one source.
    """
    statements: list[iam.Statement] = []
    for prefix in READ_PREFIXES:
        statements += artifacts.read_statements(prefix)
    for prefix in WRITE_PREFIXES:
        statements += artifacts.write_statements(prefix)
    return [*statements, *artifacts.kms_statements(), *tracking.client_statements(ui=True)]


def render_team_namespace(spec: TeamSpec, role_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """The team's Kubernetes objects, namespace first; `role_arn` may be an Output."""
    ns = spec.team
    meta = {"namespace": ns, "labels": {TEAM_LABEL: ns}}

    def named(name: str) -> dict[str, Any]:
        return {"name": name, **meta}

    https_peers: list[dict[str, Any]] = [{"ipBlock": {"cidr": spec.vpc_cidr}}]
    if spec.public_https_egress:
        https_peers.append({"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}})
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {
                    TEAM_LABEL: ns,
                    # Every pod must run as the restricted profile says; the workload renderers comply.
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": named("compute-quota"),
            # No GPU line: Kueue admits GPUs whole gangs at a time, and a quota here would cut a borrowed gang in two.
            "spec": {
                "hard": {
                    "requests.cpu": spec.cpu_quota,
                    "requests.memory": spec.memory_quota,
                    "limits.memory": spec.memory_quota,
                }
            },
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": named("container-defaults"),
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "defaultRequest": {"cpu": spec.default_cpu_request, "memory": spec.default_memory_request},
                        "default": {"cpu": spec.default_cpu_limit, "memory": spec.default_memory_limit},
                    }
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {**named(spec.service_account), "annotations": {ROLE_ARN_ANNOTATION: role_arn}},
            # Workloads reach AWS through the IRSA token, never the Kubernetes API.
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": named("default-deny"),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": named("allow-dns"),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            # torchrun's rendezvous and NCCL talk rank to rank on ports chosen at run time.
            "metadata": named("allow-same-namespace"),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": named("allow-https-egress"),
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"to": https_peers, "ports": [{"protocol": "TCP", "port": 443}]}],
            },
        },
        render_local_queue(ns),
    ]


class TeamNamespace(pulumi.ComponentResource):
    """One team's namespace, quota, limits, network policies and IRSA service account."""

    namespace: str
    service_account: str
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TeamNamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        refuse(f"TeamNamespace {name}", problems("", gpu_quota=args.spec.gpu_quota))
        super().__init__("mlplat:team:TeamNamespace", name, None, opts)
        spec = args.spec
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn, args.oidc_issuer, spec.team, spec.service_account
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=iam.policy_document(args.statements),
            opts=pulumi.ResourceOptions(parent=role),
        )
        create_objects(
            name, render_team_namespace(spec, role.arn), pulumi.ResourceOptions(parent=self, provider=args.provider)
        )
        self.namespace = spec.team
        self.service_account = spec.service_account
        self.role_arn = role.arn
        self.register_outputs({"namespace": spec.team, "serviceAccount": spec.service_account, "roleArn": role.arn})
