"""Checks on GPU compute: the EKS control plane, node groups, launch templates, Karpenter pools, the teams' Kueue
queues, and the GPU guard rails."""

import re
from collections.abc import Sequence
from datetime import date

from policies.base import Config, Props, StackResource, Violation, as_list, as_number, get, is_set, peek, truthy

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NAMESPACE = "kubernetes:core/v1:Namespace"
LOCAL_QUEUE = "kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue"
CLUSTER_QUEUE = "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"
TEAM_LABEL = "mlplat.io/team"
GPU_RESOURCE = "nvidia.com/gpu"
SPOT_WAIVER_ANNOTATION = "mlplat.io/spot-only-waiver"

# End of EKS standard support per minor (components/versions.py holds the same dates; a test keeps them equal).
STANDARD_SUPPORT_ENDS: dict[str, str] = {
    "1.32": "2026-03-23",
    "1.33": "2026-07-29",
    "1.34": "2026-12-02",
    "1.35": "2027-03-27",
}

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
    """The cluster pins a Kubernetes version still in EKS standard support (by the dated table, else minVersion)."""
    lowest = str(config["minVersion"])
    version = get(props, "version")
    if version is None:
        return [f"the Kubernetes version is not pinned; set version to {lowest} or later (mlplat:cluster.version)."]
    ends = dict(config.get("standardSupportEnds") or {})
    today = date.fromisoformat(str(config["asOf"])) if config.get("asOf") else date.today()
    if str(version) in ends and date.fromisoformat(str(ends[str(version)])) <= today:
        return [
            f"Kubernetes {version} left EKS standard support on {ends[str(version)]}, so the cluster bills the "
            "extended-support hour; upgrade mlplat:cluster.version to a version in standard support."
        ]
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
    if resource_type == NODE_POOL:
        return _requirement_values(props, "node.kubernetes.io/instance-type") or []
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
    cap = int(config["maxGpusPerPool"])
    if resource_type == NODE_POOL:
        limit = as_number(get(props, "spec", "limits", GPU_RESOURCE))
        if limit is not None and limit > cap:
            return [
                f"NodePool may hold {int(limit)} GPUs, over the cap of {cap}; lower spec.limits.{GPU_RESOURCE} "
                "(mlplat:gpuPools[].gpuLimit) or raise maxGpusPerPool in the policy config."
            ]
        return []
    types = [t for t in _instance_types(resource_type, props) if is_gpu_instance(t)]
    max_size = as_number(get(props, "scalingConfig", "maxSize"))
    if not types or max_size is None:
        return []
    largest = max(types, key=gpus_per_node)
    gpus = int(max_size) * gpus_per_node(largest)
    if gpus > cap:
        return [
            f"pool reaches {gpus} GPUs at maxSize {int(max_size)} ({gpus_per_node(largest)} per {largest}), over "
            f"the cap of {cap}; lower scalingConfig.maxSize or raise maxGpusPerPool in the policy config."
        ]
    return []


def _requirement_values(props: Props, key: str) -> list[str] | None:
    """Values a NodePool allows for a requirement key (`In` only); None when it sets no `In` requirement on it."""
    for req in as_list(get(props, "spec", "template", "spec", "requirements")):
        if get(req, "key") == key and get(req, "operator") == "In":
            return [str(v) for v in as_list(get(req, "values"))]
    return None


def _is_gpu_node_pool(props: Props) -> bool:
    types = _requirement_values(props, "node.kubernetes.io/instance-type") or []
    families = _requirement_values(props, "karpenter.k8s.aws/instance-family") or []
    taints = [get(t, "key") for t in as_list(get(props, "spec", "template", "spec", "taints"))]
    return any(is_gpu_instance(t) for t in types) or any(f in GPU_FAMILIES for f in families) or GPU_RESOURCE in taints


def node_pool_gpu_limit(resource_type: str, props: Props, config: Config) -> list[str]:
    """A GPU NodePool caps the GPUs its nodes may hold."""
    if not _is_gpu_node_pool(props) or get(props, "spec", "limits", GPU_RESOURCE) is not None:
        return []
    return [
        f"GPU NodePool has no GPU limit, so Karpenter may launch GPUs without bound; set "
        f"spec.limits.{GPU_RESOURCE} (mlplat:gpuPools[].gpuLimit)."
    ]


def spot_on_demand_fallback(resource_type: str, props: Props, config: Config) -> list[str]:
    """A NodePool that takes spot capacity may fall back to on-demand, unless a waiver says why not."""
    capacity = _requirement_values(props, "karpenter.sh/capacity-type")
    if capacity is None or "spot" not in capacity or "on-demand" in capacity:
        return []
    if get(props, "metadata", "annotations", SPOT_WAIVER_ANNOTATION):
        return []
    return [
        "NodePool takes spot capacity with no on-demand fallback, so a spot shortage stalls its jobs; add on-demand "
        "to the karpenter.sh/capacity-type requirement (mlplat:gpuPools[].capacityTypes), or record why not in the "
        f"{SPOT_WAIVER_ANNOTATION} annotation (mlplat:gpuPools[].spotWaiver)."
    ]


def team_cluster_queues(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every team namespace has a LocalQueue that feeds a ClusterQueue the stack declares."""
    cluster_queues = {peek(r.props, "metadata", "name") for r in resources if r.type == CLUSTER_QUEUE}
    found: list[Violation] = []
    for ns in resources:
        if ns.type != NAMESPACE or peek(ns.props, "metadata", "labels", TEAM_LABEL) is None:
            continue
        name = peek(ns.props, "metadata", "name")
        local = [q for q in resources if q.type == LOCAL_QUEUE and peek(q.props, "metadata", "namespace") == name]
        if not local:
            found.append(
                Violation(
                    f"team namespace {name} has no Kueue LocalQueue, so its jobs are never admitted; add a LocalQueue "
                    "feeding the team's ClusterQueue (components.kueue).",
                    ns.urn,
                )
            )
        for queue in local:
            target = peek(queue.props, "spec", "clusterQueue")
            if target not in cluster_queues:
                found.append(
                    Violation(
                        f"LocalQueue {name}/{peek(queue.props, 'metadata', 'name')} feeds ClusterQueue {target}, "
                        "which the stack does not declare; add a ClusterQueue per team (components.kueue).",
                        queue.urn,
                    )
                )
    return found
