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


# One bad fixture per condition each compute policy checks; each case is named after its condition.
OPEN_API = (
    "the API endpoint is open to the internet; set vpcConfig.endpointPublicAccess: false, or list the admin CIDRs in "
    "vpcConfig.publicAccessCidrs (mlplat:cluster.publicAccessCidrs)."
)
PUBLIC = changed(CLUSTER_PROPS, "vpcConfig.endpointPublicAccess", True)


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param(
            removed(CLUSTER_PROPS, "vpcConfig.endpointPublicAccess"), [OPEN_API], id="public access by default"
        ),
        pytest.param(
            changed(CLUSTER_PROPS, "vpcConfig.endpointPublicAccess", "true"), [OPEN_API], id="public as a string"
        ),
        pytest.param(
            changed(PUBLIC, "vpcConfig.publicAccessCidrs", ["203.0.113.0/24", "0.0.0.0/0"]),
            [OPEN_API],
            id="public CIDRs include 0.0.0.0/0",
        ),
        pytest.param(
            changed(PUBLIC, "vpcConfig.publicAccessCidrs", ["::/0"]), [OPEN_API], id="public CIDRs include ::/0"
        ),
        pytest.param(
            changed(CLUSTER_PROPS, "vpcConfig.endpointPrivateAccess", "false"),
            [
                "the private API endpoint is off, so nodes reach the API over the internet; set "
                "vpcConfig.endpointPrivateAccess: true."
            ],
            id="private access false",
        ),
        pytest.param(
            changed(CLUSTER_PROPS, "vpcConfig.endpointPrivateAccess", "true"), [], id="private access as a string"
        ),
    ],
)
def test_eks_api_endpoint_private_checks_each_condition(props: dict, messages: list[str]) -> None:
    assert run("eks-api-endpoint-private", CLUSTER, props) == messages


NO_SECRETS_KEY = (
    'secrets are not encrypted with a KMS key; set encryptionConfig: {resources: ["secrets"], provider: '
    "{keyArn: <key ARN>}}."
)


@pytest.mark.parametrize(
    ("encryption", "messages"),
    [
        pytest.param(
            {"provider": {"keyArn": KEY_ARN}, "resources": ["configmaps"]},
            [NO_SECRETS_KEY],
            id="resources without secrets",
        ),
        pytest.param({"provider": {"keyArn": ""}, "resources": ["secrets"]}, [NO_SECRETS_KEY], id="keyArn empty"),
        pytest.param({"resources": ["secrets"]}, [NO_SECRETS_KEY], id="no provider"),
        pytest.param(
            [
                {"provider": {"keyArn": KEY_ARN}, "resources": ["configmaps"]},
                {"provider": {"keyArn": KEY_ARN}, "resources": "secrets"},
            ],
            [],
            id="a list whose second entry covers secrets",
        ),
    ],
)
def test_eks_secrets_encryption_checks_each_condition(encryption: object, messages: list[str]) -> None:
    assert run("eks-secrets-encryption", CLUSTER, changed(CLUSTER_PROPS, "encryptionConfig", encryption)) == messages


@pytest.mark.parametrize("log_type", ["api", "audit", "authenticator", "controllerManager", "scheduler"])
def test_eks_control_plane_logs_names_each_missing_log_type(log_type: str) -> None:
    enabled = [t for t in CLUSTER_PROPS["enabledClusterLogTypes"] if t != log_type]
    assert run("eks-control-plane-logs", CLUSTER, changed(CLUSTER_PROPS, "enabledClusterLogTypes", enabled)) == [
        f"control-plane logs {log_type} are off; set enabledClusterLogTypes to all five types."
    ]


OUT_OF_SUPPORT = "Kubernetes {} is out of EKS standard support; upgrade to 1.33 or later (mlplat:cluster.version)."


