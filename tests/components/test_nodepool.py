"""GpuNodePool under mocks: one Karpenter pool is an EC2NodeClass and a NodePool, with the pool's types, capacity
order, GPU taint, GPU limit and disruption settings, both valid against the Karpenter CRDs."""

from typing import Any

import pulumi_kubernetes as k8s
import pytest
from gpu_mocks import Synthesis, synthesize

from components.nodepool import GpuNodePool, GpuNodePoolArgs, PoolSpec, render_node_class, render_node_pool
from mlplat import k8s_validate

TAGS = {"mlplat:environment": "prod", "mlplat:cost-center": "cc-4900"}
SPEC = PoolSpec(
    name="train-spot",
    instance_types=("g5.12xlarge", "g6.12xlarge"),
    gpu_limit=16,
    capacity_types=("spot", "on-demand"),
    disk_size_gib=500,
    labels={"mlplat.io/purpose": "training"},
    consolidation_policy="WhenEmptyOrUnderutilized",
    consolidate_after="10m",
    expire_after="336h",
    budget_nodes="20%",
)


def _build() -> dict[str, object]:
    provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
    args = GpuNodePoolArgs(
        spec=SPEC, provider=provider, discovery_value="prod-cluster", instance_profile="karpenter-node", tags=TAGS
    )
    GpuNodePool("pool-train-spot", args)
    return {}


@pytest.fixture(scope="module")
def plan() -> Synthesis:
    return synthesize(_build)


@pytest.fixture(scope="module")
def node_pool(plan: Synthesis) -> dict[str, Any]:
    return plan.named("pool-train-spot-nodepool-train-spot").inputs


@pytest.fixture(scope="module")
def node_class(plan: Synthesis) -> dict[str, Any]:
    return plan.named("pool-train-spot-ec2nodeclass-gpu-train-spot").inputs


def test_the_pool_registers_exactly_a_node_class_and_a_node_pool_through_the_clusters_provider(
    plan: Synthesis,
) -> None:
    children = [r for r in plan if "mlplat:nodepool:GpuNodePool$" in r.urn]
    assert sorted(r.type for r in children) == [
        "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
        "kubernetes:karpenter.sh/v1:NodePool",
    ]
    provider = plan.named("cluster-k8s")
    assert all(r.provider.startswith(provider.urn) for r in children)


