"""One GPU pool as Karpenter runs it: an EC2NodeClass (how a node boots) and a NodePool (what may be launched, in
which capacity order, how many GPUs at most, and when nodes go away).

The pool costs nothing idle: Karpenter launches a node only for a pending pod that tolerates the pool's
`nvidia.com/gpu:NoSchedule` taint, falls back along the pool's capacity types (reserved, spot, on-demand) when the
preferred one has no capacity, never holds more than `gpuLimit` GPUs, and consolidates nodes that run nothing.

`create_node_role` and `create_launch_template` also serve the cluster's managed system node group, so every node in
the cluster has the same three worker policies, IMDSv2 with a hop limit of 1 and an encrypted root volume.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import catalog
from components.config import CAPACITY_ORDER
from components.k8s_objects import create_objects
from components.problems import Problem, at, at_least, one_of, refuse

POOL_LABEL = "mlplat.io/pool"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"}
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
"""Node label that picks the device plugin's named config (time-slicing) for the node."""
SPOT_WAIVER_ANNOTATION = "mlplat.io/spot-only-waiver"
CAPACITY_TYPE_KEY = "karpenter.sh/capacity-type"
INSTANCE_TYPE_KEY = "node.kubernetes.io/instance-type"
INSTANCE_FAMILY_KEY = "karpenter.k8s.aws/instance-family"
AMI_ALIASES = {"AL2023": "al2023@latest", "Bottlerocket": "bottlerocket@latest"}
"""Karpenter picks the NVIDIA variant of the family's EKS-optimized AMI for GPU instance types."""

# The managed policies a worker needs and nothing else: kubelet, the VPC CNI, pulling images from ECR.
WORKER_POLICY_ARNS = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)
_POLICY_ROLES = ("worker", "cni", "ecr")


@dataclass(frozen=True)
class PoolSpec:
    """One GPU pool, as plain values (a validated `mlplat:gpuPools` entry)."""

    name: str
    """The pool's name; the value of the `mlplat.io/pool` label that workloads and Kueue flavors select."""
    instance_types: Sequence[str]
    """The GPU types the pool may launch (named types plus the allowed types of its families)."""
    gpu_limit: int
    """Most GPUs the pool's nodes may hold together."""
    capacity_types: Sequence[str] = ("on-demand",)
    """Capacity in order of preference: `reserved`, `spot`, `on-demand`."""
    instance_families: Sequence[str] = ()
    """Families named in config, kept as their own requirement."""
    ami_family: str = "AL2023"
    """`AL2023` or `Bottlerocket`."""
    disk_size_gib: int = 100
    """Encrypted gp3 volume for images and scratch data."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra node labels."""
    consolidation_policy: str = "WhenEmpty"
    """`WhenEmpty` or `WhenEmptyOrUnderutilized`."""
    consolidate_after: str = "5m"
    """How long a node stays empty (or underused) before Karpenter removes it."""
    expire_after: str = "720h"
    """Node lifetime; older nodes are replaced (fresh AMIs)."""
    budget_nodes: str = "10%"
    """Most nodes disrupted at once."""
    time_slicing_replicas: int | None = None
    """Schedulable GPUs per physical GPU when time-sliced; None for whole GPUs."""
    spot_waiver: str | None = None
    """Why the pool may run spot without an on-demand fallback."""


class PoolSettings(Protocol):
    """What a pool's checks read: a `PoolSpec`, or the stack file's `GpuPoolConfig` (the same names)."""

    @property
    def instance_families(self) -> Sequence[str]: ...
    @property
    def instance_types(self) -> Sequence[str]: ...
    @property
    def capacity_types(self) -> Sequence[str]: ...
    @property
    def gpu_limit(self) -> int: ...
    @property
    def ami_family(self) -> str: ...


