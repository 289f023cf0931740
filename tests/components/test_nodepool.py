"""GpuNodePool under mocks: a GPU node group that starts at zero, is tainted for GPU work and can scale from zero."""

import json

import pytest
from gpu_mocks import Recorded, Synthesis, synthesize

from components.nodepool import GpuNodePool, GpuNodePoolArgs, validate_pool

POOL = "mlplat:nodepool:GpuNodePool"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ASG_TAG = "aws:autoscaling/tag:Tag"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
TEMPLATE_PREFIX = "k8s.io/cluster-autoscaler/node-template"
TAGS = {"mlplat:environment": "prod"}


def _args(**overrides: object) -> GpuNodePoolArgs:
    base: dict[str, object] = {
        "cluster_name": "mlplat-prod-compute-cluster",
        "subnet_ids": ["subnet-a", "subnet-b"],
        "pool_name": "train-spot",
        "instance_types": ("g5.12xlarge",),
        "capacity_type": "SPOT",
        "min_size": 0,
        "max_size": 4,
        "disk_size_gib": 500,
        "tags": TAGS,
    }
    return GpuNodePoolArgs(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def plan() -> Synthesis:
    return synthesize(lambda: {"pool": GpuNodePool("train", _args()).node_group_arn})


@pytest.fixture(scope="module")
def group(plan: Synthesis) -> Recorded:
    return plan.named("train-group")


def test_the_node_group_runs_the_configured_gpu_types_on_spot_with_the_nvidia_ami(group: Recorded) -> None:
    assert group.inputs["instanceTypes"] == ["g5.12xlarge"]
    assert group.inputs["capacityType"] == "SPOT"
    assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group.inputs["clusterName"] == "mlplat-prod-compute-cluster"
    assert group.inputs["subnetIds"] == ["subnet-a", "subnet-b"]


def test_the_pool_starts_at_zero_nodes(group: Recorded) -> None:
    assert group.inputs["scalingConfig"] == {"minSize": 0, "maxSize": 4, "desiredSize": 0}


def test_the_desired_size_belongs_to_the_autoscaler_after_creation(group: Recorded) -> None:
    assert group.ignore_changes == ["scalingConfig.desiredSize"]


def test_nodes_carry_the_pool_and_gpu_labels(group: Recorded) -> None:
    assert group.inputs["labels"] == {"mlplat.io/pool": "train-spot", "nvidia.com/gpu.present": "true"}


def test_nodes_are_tainted_so_only_gpu_workloads_land_on_them(group: Recorded) -> None:
    assert group.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]


def test_the_node_group_carries_the_autoscaler_node_template_tags(group: Recorded) -> None:
    assert group.inputs["tags"] == {
        **TAGS,
        f"{TEMPLATE_PREFIX}/label/mlplat.io/pool": "train-spot",
        f"{TEMPLATE_PREFIX}/label/nvidia.com/gpu.present": "true",
        f"{TEMPLATE_PREFIX}/taint/nvidia.com/gpu": "true:NoSchedule",
        f"{TEMPLATE_PREFIX}/resources/nvidia.com/gpu": "4",
    }


def test_the_template_tags_are_set_on_the_auto_scaling_group_itself(plan: Synthesis) -> None:
    tags = {r.name: r.inputs for r in plan.of_type(ASG_TAG)}
    assert {i["tag"]["key"]: i["tag"]["value"] for i in tags.values()} == {
        f"{TEMPLATE_PREFIX}/label/mlplat.io/pool": "train-spot",
        f"{TEMPLATE_PREFIX}/label/nvidia.com/gpu.present": "true",
        f"{TEMPLATE_PREFIX}/taint/nvidia.com/gpu": "true:NoSchedule",
        f"{TEMPLATE_PREFIX}/resources/nvidia.com/gpu": "4",
    }
    assert {i["autoscalingGroupName"] for i in tags.values()} == {"eks-train-group-asg"}
    assert {i["tag"]["propagateAtLaunch"] for i in tags.values()} == {False}
    assert sorted(tags) == [
        "train-asg-tag-label-mlplat-io-pool",
        "train-asg-tag-label-nvidia-com-gpu-present",
        "train-asg-tag-resources-nvidia-com-gpu",
        "train-asg-tag-taint-nvidia-com-gpu",
    ]


