"""The serving Deployment: rendered manifests (Deployment, Service, HPA, PDB) and the component that registers them."""

from typing import Any

import pulumi_kubernetes as k8s
import pytest
from gpu_mocks import Synthesis, synthesize

from components.config import SERVER_MAX_IN_FLIGHT
from components.serving_deployment import (
    IN_FLIGHT_METRIC,
    ServingDeployment,
    ServingDeploymentArgs,
    ServingSpec,
    render_serving_deployment,
)
from mlplat import k8s_validate
from serving import metrics as serving_metrics
from serving.config import Settings

SPEC = ServingSpec(
    name="abalone",
    namespace="applied",
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplat/serving:0.1.0",
    model_uri="models:/abalone@champion",
    tracking_uri="arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/mlplat-prod",
    min_replicas=2,
    max_replicas=6,
)


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render_serving_deployment(SPEC)


@pytest.fixture(scope="module")
def by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in manifests}


@pytest.fixture(scope="module")
def container(by_kind: dict[str, dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    return found


def test_a_server_renders_a_deployment_service_autoscaler_and_disruption_budget(
    manifests: list[dict[str, Any]],
) -> None:
    assert [k8s_validate.describe(m) for m in manifests] == [
        "Deployment applied/abalone",
        "Service applied/abalone",
        "HorizontalPodAutoscaler applied/abalone",
        "PodDisruptionBudget applied/abalone",
    ]


def test_the_container_runs_the_serving_module_on_port_8080(container: dict[str, Any]) -> None:
    assert container["command"] == ["python", "-m", "serving"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_the_container_is_told_its_port_tracking_uri_and_model(container: dict[str, Any]) -> None:
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SAGEMAKER_BIND_TO_PORT"] == "8080"
    assert env["MLFLOW_TRACKING_URI"] == SPEC.tracking_uri
    assert env["MLPLAT_MODEL_URI"] == "models:/abalone@champion"


def test_readiness_and_liveness_probe_ping(container: dict[str, Any]) -> None:
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ping", "port": "http"}
    assert container["readinessProbe"]["periodSeconds"] == 5
    assert container["livenessProbe"]["periodSeconds"] == 10
    assert container["startupProbe"]["failureThreshold"] == 60


def test_the_container_requests_and_limits_cpu_and_memory(container: dict[str, Any]) -> None:
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }


def test_the_server_carries_the_same_hardening_as_training(
    by_kind: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}, {"name": "model", "emptyDir": {}}]


def test_the_autoscaler_alone_sets_the_replica_count(by_kind: dict[str, dict[str, Any]]) -> None:
    assert "replicas" not in by_kind["Deployment"]["spec"]
    hpa = by_kind["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "abalone"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ]


def test_rollouts_and_drains_keep_all_but_one_pod_serving(by_kind: dict[str, dict[str, Any]]) -> None:
    assert by_kind["Deployment"]["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert by_kind["PodDisruptionBudget"]["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "abalone"}},
    }


def test_the_service_routes_to_the_http_port(by_kind: dict[str, dict[str, Any]]) -> None:
    assert by_kind["Service"]["spec"] == {
        "type": "ClusterIP",
        "selector": {"app.kubernetes.io/name": "abalone"},
        "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}],
    }


def test_a_cpu_server_does_not_tolerate_the_gpu_taint(by_kind: dict[str, dict[str, Any]]) -> None:
    assert "tolerations" not in by_kind["Deployment"]["spec"]["template"]["spec"]


