"""The EKS control plane mlplat's GPU pools join: private, encrypted, fully logged, with IRSA and pinned add-ons.

Access uses the EKS access-entry API only (no `aws-auth` ConfigMap). When the stack names an admin role, that role
gets cluster admin through an access entry and is the role the Kubernetes provider assumes; the identity that creates
the cluster gets nothing. Without an admin role the creator keeps the bootstrap admin grant, so a first deploy works.

The cluster's physical name is derived from the component's name (not auto-suffixed) because the control-plane log
group must exist, with its retention and KMS key, under `/aws/eks/<cluster>/cluster` before EKS first writes to it.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import config, iam, keys, nodepool, versions
from components.problems import Problem, at, refuse

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CLUSTER_ADMIN_POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
STS_AUDIENCE = "sts.amazonaws.com"
SYSTEM_POOL = "system"

SUPPORTED_VERSIONS = versions.SUPPORTED_VERSIONS


@dataclass(frozen=True)
class GpuClusterArgs:
    """Inputs of the EKS control plane and its system node group."""

    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets for the control-plane ENIs and the system nodes."""
    region: str
    """AWS region, for the kubeconfig's token command."""
    version: str = "1.35"
    """Kubernetes minor version; one of `SUPPORTED_VERSIONS`."""
    allow_extended_support: bool = False
    """Let EKS keep a version past its end of standard support (billed as extended support)."""
    public_access_cidrs: Sequence[str] = ()
    """CIDRs allowed to reach a public API endpoint; empty keeps the endpoint private only."""
    admin_role_arn: str | None = None
    """IAM role granted cluster admin through an access entry (and assumed by the Kubernetes provider)."""
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Extra security groups for the control-plane ENIs."""
    system_instance_type: str = "m6i.large"
    """On-demand instance type of the system node group."""
    system_min_size: int = 1
    """Fewest system nodes."""
    system_max_size: int = 3
    """Most system nodes."""
    system_disk_size_gib: int = 50
    """Encrypted gp3 volume of each system node."""
    log_retention_days: int = 90
    """Retention of the control-plane log group."""
    deletion_protection: bool = False
    """Refuse `DeleteCluster` until this is turned off."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every AWS resource here."""


def problems(
    prefix: str,
    *,
    version: str,
    allow_extended_support: bool,
    public_access_cidrs: Sequence[str],
    system_min_size: int,
    system_max_size: int,
    today: date,
) -> list[Problem]:
    """Problems with the control-plane settings under `prefix` (`mlplat:cluster`, or empty for the component's own)."""
    found = versions.problems(at(prefix, "version"), version, allow_extended=allow_extended_support, today=today)
    for j, cidr in enumerate(public_access_cidrs):
        if cidr in ("0.0.0.0/0", "::/0"):
            found.append(
                Problem(at(prefix, f"publicAccessCidrs[{j}]"), f"must not open the API to the internet (got {cidr!r})")
            )
    if system_max_size < system_min_size:
        found.append(
            Problem(
                at(prefix, "systemNodes.maxSize"), f"must be >= minSize (got {system_max_size} < {system_min_size})"
            )
        )
    return found


def oidc_host(issuer: str | None) -> str:
    """`https://oidc.eks.<region>.amazonaws.com/id/<ID>` -> the form IAM condition keys use (no scheme)."""
    return (issuer or "").removeprefix("https://")


def irsa_trust_policy(
    oidc_provider_arn: pulumi.Input[str], oidc_issuer: pulumi.Input[str], namespace: str, service_account: str
) -> pulumi.Output[str]:
    """A trust policy that lets exactly one Kubernetes service account assume the role through the cluster's OIDC."""

    def document(values: list[Any]) -> str:
        provider_arn, issuer = values
        host = oidc_host(issuer)
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": provider_arn},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                                f"{host}:aud": STS_AUDIENCE,
                            }
                        },
                    }
                ],
            }
        )

    return pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(document)


def kubeconfig(
    cluster_name: str, endpoint: str | None, ca_data: str | None, region: str, role_arn: str | None
) -> dict[str, Any]:
    """A kubeconfig that gets a token from `aws eks get-token`, assuming the admin role when there is one."""
    args = ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"]
    if role_arn:
        args += ["--role-arn", role_arn]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster_name, "cluster": {"server": endpoint or "", "certificate-authority-data": ca_data or ""}}
        ],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [
            {
                "name": cluster_name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": args,
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }


def _service_role_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        }
    )


