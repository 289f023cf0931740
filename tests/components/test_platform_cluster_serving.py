"""The staging stack's `platform: kubernetes` endpoint, as the platform builds it under Pulumi mocks."""

from typing import Any

import pytest

from components.config import EndpointConfig
from components.platform import (
    CAPTURE_DESTINATION_ENV,
    CAPTURE_ENDPOINT_ENV,
    CAPTURE_KMS_ENV,
    CAPTURE_PERCENT_ENV,
    cluster_serving_spec,
)
from mlplat import k8s_validate, synth
from serving import capture

SERVING = "mlplat:serving_deployment:ServingDeployment"


@pytest.fixture(scope="module")
def objects(staging: synth.PlanRecord) -> dict[str, dict[str, Any]]:
    """The endpoint's Kubernetes objects by kind."""
    (component,) = staging.of_type(SERVING)
    return {r.type.rsplit(":", 1)[-1]: r.inputs for r in staging.children(component.urn)}


@pytest.fixture(scope="module")
def pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = objects["Deployment"]["spec"]["template"]["spec"]
    return found


def _env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["containers"][0]["env"]}


def test_the_cluster_endpoint_is_one_serving_component_named_after_the_endpoint(staging: synth.PlanRecord) -> None:
    assert [r.name for r in staging.of_type(SERVING)] == ["mlplat-staging-abalone-eks"]


def test_it_builds_a_deployment_service_autoscaler_disruption_budget_and_scrape_policy_in_the_team_namespace(
    objects: dict[str, dict[str, Any]],
) -> None:
    assert {kind: (o["metadata"]["namespace"], o["metadata"]["name"]) for kind, o in objects.items()} == {
        "Deployment": ("applied", "abalone-eks"),
        "Service": ("applied", "abalone-eks"),
        "HorizontalPodAutoscaler": ("applied", "abalone-eks"),
        "PodDisruptionBudget": ("applied", "abalone-eks"),
        "NetworkPolicy": ("applied", "abalone-eks-metrics"),
    }


def test_the_endpoint_is_not_also_a_sagemaker_endpoint(staging: synth.PlanRecord) -> None:
    names = [r.name for r in staging.of_type("mlplat:endpoint:InferenceEndpoint")]
    assert names == ["mlplat-staging-abalone-staging"]


def test_the_autoscaler_scales_on_eight_in_flight_requests_per_pod_between_the_endpoint_capacities(
    objects: dict[str, dict[str, Any]],
) -> None:
    spec = objects["HorizontalPodAutoscaler"]["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 3)
    assert spec["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "mlplat_serving_in_flight_requests"},
                "target": {"type": "AverageValue", "averageValue": "8"},
            },
        }
    ]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "abalone-eks"}


def test_the_staging_cluster_installs_prometheus_and_its_adapter_for_the_in_flight_metric(
    staging: synth.PlanRecord,
) -> None:
    charts = sorted(r.inputs["chart"] for r in staging.of_type("kubernetes:helm.sh/v3:Release"))
    assert {"prometheus", "prometheus-adapter"} <= set(charts)


def test_a_cluster_without_in_flight_endpoints_runs_no_prometheus(prod: synth.PlanRecord) -> None:
    charts = {r.inputs["chart"] for r in prod.of_type("kubernetes:helm.sh/v3:Release")}
    assert "metrics-server" in charts
    assert charts.isdisjoint({"prometheus", "prometheus-adapter"})


def test_the_pod_serves_the_registered_version_on_port_8080_ready_on_ping(pod: dict[str, Any]) -> None:
    container = pod["containers"][0]
    assert _env(pod)["MLPLAT_MODEL_URI"] == "models:/abalone/1"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}


def test_the_pod_runs_as_uid_10001_read_only_without_escalation_or_api_token(pod: dict[str, Any]) -> None:
    context = pod["containers"][0]["securityContext"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsNonRoot"]) == (10001, True)
    assert (context["readOnlyRootFilesystem"], context["allowPrivilegeEscalation"]) == (True, False)
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert (pod["automountServiceAccountToken"], pod["serviceAccountName"]) == (False, "workload")


def test_on_the_system_nodes_the_pod_requests_half_a_cpu_and_no_gpu_or_node_selector(pod: dict[str, Any]) -> None:
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
    assert "nodeSelector" not in pod and "tolerations" not in pod


def test_pods_spread_across_zones(pod: dict[str, Any]) -> None:
    (spread,) = pod["topologySpreadConstraints"]
    assert (spread["topologyKey"], spread["labelSelector"]) == (
        "topology.kubernetes.io/zone",
        {"matchLabels": {"app.kubernetes.io/name": "abalone-eks"}},
    )


def test_captured_requests_go_to_the_endpoint_prefix_of_the_bucket_encrypted_with_its_key(
    pod: dict[str, Any], staging: synth.PlanRecord
) -> None:
    env = _env(pod)
    bucket = staging.outputs["bucketName"]
    assert env[CAPTURE_DESTINATION_ENV] == f"s3://{bucket}/data-capture/abalone-eks/"
    assert (env[CAPTURE_PERCENT_ENV], env[CAPTURE_ENDPOINT_ENV]) == ("10", "abalone-eks")
    assert env[CAPTURE_KMS_ENV] == staging.outputs["kmsKeyArn"]


def test_the_capture_settings_are_spelled_as_the_serving_image_reads_them() -> None:
    assert (CAPTURE_DESTINATION_ENV, CAPTURE_PERCENT_ENV, CAPTURE_ENDPOINT_ENV, CAPTURE_KMS_ENV) == (
        capture.DESTINATION_ENV,
        capture.PERCENT_ENV,
        capture.ENDPOINT_ENV,
        capture.KMS_ENV,
    )


def test_the_endpoint_objects_validate_against_the_cluster_schema(staging: synth.PlanRecord) -> None:
    (component,) = staging.of_type(SERVING)
    report = k8s_validate.validate_resources(staging.children(component.urn), "1.35")
    assert report.ok, str(report)


@pytest.mark.parametrize(
    ("autoscaling", "expected"),
    [
        (None, ("cpu", 70, 8)),
        ({"metric": "cpu", "target": 55}, ("cpu", 55, 8)),
        ({"metric": "inflight", "target": 12}, ("inflight", 70, 12)),
    ],
)
def test_an_endpoints_autoscaling_becomes_the_servers_scaling_metric_and_target(
    autoscaling: dict[str, Any] | None, expected: tuple[str, int, int]
) -> None:
    endpoint = EndpointConfig.model_validate(
        {
            "name": "ep",
            "model": "md",
            "platform": "kubernetes",
            "pool": "system",
            "team": "t",
            "autoscaling": autoscaling,
        }
    )
    spec = cluster_serving_spec(endpoint, "img", "arn", "s3://b/data-capture/ep/", "key")
    assert (spec.scaling_metric, spec.target_cpu_utilization, spec.target_in_flight) == expected
