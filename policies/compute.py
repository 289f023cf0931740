"""Checks on GPU compute: the EKS control plane, node groups, their launch templates, and the GPU guard rails."""

import re

from policies.base import Config, Props, as_list, as_number, get, is_set, truthy

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
OPEN_CIDRS = ("0.0.0.0/0", "::/0")

# GPUs per node, kept here (not imported from components) because the pack runs in its own virtualenv;
# tests/policies checks that it matches components.catalog.
GPU_FAMILIES: frozenset[str] = frozenset({"g4dn", "g5", "g6", "g6e", "gr6", "p3", "p4d", "p4de", "p5", "p5e", "p5en"})
GPUS_PER_NODE: dict[str, int] = {
    "g4dn.xlarge": 1,
    "g4dn.2xlarge": 1,
    "g4dn.12xlarge": 4,
    "g5.xlarge": 1,
    "g5.2xlarge": 1,
    "g5.4xlarge": 1,
    "g5.12xlarge": 4,
    "g5.48xlarge": 8,
    "g6.xlarge": 1,
    "g6.2xlarge": 1,
    "g6.12xlarge": 4,
    "g6e.xlarge": 1,
    "g6e.12xlarge": 4,
    "p3.2xlarge": 1,
    "p4d.24xlarge": 8,
    "p4de.24xlarge": 8,
    "p5.48xlarge": 8,
    "p5e.48xlarge": 8,
}


def is_gpu_instance(instance_type: str) -> bool:
    """An EC2 type of a GPU family."""
    return "." in instance_type and instance_type.split(".", 1)[0] in GPU_FAMILIES


def gpus_per_node(instance_type: str) -> int:
    """GPUs of a catalogued type; 1 for another GPU type, 0 for a CPU type."""
    return GPUS_PER_NODE.get(instance_type, 1 if is_gpu_instance(instance_type) else 0)


def _version(text: str) -> tuple[int, ...] | None:
    match = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def api_endpoint_private(resource_type: str, props: Props, config: Config) -> list[str]:
    """The API server is private, or public only to listed CIDRs (never the internet)."""
    found: list[str] = []
    vpc = get(props, "vpcConfig")
    # EKS defaults: public access on (from 0.0.0.0/0), private access off.
    public = get(vpc, "endpointPublicAccess")
    public = True if public is None else truthy(public)
    cidrs = [str(c) for c in as_list(get(vpc, "publicAccessCidrs"))]
    if public and (not cidrs or any(c in OPEN_CIDRS for c in cidrs)):
        found.append(
            "the API endpoint is open to the internet; set vpcConfig.endpointPublicAccess: false, or list the "
            "admin CIDRs in vpcConfig.publicAccessCidrs (mlplat:cluster.publicAccessCidrs)."
        )
    if not truthy(get(vpc, "endpointPrivateAccess")):
        found.append(
            "the private API endpoint is off, so nodes reach the API over the internet; set "
            "vpcConfig.endpointPrivateAccess: true."
        )
    return found


def secrets_encryption(resource_type: str, props: Props, config: Config) -> list[str]:
    """Kubernetes secrets are envelope-encrypted with a KMS key."""
    encryption = get(props, "encryptionConfig")
    configs = as_list(encryption) if encryption is not None else []
    for item in configs:
        if "secrets" in [str(r) for r in as_list(get(item, "resources"))] and is_set(item, "provider", "keyArn"):
            return []
    return [
        'secrets are not encrypted with a KMS key; set encryptionConfig: {resources: ["secrets"], provider: '
        "{keyArn: <key ARN>}}."
    ]


def control_plane_logs(resource_type: str, props: Props, config: Config) -> list[str]:
    """All five control-plane log types go to CloudWatch."""
    enabled = {str(t) for t in as_list(get(props, "enabledClusterLogTypes"))}
    missing = [t for t in CONTROL_PLANE_LOG_TYPES if t not in enabled]
    if missing:
        return [f"control-plane logs {', '.join(missing)} are off; set enabledClusterLogTypes to all five types."]
    return []