class GpuCluster(pulumi.ComponentResource):
    """An EKS cluster with a private endpoint, KMS-encrypted secrets, all control-plane logs, OIDC and a system pool."""

    cluster: aws.eks.Cluster
    cluster_name: pulumi.Output[str]
    arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    secrets_key_arn: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    system_node_group: aws.eks.NodeGroup
    version: str

    def __init__(self, name: str, args: GpuClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        refuse(
            f"GpuCluster {name}",
            problems(
                "",
                version=args.version,
                allow_extended_support=args.allow_extended_support,
                public_access_cidrs=args.public_access_cidrs,
                system_min_size=args.system_min_size,
                system_max_size=args.system_max_size,
                today=config.today(),
            ),
        )
        super().__init__("mlplat:cluster:GpuCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        physical_name = name
        self.version = args.version

        log_group_name = f"/aws/eks/{physical_name}/cluster"
        account, arn_partition = iam.account_id(), iam.partition()
        # One key for the cluster's secrets and its control-plane logs; CloudWatch may use it for that group only.
        secrets_key = keys.customer_key(
            f"{name}-key",
            f"Encrypts the Kubernetes secrets and control-plane logs of {physical_name}",
            account,
            arn_partition,
            child,
            log_group=(args.region, log_group_name),
            tags=tags,
        )
        role = aws.iam.Role(f"{name}-role", assume_role_policy=_service_role_policy(), tags=tags, opts=child)
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-role-cluster",
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=pulumi.ResourceOptions(parent=role),
        )
        key_policy = aws.iam.RolePolicy(
            f"{name}-role-key",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                            "Resource": secrets_key.arn,
                        }
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=secrets_key.arn,
            tags=tags,
            opts=child,
        )

        public = bool(args.public_access_cidrs)
        vpc_config = aws.eks.ClusterVpcConfigArgs(
            subnet_ids=args.subnet_ids,
            endpoint_private_access=True,
            endpoint_public_access=public,
            public_access_cidrs=list(args.public_access_cidrs) if public else None,
            security_group_ids=args.security_group_ids,
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=physical_name,
            version=args.version,
            role_arn=role.arn,
            vpc_config=vpc_config,
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn), resources=["secrets"]
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=args.admin_role_arn is None,
            ),
            # The managed add-ons below replace the self-managed defaults, so their versions are ours to pin.
            bootstrap_self_managed_addons=False,
            # Standard support unless the stack accepts the bill: extended support costs six times the cluster-hour.
            upgrade_policy={"support_type": "EXTENDED" if args.allow_extended_support else "STANDARD"},
            deletion_protection=args.deletion_protection,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster_policy, key_policy, log_group]),
        )
        cluster_name = self.cluster.name

        issuer = self.cluster.identities.apply(_issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=[STS_AUDIENCE], tags=tags, opts=child
        )

        admin_grants: list[pulumi.Resource] = []
        if args.admin_role_arn is not None:
            entry = aws.eks.AccessEntry(
                f"{name}-admin",
                cluster_name=cluster_name,
                principal_arn=args.admin_role_arn,
                type="STANDARD",
                tags=tags,
                opts=child,
            )
            admin_grants = [
                entry,
                aws.eks.AccessPolicyAssociation(
                    f"{name}-admin-policy",
                    cluster_name=cluster_name,
                    principal_arn=args.admin_role_arn,
                    policy_arn=CLUSTER_ADMIN_POLICY_ARN,
                    access_scope={"type": "cluster"},
                    opts=pulumi.ResourceOptions(parent=entry, depends_on=[entry]),
                ),
            ]

        pinned = versions.RELEASES[args.version].addons
        # Network policies need the VPC CNI's policy agent; team namespaces rely on default-deny.
        cni = self._addon(name, "vpc-cni", pinned, json.dumps({"enableNetworkPolicy": "true"}), tags, [])
        proxy = self._addon(name, "kube-proxy", pinned, None, tags, [])

        system_role, system_role_deps = nodepool.create_node_role(f"{name}-system", tags, self)
        system_template = nodepool.create_launch_template(
            f"{name}-system", "AL2023_x86_64_STANDARD", args.system_disk_size_gib, tags, self
        )
        self.system_node_group = aws.eks.NodeGroup(
            f"{name}-system-group",
            cluster_name=cluster_name,
            node_role_arn=system_role.arn,
            subnet_ids=args.subnet_ids,
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type="ON_DEMAND",
            instance_types=[args.system_instance_type],
            scaling_config={
                "min_size": args.system_min_size,
                "max_size": args.system_max_size,
                "desired_size": args.system_min_size,
            },
            labels={nodepool.POOL_LABEL: SYSTEM_POOL},
            launch_template={"id": system_template.id, "version": system_template.latest_version.apply(str)},
            update_config={"max_unavailable": 1},
            node_repair_config={"enabled": True},
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*system_role_deps, cni, proxy],
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        # CoreDNS only turns healthy once there is a node to run on.
        self._addon(name, "coredns", pinned, None, tags, [self.system_node_group])
        # Reports GPU (NVIDIA driver, XID) and kernel faults as node conditions; Karpenter's node repair and the
        # system group's auto-repair replace the nodes it marks unhealthy.
        self._addon(name, "eks-node-monitoring-agent", pinned, None, tags, [self.system_node_group])

        self.cluster_name = cluster_name
        self.arn = self.cluster.arn
        self.endpoint = self.cluster.endpoint
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = issuer
        self.cluster_security_group_id = self.cluster.vpc_config.apply(lambda c: c.cluster_security_group_id or "")
        self.secrets_key_arn = secrets_key.arn
        self.kubeconfig = pulumi.Output.all(
            cluster_name, self.cluster.endpoint, self.cluster.certificate_authority
        ).apply(
            lambda v: json.dumps(kubeconfig(v[0], v[1], getattr(v[2], "data", None), args.region, args.admin_role_arn))
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*admin_grants, self.system_node_group]),
        )
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "clusterArn": self.arn,
                "clusterEndpoint": self.endpoint,
                "oidcProviderArn": self.oidc_provider_arn,
                "secretsKeyArn": self.secrets_key_arn,
            }
        )

    def _addon(
        self,
        name: str,
        addon: str,
        pinned: Mapping[str, str],
        configuration: str | None,
        tags: Mapping[str, str],
        depends_on: list[pulumi.Resource],
    ) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=self.cluster.name,
            addon_name=addon,
            addon_version=pinned[addon],
            configuration_values=configuration,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )


def _issuer(identities: Sequence[Any] | None) -> str:
    # Unknown during preview and absent under bare mocks; the provider then sees an empty URL it never applies.
    for identity in identities or []:
        for oidc in getattr(identity, "oidcs", None) or []:
            issuer = getattr(oidc, "issuer", None)
            if issuer:
                return str(issuer)
    return ""