def test_the_launch_template_requires_imdsv2_with_a_hop_limit_of_one(plan: Synthesis) -> None:
    template = plan.named("train-lt")
    assert template.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
        "instanceMetadataTags": "disabled",
    }


def test_the_root_volume_is_encrypted_gp3_sized_from_config(plan: Synthesis) -> None:
    assert plan.named("train-lt").inputs["blockDeviceMappings"] == [
        {
            "deviceName": "/dev/xvda",
            "ebs": {"volumeSize": 500, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"},
        }
    ]


def test_the_node_group_launches_from_the_latest_template_version(group: Recorded) -> None:
    assert group.inputs["launchTemplate"] == {"id": "train-lt-id", "version": "1"}


def test_the_node_role_has_the_three_worker_policies_and_nothing_else(plan: Synthesis) -> None:
    role = plan.named("train-role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert sorted(r.inputs["policyArn"] for r in plan.of_type(ATTACHMENT)) == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    ]
    assert plan.of_type("aws:iam/rolePolicy:RolePolicy") == []
    assert plan.named("train-group").inputs["nodeRoleArn"] == "arn:aws:iam::123456789012:role/train-role"


def test_every_pool_resource_is_a_child_of_the_pool(plan: Synthesis) -> None:
    pool = plan.named("train")
    assert pool.type == POOL
    direct = [r for r in plan if r.parent == pool.urn]
    assert {r.name for r in direct} == {
        "train-role",
        "train-lt",
        "train-group",
        *(r.name for r in plan.of_type(ASG_TAG)),
    }


def test_a_bottlerocket_pool_sizes_its_data_volume_not_its_os_volume() -> None:
    plan = synthesize(lambda: {"p": GpuNodePool("br", _args(ami_type="BOTTLEROCKET_x86_64_NVIDIA")).node_group_arn})
    assert plan.named("br-lt").inputs["blockDeviceMappings"][0]["deviceName"] == "/dev/xvdb"


def test_an_adopted_node_role_creates_no_role() -> None:
    arn = "arn:aws:iam::123456789012:role/existing-nodes"
    plan = synthesize(lambda: {"p": GpuNodePool("adopt", _args(node_role_arn=arn)).node_group_arn})
    assert plan.of_type("aws:iam/role:Role") == []
    assert plan.named("adopt-group").inputs["nodeRoleArn"] == arn


def test_a_mixed_pool_promises_the_autoscaler_the_smallest_gpu_count() -> None:
    plan = synthesize(
        lambda: {"p": GpuNodePool("mix", _args(instance_types=("g5.12xlarge", "g5.xlarge"))).node_group_arn}
    )
    assert plan.named("mix-group").inputs["tags"][f"{TEMPLATE_PREFIX}/resources/nvidia.com/gpu"] == "1"


def test_a_cpu_instance_type_is_rejected_before_anything_is_created() -> None:
    with pytest.raises(ValueError, match=r"instanceTypes has a non-GPU instance type \(got 'm5.large'\)"):
        GpuNodePool("bad", _args(instance_types=("m5.large",)))


def test_a_pool_with_min_size_over_max_size_is_rejected() -> None:
    assert validate_pool(_args(min_size=3, max_size=2)) == [
        "gpuPool train-spot: maxSize must be >= minSize and >= 1 (got 2 < 3)"
    ]


def test_an_ami_type_without_nvidia_drivers_is_rejected() -> None:
    assert validate_pool(_args(ami_type="AL2023_x86_64_STANDARD")) == [
        "gpuPool train-spot: amiType must be a GPU AMI type (got 'AL2023_x86_64_STANDARD')"
    ]
