"""GPU compute for one stack: the EKS cluster, its cluster services (Karpenter, Kueue, GPU telemetry), one Karpenter
pool per `gpuPools` entry, the teams' Kueue queues and one namespace per team, composed from the stack's config and
plain inputs from the network, artifacts and tracking.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components import iam
from components.cluster import GpuCluster, GpuClusterArgs
from components.cluster_services import ClusterServices, ClusterServicesArgs
from components.config import DEFAULT_ALLOWED_GPU_TYPES, ClusterConfig, GpuPoolConfig, TeamConfig, pool_instance_types
from components.kueue import TeamQueues, TeamQueuesArgs
from components.nodepool import GpuNodePool, GpuNodePoolArgs, PoolSpec
from components.team import TeamNamespace, TeamNamespaceArgs, TeamSpec


@dataclass(frozen=True)
class GpuComputeArgs:
    """Inputs of a stack's GPU compute."""

    cluster: ClusterConfig
    """Validated `mlplat:cluster` config."""
    region: str
    """AWS region."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """The network's private subnets."""
    vpc_cidr: str
    """The VPC's CIDR (team network policies allow HTTPS to the endpoints in it)."""
    team_statements: Sequence[iam.Statement]
    """What each team's IRSA role may do (`components.team.team_role_statements`)."""
    gpu_pools: Sequence[GpuPoolConfig] = ()
    """Validated `mlplat:gpuPools`."""
    teams: Sequence[TeamConfig] = ()
    """Validated `mlplat:teams`."""
    allowed_gpu_instance_types: Sequence[str] = tuple(DEFAULT_ALLOWED_GPU_TYPES["prod"])
    """The environment's GPU allow-list: a pool's families expand to the allowed types only."""
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Extra security groups for the control plane."""
    deletion_protection: bool = False
    """Protect the cluster from deletion (prod)."""
    serving_metrics: bool = False
    """An endpoint on the cluster scales on in-flight requests (installs Prometheus and its adapter)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the AWS resources."""


def pool_spec(pool: GpuPoolConfig, allowed: Sequence[str]) -> PoolSpec:
    """A validated pool config as the plain values its NodePool and flavor are rendered from."""
    return PoolSpec(
        name=pool.name,
        instance_types=tuple(pool_instance_types(pool, allowed)),
        gpu_limit=pool.gpu_limit,
        capacity_types=tuple(pool.capacity_types),
        instance_families=tuple(pool.instance_families),
        ami_family=pool.ami_family,
        disk_size_gib=pool.disk_size_gib,
        labels=dict(pool.labels),
        consolidation_policy=pool.disruption.consolidation_policy,
        consolidate_after=pool.disruption.consolidate_after,
        expire_after=pool.disruption.expire_after,
        budget_nodes=pool.disruption.budget_nodes,
        time_slicing_replicas=pool.gpu_sharing.replicas if pool.gpu_sharing else None,
        spot_waiver=pool.spot_waiver,
    )


class GpuCompute(pulumi.ComponentResource):
    """The cluster, its services, its GPU pools, the teams' queues and the team namespaces of one stack."""

    cluster: GpuCluster
    services: ClusterServices
    pools: dict[str, GpuNodePool]
    queues: TeamQueues
    teams: dict[str, TeamNamespace]
    cluster_name: pulumi.Output[str]
    cluster_endpoint: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    team_namespaces: list[str]

    def __init__(self, name: str, args: GpuComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:compute:GpuCompute", name, None, opts)
        cfg = args.cluster
        tags = dict(args.tags)
        specs = [pool_spec(p, args.allowed_gpu_instance_types) for p in args.gpu_pools]
        team_specs = [
            TeamSpec(
                team=team.name,
                gpu_quota=team.gpu_quota,
                cpu_quota=team.cpu_quota,
                memory_quota=team.memory_quota,
                vpc_cidr=args.vpc_cidr,
            )
            for team in args.teams
        ]
        self.cluster = GpuCluster(
            f"{name}-cluster",
            GpuClusterArgs(
                subnet_ids=list(args.subnet_ids),
                region=args.region,
                version=cfg.version,
                allow_extended_support=cfg.allow_extended_support,
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
                subnet_ids=args.subnet_ids,
                cluster_security_group_id=cluster.cluster_security_group_id,
                pools=specs,
                prometheus_operator=cfg.prometheus_operator,
                serving_metrics=args.serving_metrics,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Custom resources wait for the release that installs their CRDs.
        karpenter_installed = pulumi.ResourceOptions(parent=self, depends_on=[self.services.releases["karpenter"]])
        kueue_installed = pulumi.ResourceOptions(parent=self, depends_on=[self.services.releases["kueue"]])
        self.pools = {
            spec.name: GpuNodePool(
                f"{name}-pool-{spec.name}",
                GpuNodePoolArgs(
                    spec=spec,
                    provider=cluster.provider,
                    discovery_value=cluster.cluster_name,
                    instance_profile=self.services.karpenter.instance_profile_name,
                    tags=tags,
                ),
                opts=karpenter_installed,
            )
            for spec in specs
        }
        self.queues = TeamQueues(
            f"{name}-queues",
            TeamQueuesArgs(provider=cluster.provider, teams=team_specs, pools=specs),
            opts=kueue_installed,
        )
        self.teams = {
            spec.team: TeamNamespace(
                f"{name}-team-{spec.team}",
                TeamNamespaceArgs(
                    spec=spec,
                    provider=cluster.provider,
                    oidc_provider_arn=cluster.oidc_provider_arn,
                    oidc_issuer=cluster.oidc_issuer,
                    statements=args.team_statements,
                    tags=tags,
                ),
                opts=kueue_installed,
            )
            for spec in team_specs
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
