"""Compute policies: the EKS control plane, node groups, launch templates, GPU guard rails."""

import pytest
from policy_support import UNKNOWN, changed, removed, run

from components import catalog, versions
from policies import compute

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/0000"

CLUSTER_PROPS = {
    "version": "1.35",
    "roleArn": "arn:aws:iam::111122223333:role/eks",
    "vpcConfig": {"subnetIds": ["subnet-1", "subnet-2"], "endpointPrivateAccess": True, "endpointPublicAccess": False},
    "encryptionConfig": {"provider": {"keyArn": KEY_ARN}, "resources": ["secrets"]},
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
}
POOL = {
    "clusterName": "mlplat-prod",
    "instanceTypes": ["g5.12xlarge"],
    "capacityType": "SPOT",
    "amiType": "AL2023_x86_64_NVIDIA",
    "scalingConfig": {"minSize": 0, "maxSize": 4, "desiredSize": 0},
    "launchTemplate": {"id": "lt-1", "version": "1"},
}
TEMPLATE_PROPS = {
    "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
    "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 100, "encrypted": "true"}}],
}
PROD_TYPES = ["g5.xlarge", "g5.2xlarge", "g5.12xlarge", "g6.xlarge", "g6e.xlarge", "p4d.24xlarge", "p5.48xlarge"]


@pytest.mark.parametrize(
    "policy", ["eks-api-endpoint-private", "eks-secrets-encryption", "eks-control-plane-logs", "eks-supported-version"]
)
def test_a_private_encrypted_logged_current_cluster_passes(policy: str) -> None:
    assert run(policy, CLUSTER, CLUSTER_PROPS) == []


def test_a_cluster_api_open_to_the_internet_is_reported() -> None:
    assert run("eks-api-endpoint-private", CLUSTER, changed(CLUSTER_PROPS, "vpcConfig.endpointPublicAccess", True)) == [
        "the API endpoint is open to the internet; set vpcConfig.endpointPublicAccess: false, or list the admin "
        "CIDRs in vpcConfig.publicAccessCidrs (mlplat:cluster.publicAccessCidrs)."
    ]


def test_a_public_api_limited_to_listed_cidrs_passes() -> None:
    props = changed(CLUSTER_PROPS, "vpcConfig.endpointPublicAccess", True)
    props = changed(props, "vpcConfig.publicAccessCidrs", ["203.0.113.0/24"])
    assert run("eks-api-endpoint-private", CLUSTER, props) == []


def test_a_cluster_without_the_private_endpoint_is_reported() -> None:
    assert run("eks-api-endpoint-private", CLUSTER, removed(CLUSTER_PROPS, "vpcConfig.endpointPrivateAccess")) == [
        "the private API endpoint is off, so nodes reach the API over the internet; set "
        "vpcConfig.endpointPrivateAccess: true."
    ]


def test_a_cluster_without_secrets_encryption_is_reported() -> None:
    assert run("eks-secrets-encryption", CLUSTER, removed(CLUSTER_PROPS, "encryptionConfig")) == [
        'secrets are not encrypted with a KMS key; set encryptionConfig: {resources: ["secrets"], provider: '
        "{keyArn: <key ARN>}}."
    ]


def test_a_secrets_key_unknown_during_preview_counts_as_set() -> None:
    props = changed(CLUSTER_PROPS, "encryptionConfig.provider.keyArn", UNKNOWN)
    assert run("eks-secrets-encryption", CLUSTER, props) == []


def test_missing_control_plane_log_types_are_named() -> None:
    props = changed(CLUSTER_PROPS, "enabledClusterLogTypes", ["api", "audit"])
    assert run("eks-control-plane-logs", CLUSTER, props) == [
        "control-plane logs authenticator, controllerManager, scheduler are off; set enabledClusterLogTypes to all "
        "five types."
    ]


def test_a_version_out_of_standard_support_is_reported() -> None:
    assert run("eks-supported-version", CLUSTER, changed(CLUSTER_PROPS, "version", "1.29"), minVersion="1.32") == [
        "Kubernetes 1.29 is out of EKS standard support; upgrade to 1.32 or later (mlplat:cluster.version)."
    ]


def test_an_unpinned_version_is_reported() -> None:
    assert run("eks-supported-version", CLUSTER, removed(CLUSTER_PROPS, "version")) == [
        "the Kubernetes version is not pinned; set version to 1.35 or later (mlplat:cluster.version)."
    ]


def test_a_version_past_its_dated_end_of_standard_support_is_reported_with_the_date() -> None:
    props = changed(CLUSTER_PROPS, "version", "1.34")
    assert run("eks-supported-version", CLUSTER, props, minVersion="1.32", asOf="2026-12-06") == [
        "Kubernetes 1.34 left EKS standard support on 2026-12-02, so the cluster bills the extended-support hour; "
        "upgrade mlplat:cluster.version to a version in standard support."
    ]


