"""GPU compute for one stack: the EKS cluster, one node pool per `gpuPools` entry, the cluster services and one
namespace per team, composed from the stack's config and plain inputs from the network, artifacts and tracking.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components import iam
from components.cluster import GpuCluster, GpuClusterArgs
from components.cluster_services import ClusterServices, ClusterServicesArgs
from components.config import ClusterConfig, GpuPoolConfig, TeamConfig
from components.nodepool import GpuNodePool, GpuNodePoolArgs
from components.team import TeamNamespace, TeamNamespaceArgs, TeamSpec


@dataclass(frozen=True)
class GpuComputeArgs:
    """Inputs of a stack's GPU compute."""

    cluster: ClusterConfig
    """Validated `mlplat:cluster` config."""
    region: str
    """AWS region."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The network's private subnets."""
    vpc_cidr: str
    """The VPC's CIDR (team network policies allow HTTPS to the endpoints in it)."""
    team_statements: Sequence[iam.Statement]
    """What each team's IRSA role may do (`components.team.team_role_statements`)."""
    gpu_pools: Sequence[GpuPoolConfig] = ()
    """Validated `mlplat:gpuPools`."""
    teams: Sequence[TeamConfig] = ()
    """Validated `mlplat:teams`."""
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Extra security groups for the control plane."""
    deletion_protection: bool = False
    """Protect the cluster from deletion (prod)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the AWS resources."""


class GpuCompute(pulumi.ComponentResource):
    """The cluster, its GPU pools, its services and the team namespaces of one stack."""

    cluster: GpuCluster
    pools: dict[str, GpuNodePool]
    services: ClusterServices
    teams: dict[str, TeamNamespace]
    cluster_name: pulumi.Output[str]
    cluster_endpoint: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    team_namespaces: list[str]

    def __init__(self, name: str, args: GpuComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:compute:GpuCompute", name, None, opts)
        cfg = args.cluster
        tags = dict(args.tags)
        self.cluster = GpuCluster(
            f"{name}-cluster",
            GpuClusterArgs(
                subnet_ids=args.subnet_ids,
                region=args.region,
                version=cfg.version,
                public_access_cidrs=tuple(cfg.public_access_cidrs),
                admin_role_arn=cfg.admin_role_arn,
                security_group_ids=args.security_group_ids,
                system_instance_type=cfg.system_nodes.instance_type,
                system_min_size=cfg.system_nodes.min_size,
                system_max_size=cfg.system_nodes.max_size,
                deletion_protection=args.deletion_protection,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        cluster = self.cluster
        # GPU nodes join only once the CNI and the system nodes are up.
        after_cluster = pulumi.ResourceOptions(parent=self, depends_on=[cluster])
        self.pools = {
            pool.name: GpuNodePool(
                f"{name}-pool-{pool.name}",
                GpuNodePoolArgs(
                    cluster_name=cluster.cluster_name,
                    subnet_ids=args.subnet_ids,
                    pool_name=pool.name,
                    instance_types=tuple(pool.instance_types),
                    min_size=pool.min_size,
                    max_size=pool.max_size,
                    capacity_type=pool.capacity_type,
                    ami_type=pool.ami_type,
                    disk_size_gib=pool.disk_size_gib,
                    tags=tags,
                ),
                opts=after_cluster,
            )
            for pool in args.gpu_pools
        }
        self.services = ClusterServices(
            f"{name}-services",
            ClusterServicesArgs(
                provider=cluster.provider,
                cluster_name=cluster.cluster_name,
                cluster_arn=cluster.arn,
                oidc_provider_arn=cluster.oidc_provider_arn,
                oidc_issuer=cluster.oidc_issuer,
                region=args.region,
                kubernetes_version=cfg.version,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.teams = {
            team.name: TeamNamespace(
                f"{name}-team-{team.name}",
                TeamNamespaceArgs(
                    spec=TeamSpec(
                        team=team.name,
                        gpu_quota=team.gpu_quota,
                        cpu_quota=team.cpu_quota,
                        memory_quota=team.memory_quota,
                        vpc_cidr=args.vpc_cidr,
                    ),
                    provider=cluster.provider,
                    oidc_provider_arn=cluster.oidc_provider_arn,
                    oidc_issuer=cluster.oidc_issuer,
                    statements=args.team_statements,
                    tags=tags,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for team in args.teams
        }
        self.cluster_name = cluster.cluster_name
        self.cluster_endpoint = cluster.endpoint
        self.oidc_provider_arn = cluster.oidc_provider_arn
        self.team_namespaces = [t.namespace for t in self.teams.values()]
        self.register_outputs(self.stack_outputs())

    def stack_outputs(self) -> dict[str, object]:
        """The stack outputs this compute contributes, by `StackOutputs` field (`clusterName` etc. once exported)."""
        return {
            "cluster_name": self.cluster_name,
            "cluster_endpoint": self.cluster_endpoint,
            "oidc_provider_arn": self.oidc_provider_arn,
            "team_namespaces": self.team_namespaces,
        }
