"""The cluster services a GPU cluster needs, each a pinned Helm release on the system node group: Karpenter (with its
AWS side), Kueue, the NVIDIA device plugin (time-slicing per pool), the DCGM exporter and metrics-server; and, when an
endpoint scales on in-flight requests, Prometheus (scraping the model servers only) with the Prometheus adapter.

Chart versions come from the cluster version's row in `components.versions`, so an upgrade changes one table.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import nodepool, versions
from components.cluster import SYSTEM_POOL
from components.k8s_objects import GPU_TOLERATION
from components.karpenter import ClusterAccess, KarpenterArgs, KarpenterController
from components.nodepool import PoolSpec
from components.problems import refuse
from components.serving_deployment import (
    APP_LABEL,
    IN_FLIGHT_METRIC,
    METRICS_NAMESPACE,
    SCRAPER_LABELS,
    WORKLOAD_LABEL,
)

SYSTEM_NODE_SELECTOR = {nodepool.POOL_LABEL: SYSTEM_POOL}
WHOLE_GPU_CONFIG = "whole-gpus"
"""The device plugin's default config: every GPU advertised once."""


@dataclass(frozen=True)
class ClusterServicesArgs(ClusterAccess):
    """Inputs of the cluster services: Karpenter's access to the cluster, and what the other services need."""

    kubernetes_version: str
    """Cluster minor version; picks the chart row."""
    pools: Sequence[PoolSpec] = ()
    """The GPU pools; pools with time-slicing get a device plugin config of their own."""
    prometheus_operator: bool = False
    """The Prometheus operator's CRDs are installed, so the DCGM exporter may declare a ServiceMonitor."""
    serving_metrics: bool = False
    """An endpoint scales on in-flight requests: install Prometheus and the adapter that serves the gauge."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the AWS resources here."""


def device_plugin_values(pools: Sequence[PoolSpec]) -> dict[str, Any]:
    """Run on GPU nodes only; a node labelled with a pool's config name gets that pool's time-slicing."""
    values: dict[str, Any] = {
        "tolerations": [GPU_TOLERATION],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": nodepool.GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]}
                            ]
                        }
                    ]
                }
            }
        },
        "priorityClassName": "system-node-critical",
    }
    shared = {p.name: p.time_slicing_replicas for p in pools if p.time_slicing_replicas}
    if shared:
        values["config"] = {
            "default": WHOLE_GPU_CONFIG,
            "map": {
                WHOLE_GPU_CONFIG: '{"version": "v1"}',
                **{name: nodepool.time_slicing_config(replicas) for name, replicas in shared.items()},
            },
        }
    return values


def dcgm_exporter_values(service_monitor: bool) -> dict[str, Any]:
    """On GPU nodes only; a ServiceMonitor only when the Prometheus operator can read it."""
    return {
        "tolerations": [GPU_TOLERATION],
        "nodeSelector": {nodepool.GPU_PRESENT_LABEL: "true"},
        "priorityClassName": "system-node-critical",
        "serviceMonitor": {"enabled": service_monitor},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    }


def kueue_values() -> dict[str, Any]:
    """Two managers on the system nodes."""
    return {"controllerManager": {"replicas": 2, "nodeSelector": SYSTEM_NODE_SELECTOR}}


def metrics_server_values() -> dict[str, Any]:
    """Two replicas on the system nodes, so HPA metrics survive a node drain."""
    return {
        "replicas": 2,
        "nodeSelector": SYSTEM_NODE_SELECTOR,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
    }


PROMETHEUS_SERVER = "prometheus-server"
"""The Prometheus server's Service name (fixed, so the adapter can name it; Helm release names get a suffix)."""


