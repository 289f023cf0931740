"""The bundled serving image on the GPU cluster: a Deployment with probes on `/ping`, its Service, an autoscaler and a
disruption budget.

`render_serving_deployment(spec)` returns the manifests as plain dicts and `ServingDeployment` registers exactly those.
The Deployment leaves `replicas` unset so the HorizontalPodAutoscaler alone decides it (a Pulumi update never resets
a scaled-out Deployment). The autoscaler follows CPU, or the server's in-flight requests per pod: Prometheus (a
cluster service) scrapes `/metrics` through a NetworkPolicy rendered here, and the Prometheus adapter serves the
gauge to the autoscaler as a `Pods` metric. The platform builds one for each `mlplat:endpoints` entry with
`platform: kubernetes` (`cluster_serving_spec`); SageMaker endpoints stay the default.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import SERVER_MAX_IN_FLIGHT
from components.k8s_objects import (
    GPU_TOLERATION,
    check_dns_label,
    container_security_context,
    create_objects,
    pod_security_context,
)
from components.problems import Problem, at, one_of, refuse

PORT = 8080
PING_PATH = "/ping"
METRICS_PATH = "/metrics"
MODEL_DIR = "/opt/ml/model"
APP_LABEL = "app.kubernetes.io/name"
WORKLOAD_LABEL = "mlplat.io/workload"
POOL_LABEL = "mlplat.io/pool"

IN_FLIGHT_METRIC = "mlplat_serving_in_flight_requests"
"""The serving image's gauge of invocations in progress (summed over a pod's workers)."""
METRICS_NAMESPACE = "monitoring"
"""Where the cluster's Prometheus and its adapter run (`components.versions.PROMETHEUS`)."""
SCRAPER_LABELS = {"mlplat.io/scraper": "serving"}
"""The Prometheus server's pod label; the servers' NetworkPolicy lets exactly those pods in."""
SCALING_METRICS = ("cpu", "inflight")


@dataclass(frozen=True)
class ServingSpec:
    """One model server, as plain values."""

    name: str
    """Deployment and Service name (a DNS label)."""
    namespace: str
    """The team namespace it runs in."""
    image: pulumi.Input[str]
    """The serving image."""
    model_uri: str
    """`MLPLAT_MODEL_URI`, e.g. `models:/abalone@champion`."""
    tracking_uri: pulumi.Input[str]
    """`MLFLOW_TRACKING_URI`: the tracking server's ARN or URL."""
    min_replicas: int = 2
    """Fewest pods (two keep the service up through a node drain)."""
    max_replicas: int = 4
    """Most pods."""
    target_cpu_utilization: int = 70
    """Average CPU utilisation (percent of requests) the autoscaler aims for (`scaling_metric` cpu)."""
    scaling_metric: str = "cpu"
    """What the autoscaler follows: `cpu`, or `inflight` (the average in-flight requests per pod)."""
    target_in_flight: int = 8
    """Average in-flight requests per pod the autoscaler aims for (`scaling_metric` inflight)."""
    cpu: str = "1"
    """CPU request per pod."""
    cpu_limit: str | None = None
    """CPU limit per pod; the request when None."""
    memory: str = "2Gi"
    """Memory request and limit per pod."""
    gpus: int = 0
    """GPUs per pod; above zero the pod tolerates the GPU taint."""
    pool: str | None = None
    """Node pool to run on (`mlplat.io/pool`); any schedulable node when None."""
    service_account: str = "workload"
    """The team's IRSA service account (reads the model from the registry and bucket)."""
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """More environment variables."""


def problems(spec: ServingSpec, prefix: str = "") -> list[Problem]:
    """Problems with a server's spec, each under `prefix`."""
    found = check_dns_label(at(prefix, "name"), spec.name) + check_dns_label(at(prefix, "namespace"), spec.namespace)
    if spec.min_replicas < 1:
        found.append(Problem(at(prefix, "minReplicas"), f"must be >= 1 (got {spec.min_replicas})"))
    if spec.max_replicas < spec.min_replicas:
        found.append(
            Problem(
                at(prefix, "maxReplicas"), f"must be >= minReplicas (got {spec.max_replicas} < {spec.min_replicas})"
            )
        )
    if spec.gpus < 0:
        found.append(Problem(at(prefix, "gpus"), f"must be >= 0 (got {spec.gpus})"))
    in_flight = spec.scaling_metric == "inflight"
    target_key, target = (
        ("targetInFlight", spec.target_in_flight)
        if in_flight
        else ("targetCpuUtilization", spec.target_cpu_utilization)
    )
    return found + scaling_problems(at(prefix, "scalingMetric"), spec.scaling_metric, at(prefix, target_key), target)


