"""Checks on what runs on the cluster: pod security of every workload, requests and limits, probes, pinned charts."""

import re
from collections.abc import Iterator, Sequence
from typing import Any

from policies.base import Config, Props, StackResource, Violation, as_list, get, peek, truthy

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
WORKLOAD_TYPES = tuple(POD_SPEC_PATHS)
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
NAMESPACE = "kubernetes:core/v1:Namespace"
TEAM_LABEL = "mlplat.io/team"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
ALLOWED_SECCOMP = ("RuntimeDefault", "Localhost")

_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")


def _containers(resource_type: str, props: Props) -> Iterator[tuple[str, Any, Any]]:
    """(label, container, pod spec) for every container and init container of the workload."""
    pod = get(props, *POD_SPEC_PATHS[resource_type])
    for key, kind in (("initContainers", "init container"), ("containers", "container")):
        for container in as_list(get(pod, key)):
            yield f"{kind} {get(container, 'name')}", container, pod


def _effective(container: Any, pod: Any, *path: str) -> Any:
    """A container's security-context setting, falling back to the pod's."""
    value = get(container, "securityContext", *path)
    return get(pod, "securityContext", *path) if value is None else value


def run_as_non_root(resource_type: str, props: Props, config: Config) -> list[str]:
    """Every container runs as a non-root user."""
    found: list[str] = []
    for label, container, pod in _containers(resource_type, props):
        if _effective(container, pod, "runAsUser") == 0:
            found.append(f"{label} runs as UID 0; set securityContext.runAsUser to a non-zero UID.")
        elif not truthy(_effective(container, pod, "runAsNonRoot")):
            found.append(f"{label} may run as root; set securityContext.runAsNonRoot: true.")
    return found


def read_only_root_filesystem(resource_type: str, props: Props, config: Config) -> list[str]:
    """Every container's root filesystem is read-only (writable paths are volumes)."""
    return [
        f"{label} can write its root filesystem; set securityContext.readOnlyRootFilesystem: true and mount an "
        "emptyDir where it writes."
        for label, container, _ in _containers(resource_type, props)
        if not truthy(get(container, "securityContext", "readOnlyRootFilesystem"))
    ]


def capabilities_dropped(resource_type: str, props: Props, config: Config) -> list[str]:
    """Every container drops all Linux capabilities and adds none back."""
    found: list[str] = []
    for label, container, _ in _containers(resource_type, props):
        dropped = [str(c) for c in as_list(get(container, "securityContext", "capabilities", "drop"))]
        added = [str(c) for c in as_list(get(container, "securityContext", "capabilities", "add"))]
        if "ALL" not in dropped:
            found.append(f'{label} keeps Linux capabilities; set securityContext.capabilities.drop: ["ALL"].')
        if added:
            found.append(f"{label} adds capabilities {', '.join(added)}; remove securityContext.capabilities.add.")
    return found


def no_privilege_escalation(resource_type: str, props: Props, config: Config) -> list[str]:
    """No container is privileged or may gain privileges (setuid binaries)."""
    found: list[str] = []
    for label, container, _ in _containers(resource_type, props):
        if truthy(get(container, "securityContext", "privileged")):
            found.append(f"{label} is privileged; remove securityContext.privileged.")
        if get(container, "securityContext", "allowPrivilegeEscalation") is not False:
            found.append(f"{label} may escalate privileges; set securityContext.allowPrivilegeEscalation: false.")
    return found


def seccomp(resource_type: str, props: Props, config: Config) -> list[str]:
    """Every container runs under a seccomp profile (the runtime's default or a local one)."""
    return [
        f"{label} runs without a seccomp profile; set securityContext.seccompProfile.type: RuntimeDefault on the pod."
        for label, container, pod in _containers(resource_type, props)
        if _effective(container, pod, "seccompProfile", "type") not in ALLOWED_SECCOMP
    ]


