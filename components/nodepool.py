"""A managed EKS node group of GPU instances that costs nothing idle and that the cluster-autoscaler grows from zero.

The pool starts at `minSize` (0 by default); after creation its desired size belongs to the cluster-autoscaler
(`ignore_changes`). A node group at zero has no node to read labels, taints or GPUs from, so the autoscaler learns
them from `k8s.io/cluster-autoscaler/node-template/*` tags, which must sit on the Auto Scaling group itself (EKS does
not copy node-group tags there): one `aws.autoscaling.Tag` per template tag.

`create_node_role` and `create_launch_template` are shared with the cluster's system node group, so every node in
the cluster has the same three worker policies and the same IMDSv2-only, encrypted-root launch template.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import catalog

POOL_LABEL = "mlplat.io/pool"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "true", "effect": "NO_SCHEDULE"}

# The managed policies a worker needs and nothing else: kubelet, the VPC CNI, pulling images from ECR.
WORKER_POLICY_ARNS = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)
_POLICY_ROLES = ("worker", "cni", "ecr")

AUTOSCALER_TAG_PREFIX = "k8s.io/cluster-autoscaler"


@dataclass(frozen=True)
class GpuNodePoolArgs:
    """Inputs of one GPU node pool."""

    cluster_name: pulumi.Input[str]
    """The EKS cluster the group joins (also keys the autoscaler's ownership tag)."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets the nodes launch in."""
    pool_name: str
    """The pool's name in config; the value of the `mlplat.io/pool` label that workloads select."""
    instance_types: Sequence[str]
    """EC2 types of GPU families only; the first is what the autoscaler assumes for a group at zero."""
    max_size: int
    """Most nodes the autoscaler may run."""
    min_size: int = 0
    """Fewest nodes; 0 lets an idle pool cost nothing."""
    capacity_type: str = "ON_DEMAND"
    """`SPOT` or `ON_DEMAND`."""
    ami_type: str = "AL2023_x86_64_NVIDIA"
    """An EKS AMI type that ships the NVIDIA driver (see `catalog.GPU_AMI_TYPES`)."""
    disk_size_gib: int = 100
    """Size of the encrypted gp3 volume that holds images and scratch data."""
    node_role_arn: pulumi.Input[str] | None = None
    """Adopt an existing node role instead of creating one."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the AWS resources, the launched instances and their volumes."""


def validate_pool(args: GpuNodePoolArgs) -> list[str]:
    """Problems with a pool's settings, each naming the field; empty when the pool can be created."""
    problems: list[str] = []
    if not args.instance_types:
        problems.append(f"gpuPool {args.pool_name}: instanceTypes must name at least one GPU instance type")
    for itype in args.instance_types:
        if not catalog.is_gpu_instance(itype):
            problems.append(f"gpuPool {args.pool_name}: instanceTypes has a non-GPU instance type (got {itype!r})")
    if args.min_size < 0:
        problems.append(f"gpuPool {args.pool_name}: minSize must be >= 0 (got {args.min_size})")
    if args.max_size < max(args.min_size, 1):
        problems.append(
            f"gpuPool {args.pool_name}: maxSize must be >= minSize and >= 1 (got {args.max_size} < {args.min_size})"
        )
    if args.capacity_type not in ("SPOT", "ON_DEMAND"):
        problems.append(
            f"gpuPool {args.pool_name}: capacityType must be SPOT or ON_DEMAND (got {args.capacity_type!r})"
        )
    if args.ami_type not in catalog.GPU_AMI_TYPES:
        problems.append(f"gpuPool {args.pool_name}: amiType must be a GPU AMI type (got {args.ami_type!r})")
    return problems


def gpus_per_node(instance_types: Sequence[str]) -> int:
    """GPUs the autoscaler should assume a new node brings: the smallest type's count, so it never over-promises."""
    return min(catalog.gpus_per_node(t) for t in instance_types)


def node_labels(pool_name: str) -> dict[str, str]:
    """The Kubernetes labels every node of a GPU pool carries."""
    return {POOL_LABEL: pool_name, GPU_PRESENT_LABEL: "true"}


def autoscaler_template_tags(pool_name: str, gpus: int) -> dict[str, str]:
    """The node-template tags that let the cluster-autoscaler scale this pool up from zero."""
    template = f"{AUTOSCALER_TAG_PREFIX}/node-template"
    tags = {f"{template}/label/{key}": value for key, value in node_labels(pool_name).items()}
    tags[f"{template}/taint/{GPU_RESOURCE}"] = "true:NoSchedule"
    tags[f"{template}/resources/{GPU_RESOURCE}"] = str(gpus)
    return tags


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
) -> aws.ec2.LaunchTemplate:
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


