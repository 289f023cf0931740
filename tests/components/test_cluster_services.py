"""ClusterServices under mocks: Karpenter, Kueue, the device plugin (time-slicing per pool), the DCGM exporter and
metrics-server, each a Helm release pinned by the cluster version's row, installed through the cluster's provider."""

import re
from typing import Any

import pulumi_kubernetes as k8s
import pytest
import yaml
from gpu_mocks import ACCOUNT, OIDC_HOST, OIDC_ISSUER, Synthesis, synthesize

from components import versions
from components.cluster_services import (
    ClusterServices,
    ClusterServicesArgs,
    dcgm_exporter_values,
    in_flight_rule,
    serving_scrape_config,
)
from components.nodepool import PoolSpec
from components.serving_deployment import ServingSpec, render_serving_deployment
from mlplat import k8s_validate

RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER = "mlplat-prod-compute-cluster"
POOLS = (PoolSpec("train", ("g5.12xlarge",), 16), PoolSpec("infer", ("g6.xlarge",), 4, time_slicing_replicas=4))


def _args(provider: k8s.Provider, version: str = "1.35", serving_metrics: bool = False) -> ClusterServicesArgs:
    return ClusterServicesArgs(
        provider=provider,
        cluster_name=CLUSTER,
        cluster_arn=f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{CLUSTER}",
        oidc_provider_arn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC_HOST}",
        oidc_issuer=OIDC_ISSUER,
        region="us-east-1",
        kubernetes_version=version,
        subnet_ids=["subnet-a", "subnet-b"],
        cluster_security_group_id="sg-cluster",
        pools=POOLS,
        serving_metrics=serving_metrics,
    )


def _build() -> dict[str, object]:
    provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
    return {"role": ClusterServices("svc", _args(provider)).karpenter.role_arn}


@pytest.fixture(scope="module")
def plan() -> Synthesis:
    return synthesize(_build)


def _values(plan: Synthesis, role: str) -> dict[str, Any]:
    values: dict[str, Any] = plan.named(f"svc-{role}").inputs["values"]
    return values


def test_each_service_is_the_chart_its_cluster_versions_row_pins(plan: Synthesis) -> None:
    pinned = versions.RELEASES["1.35"].charts
    assert {r.name: (r.inputs["chart"], r.inputs["version"]) for r in plan.of_type(RELEASE)} == {
        "svc-karpenter-release": (pinned["karpenter"].chart, pinned["karpenter"].version),
        "svc-kueue": (pinned["kueue"].chart, pinned["kueue"].version),
        "svc-device-plugin": ("nvidia-device-plugin", pinned["device-plugin"].version),
        "svc-dcgm-exporter": ("dcgm-exporter", pinned["dcgm-exporter"].version),
        "svc-metrics-server": ("metrics-server", pinned["metrics-server"].version),
    }


def test_the_shared_validator_finds_every_release_pinned(plan: Synthesis) -> None:
    report = k8s_validate.validate_resources(plan.resources, "1.35")
    assert len(report.helm_releases) == 5
    assert report.problems == []


def test_oci_charts_name_no_repository_and_https_charts_name_theirs(plan: Synthesis) -> None:
    repos = {r.name: (r.inputs.get("repositoryOpts") or {}).get("repo") for r in plan.of_type(RELEASE)}
    assert repos["svc-kueue"] is None
    assert repos["svc-dcgm-exporter"] == "https://nvidia.github.io/dcgm-exporter/helm-charts"


def test_releases_outside_kube_system_create_their_namespace_and_all_install_atomically(plan: Synthesis) -> None:
    placed = {r.name: (r.inputs["namespace"], r.inputs.get("createNamespace")) for r in plan.of_type(RELEASE)}
    assert placed["svc-kueue"] == ("kueue-system", True)
    assert placed["svc-dcgm-exporter"] == ("gpu-telemetry", True)
    assert placed["svc-device-plugin"] == ("kube-system", False)
    assert all(r.inputs["atomic"] is True for r in plan.of_type(RELEASE))


def test_the_releases_go_through_the_clusters_provider(plan: Synthesis) -> None:
    provider = plan.named("cluster-k8s")
    assert all(r.provider.startswith(provider.urn) for r in plan.of_type(RELEASE))


def test_the_device_plugin_time_slices_only_the_pools_that_ask_for_it(plan: Synthesis) -> None:
    config = _values(plan, "device-plugin")["config"]
    assert config["default"] == "whole-gpus"
    assert sorted(config["map"]) == ["infer", "whole-gpus"]
    assert yaml.safe_load(config["map"]["infer"]) == {
        "version": "v1",
        "sharing": {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}},
    }