def requests_and_limits(resource_type: str, props: Props, config: Config) -> list[str]:
    """Every container requests and limits CPU and memory, so quotas and bin-packing work."""
    found: list[str] = []
    for label, container, _ in _containers(resource_type, props):
        missing = [
            f"{kind}.{resource}"
            for kind in ("requests", "limits")
            for resource in ("cpu", "memory")
            if get(container, "resources", kind, resource) is None
        ]
        if missing:
            found.append(f"{label} has no {', '.join(missing)}; set resources.requests and resources.limits.")
    return found


def deployment_probes(resource_type: str, props: Props, config: Config) -> list[str]:
    """Every long-running container of a Deployment has readiness and liveness probes."""
    found: list[str] = []
    pod = get(props, *POD_SPEC_PATHS[resource_type])
    for container in as_list(get(pod, "containers")):
        missing = [probe for probe in ("readinessProbe", "livenessProbe") if get(container, probe) is None]
        if missing:
            found.append(
                f"container {get(container, 'name')} has no {' or '.join(missing)}; add probes (serving: GET /ping "
                "on port 8080)."
            )
    return found


def helm_chart_pinned(resource_type: str, props: Props, config: Config) -> list[str]:
    """Helm charts install an exact version from an HTTPS or OCI repository."""
    chart = str(get(props, "chart") or "")
    if chart.startswith((".", "/")):
        return []  # a chart in this repository is pinned by the commit
    found: list[str] = []
    version = get(props, "version")
    if version is None or not _EXACT_VERSION.match(str(version)):
        shown = "no version" if version is None else f"version {version!r}"
        found.append(f"chart {chart} has {shown}; pin an exact chart version such as 0.17.1.")
    repo = str(get(props, "repositoryOpts", "repo") or "")
    if repo.startswith("http://"):
        found.append(f"chart {chart} comes from {repo} over plain HTTP; use the https:// or oci:// repository.")
    return found