def _label_key(label: str) -> str:
    """A pod label as Prometheus's Kubernetes discovery spells it (every character outside [a-zA-Z0-9_] becomes _)."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() or c == "_" else "_" for c in label)


def serving_scrape_config() -> dict[str, Any]:
    """Scrape only the model servers' pods, on the port and path they announce, labelled by namespace and pod (the
    labels the adapter maps to Kubernetes objects)."""
    return {
        "job_name": "mlplat-serving",
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {"source_labels": [_label_key(WORKLOAD_LABEL)], "action": "keep", "regex": "serving"},
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                "action": "keep",
                "regex": "true",
            },
            {
                "source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
                "action": "replace",
                "regex": r"([^:]+)(?::\d+)?;(\d+)",
                "replacement": "$1:$2",
                "target_label": "__address__",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
                "action": "replace",
                "regex": "(.+)",
                "target_label": "__metrics_path__",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": [_label_key(APP_LABEL)], "target_label": "app"},
        ],
    }


def prometheus_values() -> dict[str, Any]:
    """One small server on the system nodes keeping a day of the servers' samples; nothing else of the chart."""
    return {
        "alertmanager": {"enabled": False},
        "kube-state-metrics": {"enabled": False},
        "prometheus-node-exporter": {"enabled": False},
        "prometheus-pushgateway": {"enabled": False},
        "server": {
            "fullnameOverride": PROMETHEUS_SERVER,
            "podLabels": dict(SCRAPER_LABELS),
            "nodeSelector": SYSTEM_NODE_SELECTOR,
            "retention": "1d",
            # The autoscaler reads the last minute; a restart losing a day of samples costs nothing.
            "persistentVolume": {"enabled": False},
            "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
            "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        },
        "serverFiles": {"prometheus.yml": {"scrape_configs": [serving_scrape_config()]}},
    }


def in_flight_rule() -> dict[str, Any]:
    """The adapter rule serving the in-flight gauge per pod (summed over the pod's series) as a custom metric."""
    return {
        "seriesQuery": f'{IN_FLIGHT_METRIC}{{namespace!="",pod!=""}}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": f"^{IN_FLIGHT_METRIC}$", "as": IN_FLIGHT_METRIC},
        "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
    }


def prometheus_adapter_values() -> dict[str, Any]:
    """Two replicas on the system nodes (the custom metrics API survives a drain), serving only the in-flight rule."""
    return {
        "replicas": 2,
        "nodeSelector": SYSTEM_NODE_SELECTOR,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "prometheus": {"url": f"http://{PROMETHEUS_SERVER}.{METRICS_NAMESPACE}.svc", "port": 80, "path": ""},
        "rules": {"default": False, "custom": [in_flight_rule()], "external": []},
    }


class ClusterServices(pulumi.ComponentResource):
    """Karpenter, Kueue, the NVIDIA device plugin, the DCGM exporter and metrics-server (and Prometheus with its adapter
    when `serving_metrics`)."""

    karpenter: KarpenterController
    releases: dict[str, k8s.helm.v3.Release]

    def __init__(self, name: str, args: ClusterServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        refuse(f"ClusterServices {name}", versions.problems("kubernetesVersion", args.kubernetes_version))
        super().__init__("mlplat:cluster_services:ClusterServices", name, None, opts)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider)
        charts = versions.RELEASES[args.kubernetes_version].charts

        self.karpenter = KarpenterController(
            f"{name}-karpenter",
            KarpenterArgs(
                # Karpenter's access to the cluster, as the services were given it.
                **{access.name: getattr(args, access.name) for access in fields(ClusterAccess)},
                chart=charts["karpenter"],
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.releases = {
            "karpenter": self.karpenter.release,
            "kueue": self._release(name, "kueue", charts["kueue"], kueue_values(), on_cluster),
            "device-plugin": self._release(
                name, "device-plugin", charts["device-plugin"], device_plugin_values(args.pools), on_cluster
            ),
            "dcgm-exporter": self._release(
                name,
                "dcgm-exporter",
                charts["dcgm-exporter"],
                dcgm_exporter_values(args.prometheus_operator),
                on_cluster,
            ),
            "metrics-server": self._release(
                name, "metrics-server", charts["metrics-server"], metrics_server_values(), on_cluster
            ),
        }
        if args.serving_metrics:
            prometheus = self._release(name, "prometheus", charts["prometheus"], prometheus_values(), on_cluster)
            self.releases["prometheus"] = prometheus
            self.releases["prometheus-adapter"] = self._release(
                name,
                "prometheus-adapter",
                charts["prometheus-adapter"],
                prometheus_adapter_values(),
                pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[prometheus])),
            )
        self.register_outputs(
            {"karpenterRoleArn": self.karpenter.role_arn, "karpenterNodeRoleArn": self.karpenter.node_role_arn}
        )

    @staticmethod
    def _release(
        name: str, role: str, chart: versions.Chart, values: Mapping[str, Any], opts: pulumi.ResourceOptions
    ) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            f"{name}-{role}",
            chart=chart.chart,
            version=chart.version,
            repository_opts={"repo": chart.repo} if chart.repo else None,
            namespace=chart.namespace,
            create_namespace=chart.namespace != "kube-system",
            values=dict(values),
            atomic=True,
            cleanup_on_fail=True,
            opts=opts,
        )