def problems(
    prefix: str,
    pool: PoolSettings,
    *,
    allowed: Sequence[str] | None = None,
    environment: str = "",
    max_gpus: int | None = None,
) -> list[Problem]:
    """Problems with one pool's settings under `prefix` (`mlplat:gpuPools[0]`, or empty for the component's own).

    `allowed`, `environment` and `max_gpus` are the stack's guard rails; without them any GPU type and size is fine.
    """
    instance_families, instance_types, gpu_limit = pool.instance_families, pool.instance_types, pool.gpu_limit
    found: list[Problem] = []
    add = found.append
    if not instance_families and not instance_types:
        add(Problem(prefix, "must name instanceFamilies or instanceTypes (got neither)"))
    for j, family in enumerate(instance_families):
        key = at(prefix, f"instanceFamilies[{j}]")
        if family not in catalog.GPU_FAMILIES:
            add(Problem(key, f"is not a GPU instance family (got {family!r})"))
        elif allowed is not None and not catalog.pool_types((), [family], allowed):
            add(Problem(key, f"has no instance type allowed in {environment} (got {family!r})"))
    for j, itype in enumerate(instance_types):
        key = at(prefix, f"instanceTypes[{j}]")
        if not catalog.is_gpu_instance(itype):
            add(Problem(key, f"is not a GPU instance type (got {itype!r})"))
        elif allowed is not None and itype not in allowed:
            add(Problem(key, f"is not allowed in {environment} (got {itype!r})"))
    found += _capacity_problems(at(prefix, "capacityTypes"), list(pool.capacity_types))
    found += at_least(at(prefix, "gpuLimit"), gpu_limit, 1)
    if max_gpus is not None and gpu_limit > max_gpus:
        add(
            Problem(
                at(prefix, "gpuLimit"), f"is over the {environment} cap of {max_gpus} GPUs per pool (got {gpu_limit})"
            )
        )
    types = catalog.pool_types(instance_types, instance_families, allowed)
    smallest = min((catalog.gpus_per_node(t) for t in types), default=0)
    if smallest and 1 <= gpu_limit < smallest:
        add(
            Problem(
                at(prefix, "gpuLimit"), f"is below the {smallest} GPUs of the pool's smallest node (got {gpu_limit})"
            )
        )
    found += one_of(at(prefix, "amiFamily"), pool.ami_family, list(AMI_ALIASES))
    return found


def _capacity_problems(key: str, capacity_types: list[str]) -> list[Problem]:
    if not capacity_types:
        return [Problem(key, "must have at least 1 item after validation, not 0 (got [])")]
    unknown = [p for j, c in enumerate(capacity_types) for p in one_of(f"{key}[{j}]", c, CAPACITY_ORDER)]
    if unknown:
        return unknown
    if len(set(capacity_types)) < len(capacity_types):
        return [Problem(key, f"must not repeat a capacity type (got {capacity_types})")]
    if capacity_types != [c for c in CAPACITY_ORDER if c in capacity_types]:
        # Karpenter always tries reserved, then spot, then on-demand; another order would promise what it never does.
        return [Problem(key, f"must follow Karpenter's order reserved, spot, on-demand (got {capacity_types})")]
    return []


def node_labels(spec: PoolSpec) -> dict[str, str]:
    """The Kubernetes labels every node of the pool carries."""
    labels = {**spec.labels, POOL_LABEL: spec.name, GPU_PRESENT_LABEL: "true"}
    if spec.time_slicing_replicas:
        labels[DEVICE_PLUGIN_CONFIG_LABEL] = spec.name
    return labels


def node_class_name(spec: PoolSpec) -> str:
    """The EC2NodeClass (cluster-scoped) of a pool."""
    return f"gpu-{spec.name}"


def _block_devices(spec: PoolSpec) -> list[dict[str, Any]]:
    def ebs(size: int) -> dict[str, Any]:
        return {
            "volumeSize": f"{size}Gi",
            "volumeType": "gp3",
            "encrypted": True,
            "deleteOnTermination": True,
        }

    if spec.ami_family == "Bottlerocket":
        # Bottlerocket boots from a small OS volume and keeps images and pods on the second one.
        return [{"deviceName": "/dev/xvda", "ebs": ebs(4)}, {"deviceName": "/dev/xvdb", "ebs": ebs(spec.disk_size_gib)}]
    return [{"deviceName": "/dev/xvda", "ebs": ebs(spec.disk_size_gib)}]


def render_node_class(
    spec: PoolSpec, discovery_value: pulumi.Input[str], instance_profile: pulumi.Input[str], tags: Mapping[str, str]
) -> dict[str, Any]:
    """The pool's EC2NodeClass: NVIDIA AMI alias, IMDSv2 with hop limit 1, encrypted gp3, subnets and group by tag."""
    selector = [{"tags": {"karpenter.sh/discovery": discovery_value}}]
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": node_class_name(spec)},
        "spec": {
            "amiSelectorTerms": [{"alias": AMI_ALIASES[spec.ami_family]}],
            "instanceProfile": instance_profile,
            "subnetSelectorTerms": selector,
            "securityGroupSelectorTerms": selector,
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpProtocolIPv6": "disabled",
                "httpPutResponseHopLimit": 1,
                "httpTokens": "required",
            },
            "blockDeviceMappings": _block_devices(spec),
            "tags": dict(tags),
        },
    }