def test_the_device_plugin_and_dcgm_exporter_run_on_gpu_nodes_tolerating_their_taint(plan: Synthesis) -> None:
    toleration = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert _values(plan, "device-plugin")["tolerations"] == toleration
    assert _values(plan, "dcgm-exporter")["tolerations"] == toleration
    assert _values(plan, "dcgm-exporter")["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_dcgm_declares_a_service_monitor_only_when_the_prometheus_operator_is_there(plan: Synthesis) -> None:
    assert _values(plan, "dcgm-exporter")["serviceMonitor"] == {"enabled": False}
    assert dcgm_exporter_values(service_monitor=True)["serviceMonitor"] == {"enabled": True}


def test_kueue_and_metrics_server_run_two_replicas_on_the_system_nodes(plan: Synthesis) -> None:
    assert _values(plan, "kueue")["controllerManager"] == {"replicas": 2, "nodeSelector": {"mlplat.io/pool": "system"}}
    metrics = _values(plan, "metrics-server")
    assert (metrics["replicas"], metrics["nodeSelector"]) == (2, {"mlplat.io/pool": "system"})


def test_no_cluster_autoscaler_is_installed(plan: Synthesis) -> None:
    assert [r.name for r in plan.of_type(RELEASE) if "autoscaler" in r.inputs["chart"]] == []


def test_every_service_resource_is_a_child_of_the_component(plan: Synthesis) -> None:
    component = plan.named("svc")
    children = [r for r in plan if r.parent == component.urn]
    assert {r.type for r in children} == {RELEASE, "mlplat:karpenter:KarpenterController"}


def test_a_cluster_version_without_pinned_charts_is_rejected() -> None:
    with pytest.raises(ValueError) as raised:
        ClusterServices("svc", _args(None, version="1.29"))  # type: ignore[arg-type]
    assert (
        str(raised.value) == "ClusterServices svc: kubernetesVersion must be one of 1.32, 1.33, 1.34, 1.35 (got '1.29')"
    )


@pytest.fixture(scope="module")
def with_metrics() -> Synthesis:
    def build() -> dict[str, object]:
        provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
        return {"role": ClusterServices("svc", _args(provider, serving_metrics=True)).karpenter.role_arn}

    return synthesize(build)


def test_in_flight_scaling_adds_prometheus_and_its_adapter_pinned_in_the_monitoring_namespace(
    with_metrics: Synthesis,
) -> None:
    pinned = versions.RELEASES["1.35"].charts
    added = {
        r.name: (r.inputs["chart"], r.inputs["version"], r.inputs["namespace"], r.inputs["createNamespace"])
        for r in with_metrics.of_type(RELEASE)
        if "prometheus" in r.name
    }
    assert added == {
        "svc-prometheus": ("prometheus", pinned["prometheus"].version, "monitoring", True),
        "svc-prometheus-adapter": ("prometheus-adapter", pinned["prometheus-adapter"].version, "monitoring", True),
    }
    assert k8s_validate.validate_resources(with_metrics.resources, "1.35").problems == []


def test_the_adapter_waits_for_prometheus_and_asks_its_fixed_service_name(with_metrics: Synthesis) -> None:
    adapter = with_metrics.named("svc-prometheus-adapter")
    assert with_metrics.named("svc-prometheus").urn in adapter.dependencies
    assert adapter.inputs["values"]["prometheus"] == {
        "url": "http://prometheus-server.monitoring.svc",
        "port": 80,
        "path": "",
    }
    assert _values(with_metrics, "prometheus")["server"]["fullnameOverride"] == "prometheus-server"


def test_the_adapter_serves_only_the_in_flight_gauge_per_pod(with_metrics: Synthesis) -> None:
    rules = _values(with_metrics, "prometheus-adapter")["rules"]
    assert rules == {"default": False, "custom": [in_flight_rule()], "external": []}
    assert in_flight_rule()["seriesQuery"] == 'mlplat_serving_in_flight_requests{namespace!="",pod!=""}'
    assert in_flight_rule()["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }


def test_prometheus_runs_on_the_system_nodes_with_the_label_the_servers_let_in_and_nothing_else_of_the_chart(
    with_metrics: Synthesis,
) -> None:
    values = _values(with_metrics, "prometheus")
    assert (values["server"]["nodeSelector"], values["server"]["podLabels"]) == (
        {"mlplat.io/pool": "system"},
        {"mlplat.io/scraper": "serving"},
    )
    off = ("alertmanager", "kube-state-metrics", "prometheus-node-exporter", "prometheus-pushgateway")
    assert [values[chart]["enabled"] for chart in off] == [False] * 4
    assert values["serverFiles"]["prometheus.yml"]["scrape_configs"] == [serving_scrape_config()]


def _relabel(target: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus's relabelling (keep and replace, anchored regexes, `;`-joined sources); None when dropped."""
    labels = dict(target)
    for rule in rules:
        value = ";".join(labels.get(name, "") for name in rule["source_labels"])
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if rule.get("action") == "keep":
            if match is None:
                return None
        elif match is not None:
            labels[rule["target_label"]] = match.expand(rule.get("replacement", "$1").replace("$", "\\"))
    return labels


def _discovered(pod: dict[str, Any], address: str) -> dict[str, str]:
    """The labels Prometheus's pod discovery gives a pod of this template (sanitised label and annotation names)."""
    target = {"__address__": address, "__meta_kubernetes_namespace": "applied", "__meta_kubernetes_pod_name": "p-1"}
    for kind, found in (("label", pod["metadata"]["labels"]), ("annotation", pod["metadata"]["annotations"])):
        for key, value in found.items():
            target[f"__meta_kubernetes_pod_{kind}_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    return target


def test_the_scrape_config_reaches_a_servers_metrics_path_on_its_port_labelled_by_namespace_and_pod() -> None:
    spec = ServingSpec("abalone", "applied", "img", "models:/abalone/1", "arn", scaling_metric="inflight")
    pod = render_serving_deployment(spec)[0]["spec"]["template"]
    labels = _relabel(_discovered(pod, "10.0.1.7"), serving_scrape_config()["relabel_configs"])
    assert labels is not None
    assert (labels["__address__"], labels["__metrics_path__"]) == ("10.0.1.7:8080", "/metrics")
    assert (labels["namespace"], labels["pod"]) == ("applied", "p-1")


def test_the_scrape_config_drops_pods_that_are_not_model_servers() -> None:
    pod = {"metadata": {"labels": {"app": "x"}, "annotations": {"prometheus.io/scrape": "true"}}}
    assert _relabel(_discovered(pod, "10.0.1.8:9000"), serving_scrape_config()["relabel_configs"]) is None