@pytest.mark.parametrize(
    ("version", "messages"),
    [
        pytest.param("1.33", [], id="at minVersion"),
        pytest.param("1.32", [OUT_OF_SUPPORT.format("1.32")], id="one minor under minVersion"),
        pytest.param("1.100", [], id="a minor compared as a number, not text"),
        pytest.param("2.0", [], id="a later major"),
        pytest.param("0.40", [OUT_OF_SUPPORT.format("0.40")], id="an earlier major"),
        pytest.param("latest", [OUT_OF_SUPPORT.format("latest")], id="not a version"),
        pytest.param("1.33.1", [OUT_OF_SUPPORT.format("1.33.1")], id="a patch version"),
    ],
)
def test_eks_supported_version_compares_with_min_version(version: str, messages: list[str]) -> None:
    props = changed(CLUSTER_PROPS, "version", version)
    assert run("eks-supported-version", CLUSTER, props, minVersion="1.33", standardSupportEnds={}) == messages


def test_eks_supported_version_reports_a_version_on_its_end_date() -> None:
    props = changed(CLUSTER_PROPS, "version", "1.34")
    assert run("eks-supported-version", CLUSTER, props, minVersion="1.32", asOf="2026-12-02") == [
        "Kubernetes 1.34 left EKS standard support on 2026-12-02, so the cluster bills the extended-support hour; "
        "upgrade mlplat:cluster.version to a version in standard support."
    ]


def test_eks_supported_version_defaults_to_todays_date() -> None:
    props = changed(CLUSTER_PROPS, "version", "1.32")
    assert run("eks-supported-version", CLUSTER, props, minVersion="1.32") == [
        "Kubernetes 1.32 left EKS standard support on 2026-03-23, so the cluster bills the extended-support hour; "
        "upgrade mlplat:cluster.version to a version in standard support."
    ]


def test_eks_supported_version_defaults_to_min_version_1_35_and_the_dated_table() -> None:
    assert run("eks-supported-version", CLUSTER, changed(CLUSTER_PROPS, "version", "1.36")) == []
    assert run("eks-supported-version", CLUSTER, changed(CLUSTER_PROPS, "version", "1.31"), asOf="2026-01-01") == [
        "Kubernetes 1.31 is out of EKS standard support; upgrade to 1.35 or later (mlplat:cluster.version)."
    ]


NO_TEMPLATE = (
    "node group has no launch template, so IMDSv2 and volume encryption are left to defaults; set launchTemplate to "
    "an mlplat node template."
)


@pytest.mark.parametrize(
    ("template", "messages"),
    [
        pytest.param({"name": "mlplat-gpu", "version": "1"}, [], id="a template by name"),
        pytest.param({"id": "", "version": "1"}, [NO_TEMPLATE], id="template id empty"),
        pytest.param({"version": "1"}, [NO_TEMPLATE], id="neither id nor name"),
    ],
)
def test_eks_node_launch_template_checks_each_way_to_name_a_template(template: dict, messages: list[str]) -> None:
    assert run("eks-node-launch-template", NODE_GROUP, changed(POOL, "launchTemplate", template)) == messages


def test_eks_node_launch_template_reports_both_problems_at_once() -> None:
    props = changed(removed(POOL, "launchTemplate"), "remoteAccess", {"ec2SshKey": "ops"})
    assert run("eks-node-launch-template", NODE_GROUP, props) == [
        NO_TEMPLATE,
        "node group opens SSH (remoteAccess); remove it and use SSM Session Manager.",
    ]


HOPS = (
    "metadata hop limit is {}, so pods can reach the node's credentials; set metadataOptions.httpPutResponseHopLimit "
    "<= 2."
)
IMDSV1 = "instances accept IMDSv1; set metadataOptions.httpTokens: required."


@pytest.mark.parametrize(
    ("path", "value", "messages"),
    [
        pytest.param("metadataOptions.httpPutResponseHopLimit", 2, [], id="hop limit at the default maximum 2"),
        pytest.param("metadataOptions.httpPutResponseHopLimit", 3, [HOPS.format(3)], id="hop limit just over 2"),
        pytest.param("metadataOptions.httpPutResponseHopLimit", "3", [HOPS.format(3)], id="hop limit as a string"),
        pytest.param("metadataOptions.httpTokens", None, [IMDSV1], id="httpTokens unset"),
        pytest.param("metadataOptions", {"httpEndpoint": "disabled"}, [], id="metadata endpoint disabled"),
        pytest.param("metadataOptions", None, [IMDSV1], id="no metadataOptions"),
    ],
)
def test_ec2_imdsv2_checks_each_condition(path: str, value: object, messages: list[str]) -> None:
    assert run("ec2-imdsv2", TEMPLATE, changed(TEMPLATE_PROPS, path, value)) == messages


