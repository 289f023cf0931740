"""ClusterServices under mocks: Karpenter, Kueue, the device plugin (time-slicing per pool), the DCGM exporter and
metrics-server, each a Helm release pinned by the cluster version's row, installed through the cluster's provider."""

from typing import Any

import pulumi_kubernetes as k8s
import pytest
import yaml
from gpu_mocks import ACCOUNT, OIDC_HOST, OIDC_ISSUER, Synthesis, synthesize

from components import versions
from components.cluster_services import ClusterServices, ClusterServicesArgs, dcgm_exporter_values
from components.nodepool import PoolSpec
from mlplat import k8s_validate

RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER = "mlplat-prod-compute-cluster"
POOLS = (PoolSpec("train", ("g5.12xlarge",), 16), PoolSpec("infer", ("g6.xlarge",), 4, time_slicing_replicas=4))


def _args(provider: k8s.Provider, version: str = "1.35") -> ClusterServicesArgs:
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
