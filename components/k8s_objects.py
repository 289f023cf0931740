"""Plain Kubernetes manifest dicts as typed pulumi-kubernetes resources, so a render function stays the one truth.

The components that run on the cluster (team namespaces, the training Job, the serving Deployment) render their
objects as plain dicts with the API's camelCase keys; `create_objects` registers each as the matching typed resource
(not `yaml.ConfigGroup`, whose children a preview or a mock cannot see). Nested dicts pass through to the engine
unchanged, so the recorded inputs are exactly the rendered manifests.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.problems import Problem

# (apiVersion, kind) -> typed class; only the kinds mlplat renders, so an unexpected kind fails loudly.
KINDS: dict[tuple[str, str], type[pulumi.CustomResource]] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "ResourceQuota"): k8s.core.v1.ResourceQuota,
    ("v1", "LimitRange"): k8s.core.v1.LimitRange,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("batch/v1", "Job"): k8s.batch.v1.Job,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): k8s.autoscaling.v2.HorizontalPodAutoscaler,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
}

# Custom resources of the add-ons mlplat installs (Karpenter, Kueue); their schemas are the CRDs under
# `mlplat/crds/`, against which `mlplat.k8s_validate` checks them.
CUSTOM_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("karpenter.sh/v1", "NodePool"),
        ("karpenter.k8s.aws/v1", "EC2NodeClass"),
        ("kueue.x-k8s.io/v1beta2", "ResourceFlavor"),
        ("kueue.x-k8s.io/v1beta2", "ClusterQueue"),
        ("kueue.x-k8s.io/v1beta2", "LocalQueue"),
        ("kueue.x-k8s.io/v1beta2", "WorkloadPriorityClass"),
    }
)


class CustomObject(pulumi.CustomResource):
    """A custom resource registered with every top-level field of its manifest (`apiextensions.CustomResource`
    carries only `spec`, and a Kueue WorkloadPriorityClass keeps `value` at the top)."""

    def __init__(self, name: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__(f"kubernetes:{manifest['apiVersion']}:{manifest['kind']}", name, dict(manifest), opts)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def object_role(obj: Mapping[str, Any]) -> str:
    """The child-name suffix of one manifest: `<kind>-<name>` in lower case."""
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}"


def create_objects(
    name: str,
    objs: Sequence[Mapping[str, Any]],
    opts: pulumi.ResourceOptions,
) -> list[pulumi.CustomResource]:
    """Register each manifest as its typed resource named `f"{name}-<kind>-<name>"`, all with the same options.

    Objects are registered in order and each later one depends on the namespace objects before it, so a namespace
    exists before what lives in it.
    """
    created: list[pulumi.CustomResource] = []
    namespaces: list[pulumi.Resource] = []
    for obj in objs:
        key = (str(obj["apiVersion"]), str(obj["kind"]))
        child_opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(namespaces)))
        resource: pulumi.CustomResource
        if key in CUSTOM_KINDS:
            resource = CustomObject(f"{name}-{object_role(obj)}", obj, child_opts)
        elif key in KINDS:
            fields = {_snake(k): v for k, v in obj.items() if k not in ("apiVersion", "kind")}
            resource = KINDS[key](f"{name}-{object_role(obj)}", opts=child_opts, **fields)
        else:
            raise ValueError(f"no typed resource for {key[0]} {key[1]}; add it to components.k8s_objects.KINDS")
        created.append(resource)
        if key == ("v1", "Namespace"):
            namespaces.append(resource)
    return created


# The hardening every mlplat workload pod carries; it satisfies the `restricted` Pod Security Standard. The UID is
# above 10000 so that it cannot collide with a user of the node (checkov CKV_K8S_40); the images create this user.
RUN_AS = 10001
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def pod_security_context() -> dict[str, Any]:
    """Pod-level: a fixed non-root user and group, the runtime's default seccomp profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container-level: non-root, read-only root filesystem, no capabilities, no privilege escalation."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_dns_label(key: str, value: str, max_length: int = 63) -> list[Problem]:
    """A problem when `value` (at `key`) is not a DNS-1123 label of at most `max_length` characters."""
    if len(value) > max_length or not DNS_LABEL.match(value):
        return [Problem(key, f"must be a DNS-1123 label of at most {max_length} characters (got {value!r})")]
    return []