class GpuNodePool(pulumi.ComponentResource):
    """One managed node group of GPU instances, tainted for GPU work only and able to scale from zero."""

    node_group: aws.eks.NodeGroup
    node_role_arn: pulumi.Output[str]
    node_group_arn: pulumi.Output[str]
    pool_name: str
    gpus_per_node: int

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        problems = validate_pool(args)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__("mlplat:nodepool:GpuNodePool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.pool_name = args.pool_name
        self.gpus_per_node = gpus_per_node(args.instance_types)

        if args.node_role_arn is None:
            role, role_deps = create_node_role(name, tags, self)
            role_arn: pulumi.Input[str] = role.arn
        else:
            role_arn, role_deps = args.node_role_arn, []
        template = create_launch_template(name, args.ami_type, args.disk_size_gib, tags, self)

        template_tags = autoscaler_template_tags(args.pool_name, self.gpus_per_node)
        self.node_group = aws.eks.NodeGroup(
            f"{name}-group",
            cluster_name=args.cluster_name,
            node_role_arn=role_arn,
            subnet_ids=args.subnet_ids,
            ami_type=args.ami_type,
            capacity_type=args.capacity_type,
            instance_types=list(args.instance_types),
            scaling_config={"min_size": args.min_size, "max_size": args.max_size, "desired_size": args.min_size},
            labels=node_labels(args.pool_name),
            taints=[
                aws.eks.NodeGroupTaintArgs(key=GPU_TAINT["key"], value=GPU_TAINT["value"], effect=GPU_TAINT["effect"])
            ],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            update_config={"max_unavailable": 1},
            node_repair_config={"enabled": True},
            # EKS itself tags the group's ASG `k8s.io/cluster-autoscaler/{enabled,<cluster>}` for auto-discovery.
            tags={**tags, **template_tags},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=role_deps,
                # The autoscaler owns the desired size once the group exists; an update must not reset it.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        asg_name = self.node_group.resources.apply(_first_asg_name)
        for key, value in template_tags.items():
            aws.autoscaling.Tag(
                f"{name}-asg-tag-{_slug(key)}",
                autoscaling_group_name=asg_name,
                tag={"key": key, "value": value, "propagate_at_launch": False},
                opts=child,
            )

        self.node_role_arn = pulumi.Output.from_input(role_arn)
        self.node_group_arn = self.node_group.arn
        self.register_outputs(
            {"nodeGroupArn": self.node_group.arn, "nodeRoleArn": self.node_role_arn, "launchTemplateId": template.id}
        )


def _slug(tag_key: str) -> str:
    # `k8s.io/cluster-autoscaler/node-template/label/mlplat.io/pool` -> `label-mlplat-io-pool`
    return re.sub(r"[^a-z0-9]+", "-", tag_key.split("/node-template/", 1)[1].lower()).strip("-")


def _first_asg_name(resources: Sequence[object] | None) -> str:
    # A managed node group has exactly one Auto Scaling group; mocks and previews may not report it yet.
    for resource in resources or []:
        groups = getattr(resource, "autoscaling_groups", None) or []
        for group in groups:
            name = getattr(group, "name", None)
            if name:
                return str(name)
    return ""
