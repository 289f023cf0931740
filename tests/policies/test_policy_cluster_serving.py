"""Policies on cluster-served endpoints: UID >= 10000 and no API token; an autoscaler and a disruption budget."""

from typing import Any

import pytest
from policy_support import changed, removed, resource, run, run_stack

from components.serving_deployment import ServingSpec, render_serving_deployment

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SPEC = ServingSpec("abalone", "applied", "mlplat/serving:0.1.0", "models:/abalone/1", "http://mlflow")
P = "spec.template.spec"


def _objects() -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in render_serving_deployment(SPEC)}


def _stack(*kinds: str) -> list[Any]:
    objects = _objects()
    return [resource(f"kubernetes:{objects[k]['apiVersion']}:{k}", f"abalone-{k.lower()}", objects[k]) for k in kinds]


def test_the_rendered_serving_deployment_passes_the_hardening_policy() -> None:
    assert run("k8s-serving-hardening", DEPLOYMENT, _objects()["Deployment"]) == []


@pytest.mark.parametrize("uid", [1000, 9999])
def test_a_serving_pod_below_uid_10000_is_a_violation(uid: int) -> None:
    props = changed(_objects()["Deployment"], f"{P}.containers.0.securityContext.runAsUser", uid)
    assert run("k8s-serving-hardening", DEPLOYMENT, props) == [
        f"container serve runs as UID {uid}; set securityContext.runAsUser to 10000 or above."
    ]


def test_a_container_without_its_own_uid_is_judged_by_the_pods() -> None:
    props = removed(_objects()["Deployment"], f"{P}.containers.0.securityContext.runAsUser")
    props = changed(props, f"{P}.securityContext.runAsUser", 1000)
    assert run("k8s-serving-hardening", DEPLOYMENT, props) == [
        "container serve runs as UID 1000; set securityContext.runAsUser to 10000 or above."
    ]


def test_a_serving_pod_that_mounts_the_api_token_is_a_violation() -> None:
    props = removed(_objects()["Deployment"], f"{P}.automountServiceAccountToken")
    assert run("k8s-serving-hardening", DEPLOYMENT, props) == [
        "the pod mounts the service account's API token; set automountServiceAccountToken: false "
        "(IRSA credentials do not need it)."
    ]


def test_a_deployment_that_is_not_a_server_is_left_to_the_general_pod_policies() -> None:
    props = changed(_objects()["Deployment"], "metadata.labels", {"app.kubernetes.io/name": "other"})
    props = removed(props, f"{P}.automountServiceAccountToken")
    assert run("k8s-serving-hardening", DEPLOYMENT, props) == []


def test_a_server_with_its_autoscaler_and_disruption_budget_passes() -> None:
    resources = _stack("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")
    assert run_stack("k8s-serving-availability", resources) == []


def test_a_server_without_autoscaler_or_disruption_budget_names_both() -> None:
    violations = run_stack("k8s-serving-availability", _stack("Deployment", "Service"))
    assert [v.message for v in violations] == [
        "serving Deployment applied/abalone has no HorizontalPodAutoscaler or PodDisruptionBudget."
    ]