def scaling_problems(metric_key: str, metric: str, target_key: str, target: int) -> list[Problem]:
    """The autoscaler's metric and its target, each at its key (`mlplat:endpoints[0].autoscaling.metric`, or the
    spec's `scalingMetric`); a target is CPU percent, or in-flight requests below the server's own limit."""
    if metric not in SCALING_METRICS:
        return one_of(metric_key, metric, SCALING_METRICS)
    highest = 100 if metric == "cpu" else SERVER_MAX_IN_FLIGHT - 1
    if not 1 <= target <= highest:
        return [Problem(target_key, f"must be within 1..{highest} for metric {metric} (got {target})")]
    return []


def _scaling_metric(spec: ServingSpec) -> dict[str, Any]:
    if spec.scaling_metric == "inflight":
        return {
            "type": "Pods",
            "pods": {
                "metric": {"name": IN_FLIGHT_METRIC},
                "target": {"type": "AverageValue", "averageValue": str(spec.target_in_flight)},
            },
        }
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": spec.target_cpu_utilization},
        },
    }


def _scrape_policy(spec: ServingSpec, metadata: dict[str, Any], selector: dict[str, str]) -> dict[str, Any]:
    """Team namespaces deny ingress by default; the cluster's Prometheus (and nothing else outside) reaches the port."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {**metadata, "name": f"{spec.name}-metrics"},
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": METRICS_NAMESPACE}},
                            "podSelector": {"matchLabels": dict(SCRAPER_LABELS)},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": PORT}],
                }
            ],
        },
    }


def _probe(period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": PING_PATH, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def render_serving_deployment(spec: ServingSpec) -> list[dict[str, Any]]:
    """Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget, and on in-flight scaling the NetworkPolicy
    that lets Prometheus scrape the pods. Raises ValueError on a bad spec."""
    refuse(f"serving deployment {spec.name!r}", problems(spec))
    selector = {APP_LABEL: spec.name}
    labels = {**selector, WORKLOAD_LABEL: "serving"}
    metadata = {"name": spec.name, "namespace": spec.namespace, "labels": labels}
    requests: dict[str, str] = {"cpu": spec.cpu, "memory": spec.memory}
    limits: dict[str, str] = {"cpu": spec.cpu_limit or spec.cpu, "memory": spec.memory}
    if spec.gpus:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(spec.gpus)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": spec.service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": 30,
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector},
            }
        ],
        "containers": [
            {
                "name": "serve",
                "image": spec.image,
                # A stack names a release tag; Always makes a restarted pod notice a tag that moved (CKV_K8S_15).
                "imagePullPolicy": "Always",
                "command": ["python", "-m", "serving"],
                "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                "env": [
                    {"name": "SAGEMAKER_BIND_TO_PORT", "value": str(PORT)},
                    {"name": "MLFLOW_TRACKING_URI", "value": spec.tracking_uri},
                    {"name": "MLPLAT_MODEL_URI", "value": spec.model_uri},
                    {"name": "HOME", "value": "/tmp"},
                    *({"name": k, "value": v} for k, v in sorted(spec.env.items())),
                ],
                "resources": {"requests": requests, "limits": limits},
                # Loading a model from the registry can take a while; liveness starts only once it is up.
                "startupProbe": _probe(period=5, failures=60),
                "readinessProbe": _probe(period=5, failures=3),
                "livenessProbe": _probe(period=10, failures=3),
                "securityContext": container_security_context(),
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "model", "mountPath": MODEL_DIR}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "model", "emptyDir": {}}],
    }
    if spec.gpus:
        pod_spec["tolerations"] = [GPU_TOLERATION]
    if spec.pool is not None:
        pod_spec["nodeSelector"] = {POOL_LABEL: spec.pool}
    manifests = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "selector": {"matchLabels": selector},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(PORT),
                            "prometheus.io/path": METRICS_PATH,
                        },
                    },
                    "spec": pod_spec,
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata,
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
                "minReplicas": spec.min_replicas,
                "maxReplicas": spec.max_replicas,
                "metrics": [_scaling_metric(spec)],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": metadata,
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        },
    ]
    if spec.scaling_metric == "inflight":
        manifests.append(_scrape_policy(spec, metadata, selector))
    return manifests


@dataclass(frozen=True)
class ServingDeploymentArgs:
    """Inputs of a model server on the cluster."""

    spec: ServingSpec
    """The server."""
    provider: k8s.Provider | None = None
    """Kubernetes provider of the cluster; the default provider when None."""


class ServingDeployment(pulumi.ComponentResource):
    """Registers the manifests of `render_serving_deployment` as typed Kubernetes resources."""

    service_name: str
    namespace: str
    manifests: list[dict[str, Any]]

    def __init__(self, name: str, args: ServingDeploymentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        manifests = render_serving_deployment(args.spec)
        super().__init__("mlplat:serving_deployment:ServingDeployment", name, None, opts)
        create_objects(name, manifests, pulumi.ResourceOptions(parent=self, provider=args.provider))
        self.manifests = manifests
        self.service_name = args.spec.name
        self.namespace = args.spec.namespace
        self.register_outputs({"serviceName": self.service_name, "namespace": self.namespace})