def test_a_version_before_its_end_date_passes() -> None:
    props = changed(CLUSTER_PROPS, "version", "1.34")
    assert run("eks-supported-version", CLUSTER, props, minVersion="1.32", asOf="2026-12-01") == []


def test_the_packs_support_dates_match_the_components_version_table() -> None:
    assert {
        v: r.end_of_standard_support.isoformat() for v, r in versions.RELEASES.items()
    } == compute.STANDARD_SUPPORT_ENDS


def test_a_node_group_with_a_launch_template_passes() -> None:
    assert run("eks-node-launch-template", NODE_GROUP, POOL) == []


def test_a_node_group_without_a_launch_template_is_reported() -> None:
    assert run("eks-node-launch-template", NODE_GROUP, removed(POOL, "launchTemplate")) == [
        "node group has no launch template, so IMDSv2 and volume encryption are left to defaults; set "
        "launchTemplate to an mlplat node template."
    ]


def test_a_node_group_with_ssh_is_reported() -> None:
    props = changed(POOL, "remoteAccess", {"ec2SshKey": "ops"})
    assert run("eks-node-launch-template", NODE_GROUP, props) == [
        "node group opens SSH (remoteAccess); remove it and use SSM Session Manager."
    ]


def test_a_template_requiring_imdsv2_passes() -> None:
    assert run("ec2-imdsv2", TEMPLATE, TEMPLATE_PROPS) == []


def test_a_template_accepting_imdsv1_is_reported() -> None:
    assert run("ec2-imdsv2", TEMPLATE, changed(TEMPLATE_PROPS, "metadataOptions.httpTokens", "optional")) == [
        "instances accept IMDSv1; set metadataOptions.httpTokens: required."
    ]


def test_a_hop_limit_over_the_configured_maximum_is_reported() -> None:
    props = changed(TEMPLATE_PROPS, "metadataOptions.httpPutResponseHopLimit", 3)
    assert run("ec2-imdsv2", TEMPLATE, props, maxHopLimit=2) == [
        "metadata hop limit is 3, so pods can reach the node's credentials; set "
        "metadataOptions.httpPutResponseHopLimit <= 2."
    ]


def test_a_template_with_encrypted_volumes_passes() -> None:
    assert run("ec2-encrypted-volumes", TEMPLATE, TEMPLATE_PROPS) == []


def test_an_unencrypted_volume_is_reported() -> None:
    props = changed(TEMPLATE_PROPS, "blockDeviceMappings.0.ebs.encrypted", "false")
    assert run("ec2-encrypted-volumes", TEMPLATE, props) == [
        "volume /dev/xvda is not encrypted; set ebs.encrypted: true."
    ]


def test_a_template_without_volumes_is_reported() -> None:
    assert run("ec2-encrypted-volumes", TEMPLATE, removed(TEMPLATE_PROPS, "blockDeviceMappings")) == [
        "the template declares no volumes, so the root volume's encryption is the AMI's default; add "
        "blockDeviceMappings with ebs.encrypted: true."
    ]


def test_gpu_types_from_the_allow_list_pass() -> None:
    assert run("gpu-instance-types-allowed", NODE_GROUP, POOL, allowedInstanceTypes=PROD_TYPES) == []


def test_a_gpu_type_outside_the_allow_list_is_reported() -> None:
    props = changed(POOL, "instanceTypes", ["p5.48xlarge"])
    allowed = ["g5.xlarge", "g6.xlarge"]
    assert run("gpu-instance-types-allowed", NODE_GROUP, props, allowedInstanceTypes=allowed) == [
        "GPU instance type p5.48xlarge is not allowed in this environment (allowed: g5.xlarge, g6.xlarge); pick an "
        "allowed type or extend allowedInstanceTypes in the policy config."
    ]


def test_cpu_node_groups_are_not_held_to_the_gpu_allow_list() -> None:
    props = changed(POOL, "instanceTypes", ["m6i.large"])
    assert run("gpu-instance-types-allowed", NODE_GROUP, props, allowedInstanceTypes=["g5.xlarge"]) == []


def test_a_pool_within_the_gpu_cap_passes() -> None:
    assert run("gpu-pool-max-gpus", NODE_GROUP, POOL, maxGpusPerPool=16) == []


def test_a_pool_over_the_gpu_cap_is_reported() -> None:
    props = changed(POOL, "scalingConfig.maxSize", 5)
    assert run("gpu-pool-max-gpus", NODE_GROUP, props, maxGpusPerPool=16) == [
        "pool reaches 20 GPUs at maxSize 5 (4 per g5.12xlarge), over the cap of 16; lower scalingConfig.maxSize or "
        "raise maxGpusPerPool in the policy config."
    ]


def test_the_packs_gpu_table_matches_the_instance_catalogue() -> None:
    assert compute.GPU_FAMILIES == catalog.GPU_FAMILIES
    assert {name: spec.gpus for name, spec in catalog.GPU_INSTANCES.items()} == compute.GPUS_PER_NODE