@pytest.mark.parametrize(
    ("mappings", "messages"),
    [
        pytest.param(
            [{"deviceName": "/dev/xvda", "ebs": {"encrypted": True}}, {"deviceName": "/dev/xvdb", "ebs": {}}],
            ["volume /dev/xvdb is not encrypted; set ebs.encrypted: true."],
            id="second volume without encrypted",
        ),
        pytest.param([{"deviceName": "/dev/sdb", "virtualName": "ephemeral0"}], [], id="an instance store volume"),
        pytest.param(
            [],
            [
                "the template declares no volumes, so the root volume's encryption is the AMI's default; add "
                "blockDeviceMappings with ebs.encrypted: true."
            ],
            id="empty list",
        ),
    ],
)
def test_ec2_encrypted_volumes_checks_each_volume(mappings: list, messages: list[str]) -> None:
    assert run("ec2-encrypted-volumes", TEMPLATE, changed(TEMPLATE_PROPS, "blockDeviceMappings", mappings)) == messages


def test_gpu_instance_types_allowed_checks_a_launch_templates_instance_type() -> None:
    assert run("gpu-instance-types-allowed", TEMPLATE, {"instanceType": "p5.48xlarge"}) == [
        "GPU instance type p5.48xlarge is not allowed in this environment (allowed: g4dn.xlarge, g5.xlarge, "
        "g6.xlarge); pick an allowed type or extend allowedInstanceTypes in the policy config."
    ]


@pytest.mark.parametrize(
    ("instance_type", "gpu"),
    [
        pytest.param("g6e.xlarge", True, id="a GPU family"),
        pytest.param("p5en.48xlarge", True, id="an uncatalogued type of a GPU family"),
        pytest.param("g5", False, id="a family name without a size"),
        pytest.param("m6i.large", False, id="a CPU family"),
        pytest.param("gr6.4xlarge", True, id="gr6"),
    ],
)
def test_is_gpu_instance_by_family(instance_type: str, gpu: bool) -> None:
    assert compute.is_gpu_instance(instance_type) is gpu


@pytest.mark.parametrize(
    ("instance_type", "gpus"),
    [("g5.48xlarge", 8), ("p5en.48xlarge", 1), ("m6i.large", 0)],
    ids=["catalogued", "uncatalogued GPU type counts one", "CPU type counts none"],
)
def test_gpus_per_node(instance_type: str, gpus: int) -> None:
    assert compute.gpus_per_node(instance_type) == gpus


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param(changed(POOL, "scalingConfig.maxSize", 1), [], id="at the default cap 4 (4 GPUs at maxSize 1)"),
        pytest.param(
            changed(POOL, "scalingConfig.maxSize", 2),
            [
                "pool reaches 8 GPUs at maxSize 2 (4 per g5.12xlarge), over the cap of 4; lower scalingConfig.maxSize "
                "or raise maxGpusPerPool in the policy config."
            ],
            id="just over the default cap 4",
        ),
        pytest.param(
            changed(
                changed(POOL, "instanceTypes", ["g5.xlarge", "g5.48xlarge", "g5.2xlarge"]), "scalingConfig.maxSize", 1
            ),
            [
                "pool reaches 8 GPUs at maxSize 1 (8 per g5.48xlarge), over the cap of 4; lower scalingConfig.maxSize "
                "or raise maxGpusPerPool in the policy config."
            ],
            id="the largest type of several counts",
        ),
        pytest.param(changed(POOL, "instanceTypes", ["m6i.large"]), [], id="CPU types only"),
        pytest.param(removed(POOL, "scalingConfig"), [], id="no maxSize"),
    ],
)
def test_gpu_pool_max_gpus_checks_each_condition(props: dict, messages: list[str]) -> None:
    assert run("gpu-pool-max-gpus", NODE_GROUP, props) == messages