def supported_version(resource_type: str, props: Props, config: Config) -> list[str]:
    """The cluster pins a Kubernetes version in EKS standard support."""
    lowest = str(config["minVersion"])
    version = get(props, "version")
    if version is None:
        return [f"the Kubernetes version is not pinned; set version to {lowest} or later (mlplat:cluster.version)."]
    parsed, floor = _version(str(version)), _version(lowest)
    if parsed is None or floor is None or parsed < floor:
        return [
            f"Kubernetes {version} is out of EKS standard support; upgrade to {lowest} or later "
            "(mlplat:cluster.version)."
        ]
    return []


def node_group_launch_template(resource_type: str, props: Props, config: Config) -> list[str]:
    """Node groups launch from a template (where IMDSv2 and encryption are enforced) and allow no SSH."""
    found: list[str] = []
    if not (is_set(props, "launchTemplate", "id") or is_set(props, "launchTemplate", "name")):
        found.append(
            "node group has no launch template, so IMDSv2 and volume encryption are left to defaults; set "
            "launchTemplate to an mlplat node template."
        )
    if is_set(props, "remoteAccess"):
        found.append("node group opens SSH (remoteAccess); remove it and use SSM Session Manager.")
    return found


def imdsv2(resource_type: str, props: Props, config: Config) -> list[str]:
    """Instances answer only IMDSv2 requests, within a hop limit that keeps pods off the node's credentials."""
    metadata = get(props, "metadataOptions")
    if get(metadata, "httpEndpoint") == "disabled":
        return []
    found: list[str] = []
    if get(metadata, "httpTokens") != "required":
        found.append("instances accept IMDSv1; set metadataOptions.httpTokens: required.")
    limit = int(config["maxHopLimit"])
    hops = as_number(get(metadata, "httpPutResponseHopLimit"))
    if hops is not None and hops > limit:
        found.append(
            f"metadata hop limit is {int(hops)}, so pods can reach the node's credentials; set "
            f"metadataOptions.httpPutResponseHopLimit <= {limit}."
        )
    return found


def encrypted_volumes(resource_type: str, props: Props, config: Config) -> list[str]:
    """Every EBS volume the template declares is encrypted; the root volume is declared."""
    mappings = as_list(get(props, "blockDeviceMappings"))
    if not mappings:
        return [
            "the template declares no volumes, so the root volume's encryption is the AMI's default; add "
            "blockDeviceMappings with ebs.encrypted: true."
        ]
    found: list[str] = []
    for mapping in mappings:
        ebs = get(mapping, "ebs")
        if ebs is not None and not truthy(get(ebs, "encrypted")):
            found.append(f"volume {get(mapping, 'deviceName')} is not encrypted; set ebs.encrypted: true.")
    return found


def _instance_types(resource_type: str, props: Props) -> list[str]:
    if resource_type == LAUNCH_TEMPLATE:
        return [str(t) for t in as_list(get(props, "instanceType"))]
    return [str(t) for t in as_list(get(props, "instanceTypes"))]


def gpu_instance_types_allowed(resource_type: str, props: Props, config: Config) -> list[str]:
    """GPU instance types come from the environment's allow-list."""
    allowed = [str(t) for t in config["allowedInstanceTypes"]]
    return [
        f"GPU instance type {itype} is not allowed in this environment (allowed: {', '.join(allowed)}); pick an "
        "allowed type or extend allowedInstanceTypes in the policy config."
        for itype in _instance_types(resource_type, props)
        if is_gpu_instance(itype) and itype not in allowed
    ]


def gpu_pool_max_gpus(resource_type: str, props: Props, config: Config) -> list[str]:
    """A GPU pool at its maximum size stays within the environment's cap on GPUs per pool."""
    types = [t for t in _instance_types(resource_type, props) if is_gpu_instance(t)]
    max_size = as_number(get(props, "scalingConfig", "maxSize"))
    if not types or max_size is None:
        return []
    largest = max(types, key=gpus_per_node)
    gpus = int(max_size) * gpus_per_node(largest)
    cap = int(config["maxGpusPerPool"])
    if gpus > cap:
        return [
            f"pool reaches {gpus} GPUs at maxSize {int(max_size)} ({gpus_per_node(largest)} per {largest}), over "
            f"the cap of {cap}; lower scalingConfig.maxSize or raise maxGpusPerPool in the policy config."
        ]
    return []