def job_queue_label(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every Job in a team namespace names the team's Kueue queue, so Kueue admits its pods as one gang."""
    teams = {
        peek(r.props, "metadata", "name")
        for r in resources
        if r.type == NAMESPACE and peek(r.props, "metadata", "labels", TEAM_LABEL) is not None
    }
    return [
        Violation(
            f"Job {peek(job.props, 'metadata', 'namespace')}/{peek(job.props, 'metadata', 'name')} carries no "
            f"{QUEUE_LABEL} label, so Kueue cannot admit it as a gang; label it with the namespace's LocalQueue "
            "and submit it suspended.",
            job.urn,
        )
        for job in resources
        if job.type == JOB
        and peek(job.props, "metadata", "namespace") in teams
        and not peek(job.props, "metadata", "labels", QUEUE_LABEL)
    ]


SERVING_LABEL = "mlplat.io/workload"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
MIN_SERVING_UID = 10000
"""Serving pods run above the UIDs a node's image assigns to its own users (and to root's)."""


def _is_serving(props: Props) -> bool:
    return peek(props, "metadata", "labels", SERVING_LABEL) == "serving"


def serving_hardening(resource_type: str, props: Props, config: Config) -> list[str]:
    """A serving Deployment runs as a UID >= 10000 and does not mount the Kubernetes API token (it reaches AWS through
    its IRSA web-identity token, which is a separate projected volume)."""
    if not _is_serving(props):
        return []
    found: list[str] = []
    for label, container, pod in _containers(resource_type, props):
        uid = _effective(container, pod, "runAsUser")
        if not isinstance(uid, int) or uid < MIN_SERVING_UID:
            found.append(f"{label} runs as UID {uid}; set securityContext.runAsUser to {MIN_SERVING_UID} or above.")
    pod = get(props, *POD_SPEC_PATHS[resource_type])
    if get(pod, "automountServiceAccountToken") is not False:
        found.append(
            "the pod mounts the service account's API token; set automountServiceAccountToken: false "
            "(IRSA credentials do not need it)."
        )
    return found


def serving_availability(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every serving Deployment has an autoscaler targeting it and a disruption budget in its namespace."""

    def key(r: StackResource) -> tuple[Any, Any]:
        return peek(r.props, "metadata", "namespace"), peek(r.props, "metadata", "name")

    scaled = {
        (peek(r.props, "metadata", "namespace"), peek(r.props, "spec", "scaleTargetRef", "name"))
        for r in resources
        if r.type == HPA
    }
    budgeted = {key(r) for r in resources if r.type == PDB}
    found: list[Violation] = []
    for deployment in resources:
        if deployment.type != DEPLOYMENT or not _is_serving(deployment.props):
            continue
        namespace, name = key(deployment)
        missing = [
            what
            for what, present in (
                ("HorizontalPodAutoscaler", (namespace, name) in scaled),
                ("PodDisruptionBudget", (namespace, name) in budgeted),
            )
            if not present
        ]
        if missing:
            found.append(
                Violation(f"serving Deployment {namespace}/{name} has no {' or '.join(missing)}.", deployment.urn)
            )
    return found


IN_FLIGHT_METRIC = "mlplat_serving_in_flight_requests"
"""The serving image's in-flight gauge, served to autoscalers by the Prometheus adapter."""
DEFAULT_MAX_IN_FLIGHT = 64
"""The serving image's in-flight limit per worker when `MLPLAT_MAX_IN_FLIGHT` is not set: past it, 503 at once."""
ADAPTER_CHART = "prometheus-adapter"


def _in_flight_target(hpa: StackResource) -> Any:
    for metric in as_list(peek(hpa.props, "spec", "metrics")):
        if peek(metric, "type") == "Pods" and peek(metric, "pods", "metric", "name") == IN_FLIGHT_METRIC:
            return peek(metric, "pods", "target", "averageValue")
    return None


def _max_in_flight(deployment: StackResource | None) -> int:
    if deployment is not None:
        for container in as_list(peek(deployment.props, "spec", "template", "spec", "containers")):
            for env in as_list(peek(container, "env")):
                if peek(env, "name") == "MLPLAT_MAX_IN_FLIGHT" and str(peek(env, "value")).isdigit():
                    return int(peek(env, "value"))
    return DEFAULT_MAX_IN_FLIGHT


def serving_in_flight_scaling(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """An autoscaler on in-flight requests has the metrics adapter that serves them in the stack, and a target of
    at least 1 below the server's in-flight limit (a pod refuses requests with 503 past the limit, so the average
    never reaches a target at or above it and the autoscaler never scales out)."""
    adapter = any(r.type in HELM_TYPES and str(peek(r.props, "chart")).endswith(ADAPTER_CHART) for r in resources)
    deployments = {
        (peek(r.props, "metadata", "namespace"), peek(r.props, "metadata", "name")): r
        for r in resources
        if r.type == DEPLOYMENT
    }
    found: list[Violation] = []
    for hpa in resources:
        target = _in_flight_target(hpa) if hpa.type == HPA else None
        if target is None:
            continue
        namespace = peek(hpa.props, "metadata", "namespace")
        name = f"{namespace}/{peek(hpa.props, 'metadata', 'name')}"
        if not adapter:
            found.append(
                Violation(
                    f"autoscaler {name} scales on {IN_FLIGHT_METRIC} but the stack installs no {ADAPTER_CHART}; "
                    "without it the metric is never served and the autoscaler never scales.",
                    hpa.urn,
                )
            )
        limit = _max_in_flight(deployments.get((namespace, peek(hpa.props, "spec", "scaleTargetRef", "name"))))
        value = str(target)
        if not value.isdigit() or not 1 <= int(value) < limit:
            found.append(
                Violation(
                    f"autoscaler {name} targets {value} in-flight requests per pod; the target must be within "
                    f"1..{limit - 1} (below the server's limit of {limit}).",
                    hpa.urn,
                )
            )
    return found