def requirements(spec: PoolSpec) -> list[dict[str, Any]]:
    """What the pool may launch: its instance types (and families), its capacity types, x86-64 Linux."""
    found: list[dict[str, Any]] = []
    if spec.instance_families:
        found.append({"key": INSTANCE_FAMILY_KEY, "operator": "In", "values": list(spec.instance_families)})
    found += [
        {"key": INSTANCE_TYPE_KEY, "operator": "In", "values": list(spec.instance_types)},
        # Karpenter prefers reserved, then spot, then on-demand among the allowed types; the list order states intent.
        {"key": CAPACITY_TYPE_KEY, "operator": "In", "values": list(spec.capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    return found


def render_node_pool(spec: PoolSpec) -> dict[str, Any]:
    """The pool's NodePool: requirements, the GPU taint, labels, the GPU limit and the disruption settings."""
    metadata: dict[str, Any] = {"name": spec.name, "labels": {POOL_LABEL: spec.name}}
    if spec.spot_waiver:
        metadata["annotations"] = {SPOT_WAIVER_ANNOTATION: spec.spot_waiver}
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": metadata,
        "spec": {
            "template": {
                "metadata": {"labels": node_labels(spec)},
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws",
                        "kind": "EC2NodeClass",
                        "name": node_class_name(spec),
                    },
                    "requirements": requirements(spec),
                    "taints": [dict(GPU_TAINT)],
                    "expireAfter": spec.expire_after,
                },
            },
            "limits": {GPU_RESOURCE: str(spec.gpu_limit)},
            "disruption": {
                "consolidationPolicy": spec.consolidation_policy,
                "consolidateAfter": spec.consolidate_after,
                "budgets": [{"nodes": spec.budget_nodes}],
            },
        },
    }


def time_slicing_config(replicas: int) -> str:
    """The device plugin's config that advertises each GPU as `replicas` GPUs."""
    return json.dumps(
        {"version": "v1", "sharing": {"timeSlicing": {"resources": [{"name": GPU_RESOURCE, "replicas": replicas}]}}}
    )


def create_node_role(
    name: str, tags: Mapping[str, str], parent: pulumi.Resource
) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
    """An EC2 node role with exactly the three worker policies, and those attachments (a node group waits on them)."""
    role = aws.iam.Role(
        f"{name}-role",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    attachments: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-role-{duty}", role=role.name, policy_arn=arn, opts=pulumi.ResourceOptions(parent=role)
        )
        for duty, arn in zip(_POLICY_ROLES, WORKER_POLICY_ARNS, strict=True)
    ]
    return role, attachments


def create_launch_template(
    name: str, ami_type: str, disk_size_gib: int, tags: Mapping[str, str], parent: pulumi.Resource
) -> "aws.ec2.LaunchTemplate":
    """IMDSv2 only with a hop limit of 1 (pods cannot borrow the node's credentials), an encrypted gp3 data volume."""
    # Bottlerocket boots from /dev/xvda and keeps images and pods on /dev/xvdb; AL2023 uses one root volume.
    device = "/dev/xvdb" if ami_type.startswith("BOTTLEROCKET") else "/dev/xvda"
    return aws.ec2.LaunchTemplate(
        f"{name}-lt",
        metadata_options={
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": 1,
            "instance_metadata_tags": "disabled",
        },
        block_device_mappings=[
            {
                "device_name": device,
                "ebs": {
                    "volume_size": disk_size_gib,
                    "volume_type": "gp3",
                    "encrypted": "true",
                    "delete_on_termination": "true",
                },
            }
        ],
        # Node-group tags stop at the group; these reach the instances and volumes that the cost reports filter on.
        tag_specifications=[{"resource_type": kind, "tags": dict(tags)} for kind in ("instance", "volume")],
        update_default_version=True,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class GpuNodePoolArgs:
    """Inputs of one GPU pool."""

    spec: PoolSpec
    """The pool."""
    provider: k8s.Provider
    """Kubernetes provider of the cluster."""
    discovery_value: pulumi.Input[str]
    """Value of the `karpenter.sh/discovery` tag on the subnets and security group (the cluster's name)."""
    instance_profile: pulumi.Input[str]
    """Instance profile of Karpenter's node role."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the instances, volumes and launch templates Karpenter creates."""


class GpuNodePool(pulumi.ComponentResource):
    """One Karpenter pool of GPU instances: its EC2NodeClass and NodePool."""

    pool_name: str
    manifests: list[dict[str, Any]]

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        spec = args.spec
        refuse(f"GpuNodePool {name}", problems("", spec))
        super().__init__("mlplat:nodepool:GpuNodePool", name, None, opts)
        self.manifests = [
            render_node_class(spec, args.discovery_value, args.instance_profile, args.tags),
            render_node_pool(spec),
        ]
        create_objects(name, self.manifests, pulumi.ResourceOptions(parent=self, provider=args.provider))
        self.pool_name = spec.name
        self.register_outputs({"nodePool": spec.name, "nodeClass": node_class_name(spec)})