def test_a_gpu_server_requests_gpus_tolerates_the_taint_and_selects_its_pool() -> None:
    spec = ServingSpec(**{**SPEC.__dict__, "gpus": 1, "pool": "batch-infer"})
    pod = render_serving_deployment(spec)[0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["nodeSelector"] == {"mlplat.io/pool": "batch-infer"}


def test_the_rendered_manifests_are_valid_for_the_clusters_kubernetes_version(
    manifests: list[dict[str, Any]],
) -> None:
    assert k8s_validate.validate_manifests(manifests, "1.33").problems == []


def test_max_replicas_below_min_replicas_is_rejected_with_the_field_named() -> None:
    with pytest.raises(ValueError) as caught:
        render_serving_deployment(ServingSpec(**{**SPEC.__dict__, "max_replicas": 1}))
    assert str(caught.value) == "serving deployment 'abalone': maxReplicas must be >= minReplicas (got 1 < 2)"


IN_FLIGHT_SPEC = ServingSpec(**{**SPEC.__dict__, "scaling_metric": "inflight", "target_in_flight": 8})


@pytest.fixture(scope="module")
def in_flight() -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in render_serving_deployment(IN_FLIGHT_SPEC)}


def test_the_autoscaler_scales_on_cpu_at_70_percent_unless_told_otherwise(by_kind: dict[str, dict[str, Any]]) -> None:
    assert by_kind["HorizontalPodAutoscaler"]["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ]
    assert "NetworkPolicy" not in by_kind


def test_on_in_flight_scaling_the_autoscaler_targets_the_average_in_flight_requests_per_pod(
    in_flight: dict[str, dict[str, Any]],
) -> None:
    assert in_flight["HorizontalPodAutoscaler"]["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "mlplat_serving_in_flight_requests"},
                "target": {"type": "AverageValue", "averageValue": "8"},
            },
        }
    ]


def test_the_in_flight_metric_is_the_gauge_the_serving_image_exposes_at_metrics() -> None:
    assert serving_metrics.IN_FLIGHT._name == IN_FLIGHT_METRIC
    assert serving_metrics.IN_FLIGHT._multiprocess_mode == "livesum"


def test_the_in_flight_bound_is_the_serving_images_default_limit_per_worker() -> None:
    assert Settings().max_in_flight == SERVER_MAX_IN_FLIGHT


def test_on_in_flight_scaling_only_the_clusters_prometheus_may_reach_the_servers_port(
    in_flight: dict[str, dict[str, Any]],
) -> None:
    policy = in_flight["NetworkPolicy"]
    assert policy["metadata"]["name"] == "abalone-metrics"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "abalone"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                        "podSelector": {"matchLabels": {"mlplat.io/scraper": "serving"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 8080}],
            }
        ],
    }


def test_the_in_flight_manifests_are_valid_for_the_clusters_kubernetes_version(
    in_flight: dict[str, dict[str, Any]],
) -> None:
    assert k8s_validate.validate_manifests(in_flight.values(), "1.35").problems == []


@pytest.mark.parametrize("target", [0, 64])
def test_an_in_flight_target_outside_1_to_63_is_rejected_with_the_field_named(target: int) -> None:
    with pytest.raises(ValueError) as caught:
        render_serving_deployment(ServingSpec(**{**IN_FLIGHT_SPEC.__dict__, "target_in_flight": target}))
    assert str(caught.value) == (
        f"serving deployment 'abalone': targetInFlight must be within 1..63 for metric inflight (got {target})"
    )


def test_an_unknown_scaling_metric_is_rejected_naming_the_choices() -> None:
    with pytest.raises(ValueError) as caught:
        render_serving_deployment(ServingSpec(**{**SPEC.__dict__, "scaling_metric": "memory"}))
    assert str(caught.value) == "serving deployment 'abalone': scalingMetric must be 'cpu' or 'inflight' (got 'memory')"


@pytest.fixture(scope="module")
def plan() -> Synthesis:
    def build() -> dict[str, object]:
        provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
        ServingDeployment("serve", ServingDeploymentArgs(spec=SPEC, provider=provider))
        return {}

    return synthesize(build)


def test_the_component_registers_exactly_the_rendered_manifests(plan: Synthesis) -> None:
    component = plan.named("serve")
    assert component.type == "mlplat:serving_deployment:ServingDeployment"
    children = [r for r in plan if r.parent == component.urn]
    recorded = sorted((dict(r.inputs) for r in children), key=k8s_validate.describe)
    assert recorded == sorted(render_serving_deployment(SPEC), key=k8s_validate.describe)
    assert {r.provider.split("::")[-1] for r in children} == {"cluster-k8s-id"}