def test_the_node_pool_requires_the_pools_types_and_its_capacity_types_in_preference_order(
    node_pool: dict[str, Any],
) -> None:
    assert node_pool["spec"]["template"]["spec"]["requirements"] == [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g5.12xlarge", "g6.12xlarge"]},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]


def test_the_node_pool_caps_the_gpus_its_nodes_may_hold(node_pool: dict[str, Any]) -> None:
    assert node_pool["spec"]["limits"] == {"nvidia.com/gpu": "16"}


def test_nodes_are_tainted_for_gpu_work_and_labelled_with_the_pool(node_pool: dict[str, Any]) -> None:
    template = node_pool["spec"]["template"]
    assert template["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert template["metadata"]["labels"] == {
        "mlplat.io/purpose": "training",
        "mlplat.io/pool": "train-spot",
        "nvidia.com/gpu.present": "true",
    }


def test_the_node_pool_consolidates_within_a_budget_and_expires_nodes(node_pool: dict[str, Any]) -> None:
    assert node_pool["spec"]["disruption"] == {
        "consolidationPolicy": "WhenEmptyOrUnderutilized",
        "consolidateAfter": "10m",
        "budgets": [{"nodes": "20%"}],
    }
    assert node_pool["spec"]["template"]["spec"]["expireAfter"] == "336h"


def test_the_node_pool_boots_from_its_own_node_class(node_pool: dict[str, Any]) -> None:
    assert node_pool["spec"]["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "gpu-train-spot",
    }


def test_the_node_class_boots_the_al2023_alias_with_imdsv2_and_a_hop_limit_of_one(node_class: dict[str, Any]) -> None:
    spec = node_class["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert spec["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpProtocolIPv6": "disabled",
        "httpPutResponseHopLimit": 1,
        "httpTokens": "required",
    }


def test_the_node_class_root_is_encrypted_gp3_of_the_pools_size(node_class: dict[str, Any]) -> None:
    assert node_class["spec"]["blockDeviceMappings"] == [
        {
            "deviceName": "/dev/xvda",
            "ebs": {"volumeSize": "500Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True},
        }
    ]


def test_the_node_class_selects_subnets_and_security_groups_by_the_discovery_tag(node_class: dict[str, Any]) -> None:
    selector = [{"tags": {"karpenter.sh/discovery": "prod-cluster"}}]
    assert node_class["spec"]["subnetSelectorTerms"] == selector
    assert node_class["spec"]["securityGroupSelectorTerms"] == selector
    assert node_class["spec"]["instanceProfile"] == "karpenter-node"


def test_the_node_class_tags_what_karpenter_launches_with_the_stack_tags(node_class: dict[str, Any]) -> None:
    assert node_class["spec"]["tags"] == TAGS


def test_a_bottlerocket_pool_boots_its_alias_and_sizes_the_data_volume_not_the_os_volume() -> None:
    spec = render_node_class(
        PoolSpec("infer", ("g6.xlarge",), 4, ami_family="Bottlerocket", disk_size_gib=200), "c", "p", {}
    )["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "bottlerocket@latest"}]
    assert [(m["deviceName"], m["ebs"]["volumeSize"]) for m in spec["blockDeviceMappings"]] == [
        ("/dev/xvda", "4Gi"),
        ("/dev/xvdb", "200Gi"),
    ]


def test_a_pool_named_by_families_also_requires_its_families() -> None:
    pool = render_node_pool(PoolSpec("infer", ("g6.xlarge", "g6.2xlarge"), 4, instance_families=("g6",)))
    assert pool["spec"]["template"]["spec"]["requirements"][0] == {
        "key": "karpenter.k8s.aws/instance-family",
        "operator": "In",
        "values": ["g6"],
    }


def test_a_time_sliced_pool_labels_its_nodes_with_its_device_plugin_config() -> None:
    pool = render_node_pool(PoolSpec("infer", ("g6.xlarge",), 4, time_slicing_replicas=4))
    assert pool["spec"]["template"]["metadata"]["labels"]["nvidia.com/device-plugin.config"] == "infer"


def test_a_spot_only_pool_carries_its_waiver_as_an_annotation() -> None:
    pool = render_node_pool(PoolSpec("cheap", ("g5.xlarge",), 4, ("spot",), spot_waiver="checkpointed sweeps"))
    assert pool["metadata"]["annotations"] == {"mlplat.io/spot-only-waiver": "checkpointed sweeps"}


def test_both_objects_are_valid_against_the_karpenter_crds() -> None:
    manifests = [render_node_class(SPEC, "prod-cluster", "karpenter-node", TAGS), render_node_pool(SPEC)]
    report = k8s_validate.validate_manifests(manifests, "1.35")
    assert [str(p) for p in report.problems] == []


def test_a_cpu_instance_type_is_rejected_before_anything_is_created() -> None:
    provider_free = GpuNodePoolArgs(
        spec=PoolSpec("bad", ("m5.large",), 4),
        provider=None,
        discovery_value="c",
        instance_profile="p",  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError) as raised:
        GpuNodePool("bad", provider_free)
    assert str(raised.value) == "GpuNodePool bad: instanceTypes[0] is not a GPU instance type (got 'm5.large')"


def test_an_unknown_capacity_type_is_rejected() -> None:
    args = GpuNodePoolArgs(
        spec=PoolSpec("bad", ("g5.xlarge",), 4, ("SPOT",)),
        provider=None,
        discovery_value="c",
        instance_profile="p",  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError) as raised:
        GpuNodePool("bad", args)
    assert (
        str(raised.value) == "GpuNodePool bad: capacityTypes[0] must be 'reserved', 'spot' or 'on-demand' (got 'SPOT')"
    )
