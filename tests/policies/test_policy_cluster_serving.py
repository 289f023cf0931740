"""Policies on cluster-served endpoints: UID >= 10000 and no API token; an autoscaler and a disruption budget."""

from typing import Any

import pytest
from policy_support import changed, removed, resource, run, run_stack

from components.serving_deployment import ServingSpec, render_serving_deployment
from policies.base import Violation

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


# One bad fixture per condition each serving policy checks; each case is named after its condition.
@pytest.mark.parametrize(
    ("uid", "messages"),
    [
        pytest.param(10000, [], id="UID at 10000"),
        pytest.param(
            "10001",
            ["container serve runs as UID 10001; set securityContext.runAsUser to 10000 or above."],
            id="UID as a string",
        ),
        pytest.param(
            None,
            ["container serve runs as UID None; set securityContext.runAsUser to 10000 or above."],
            id="UID unset on container and pod",
        ),
    ],
)
def test_k8s_serving_hardening_checks_each_uid(uid: object, messages: list[str]) -> None:
    props = removed(_objects()["Deployment"], f"{P}.securityContext.runAsUser")
    props = changed(props, f"{P}.containers.0.securityContext.runAsUser", uid)
    if uid is None:
        props = removed(props, f"{P}.containers.0.securityContext.runAsUser")
    assert run("k8s-serving-hardening", DEPLOYMENT, props) == messages


def test_k8s_serving_hardening_reports_a_token_mounted_explicitly() -> None:
    props = changed(_objects()["Deployment"], f"{P}.automountServiceAccountToken", True)
    assert run("k8s-serving-hardening", DEPLOYMENT, props) == [
        "the pod mounts the service account's API token; set automountServiceAccountToken: false "
        "(IRSA credentials do not need it)."
    ]


@pytest.mark.parametrize(
    ("kinds", "edit", "missing"),
    [
        pytest.param(("HorizontalPodAutoscaler",), None, "PodDisruptionBudget", id="no disruption budget"),
        pytest.param(("PodDisruptionBudget",), None, "HorizontalPodAutoscaler", id="no autoscaler"),
        pytest.param(
            ("HorizontalPodAutoscaler", "PodDisruptionBudget"),
            ("HorizontalPodAutoscaler", "spec.scaleTargetRef.name", "other"),
            "HorizontalPodAutoscaler",
            id="autoscaler targeting another Deployment",
        ),
        pytest.param(
            ("HorizontalPodAutoscaler", "PodDisruptionBudget"),
            ("HorizontalPodAutoscaler", "metadata.namespace", "other"),
            "HorizontalPodAutoscaler",
            id="autoscaler in another namespace",
        ),
        pytest.param(
            ("HorizontalPodAutoscaler", "PodDisruptionBudget"),
            ("PodDisruptionBudget", "metadata.namespace", "other"),
            "PodDisruptionBudget",
            id="disruption budget in another namespace",
        ),
        pytest.param(
            ("HorizontalPodAutoscaler", "PodDisruptionBudget"),
            ("PodDisruptionBudget", "metadata.name", "other"),
            "PodDisruptionBudget",
            id="disruption budget of another name",
        ),
    ],
)
def test_k8s_serving_availability_checks_each_companion(
    kinds: tuple[str, ...], edit: tuple[str, str, str] | None, missing: str
) -> None:
    objects = _objects()
    if edit is not None:
        objects[edit[0]] = changed(objects[edit[0]], edit[1], edit[2])
    resources = [
        resource(f"kubernetes:{objects[k]['apiVersion']}:{k}", f"abalone-{k.lower()}", objects[k])
        for k in ("Deployment", *kinds)
    ]
    assert run_stack("k8s-serving-availability", resources) == [
        Violation(f"serving Deployment applied/abalone has no {missing}.", resources[0].urn)
    ]


def test_k8s_serving_availability_leaves_other_deployments_alone() -> None:
    objects = _objects()
    deployment = changed(objects["Deployment"], "metadata.labels", {"app.kubernetes.io/name": "other"})
    assert run_stack("k8s-serving-availability", [resource(DEPLOYMENT, "other", deployment)]) == []
