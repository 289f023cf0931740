"""Policies on cluster-served endpoints: UID >= 10000 and no API token; an autoscaler and a disruption budget; an
autoscaler on in-flight requests has its metrics adapter and a reachable target."""

from typing import Any

import pytest
from policy_support import changed, removed, resource, run, run_stack

from components.config import SERVER_MAX_IN_FLIGHT
from components.serving_deployment import IN_FLIGHT_METRIC, ServingSpec, render_serving_deployment
from policies import kubernetes
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


IN_FLIGHT = ServingSpec(**{**SPEC.__dict__, "scaling_metric": "inflight", "target_in_flight": 8})
ADAPTER = resource(
    "kubernetes:helm.sh/v3:Release",
    "svc-prometheus-adapter",
    {"chart": "prometheus-adapter", "version": "5.3.0", "repositoryOpts": {"repo": "https://example.test"}},
)


def _in_flight_stack(spec: ServingSpec = IN_FLIGHT, with_adapter: bool = True) -> list[Any]:
    objects = [
        resource(f"kubernetes:{o['apiVersion']}:{o['kind']}", o["kind"], o) for o in render_serving_deployment(spec)
    ]
    return [*objects, *([ADAPTER] if with_adapter else [])]


def _messages(resources: list[Any]) -> list[str]:
    return [v.message for v in run_stack("k8s-serving-in-flight-scaling", resources)]


def test_the_policys_metric_and_default_limit_are_the_platforms() -> None:
    assert (kubernetes.IN_FLIGHT_METRIC, kubernetes.DEFAULT_MAX_IN_FLIGHT) == (IN_FLIGHT_METRIC, SERVER_MAX_IN_FLIGHT)


def test_an_in_flight_autoscaler_with_the_adapter_and_a_target_of_8_passes() -> None:
    assert _messages(_in_flight_stack()) == []


def test_a_cpu_autoscaler_needs_no_adapter() -> None:
    assert _messages(_in_flight_stack(SPEC, with_adapter=False)) == []


def test_an_in_flight_autoscaler_without_the_adapter_is_a_violation() -> None:
    assert _messages(_in_flight_stack(with_adapter=False)) == [
        "autoscaler applied/abalone scales on mlplat_serving_in_flight_requests but the stack installs no "
        "prometheus-adapter; without it the metric is never served and the autoscaler never scales."
    ]


@pytest.mark.parametrize("target", ["0", "64", "2500m"])
def test_an_in_flight_target_outside_1_to_63_is_a_violation(target: str) -> None:
    stack = _in_flight_stack()
    stack[2] = resource(
        stack[2].type, "hpa", changed(stack[2].props, "spec.metrics.0.pods.target.averageValue", target)
    )
    assert _messages(stack) == [
        f"autoscaler applied/abalone targets {target} in-flight requests per pod; the target must be within "
        "1..63 (below the server's limit of 64)."
    ]


def test_an_autoscaler_on_another_pods_metric_is_not_judged() -> None:
    stack = _in_flight_stack(with_adapter=False)
    stack[2] = resource(stack[2].type, "hpa", changed(stack[2].props, "spec.metrics.0.pods.metric.name", "queue_depth"))
    assert _messages(stack) == []


def test_the_adapter_counts_when_installed_from_an_oci_reference_as_a_helm_v4_chart() -> None:
    adapter = resource(
        "kubernetes:helm.sh/v4:Chart", "adapter", {"chart": "oci://registry.example/charts/prometheus-adapter"}
    )
    assert _messages([*_in_flight_stack(with_adapter=False), adapter]) == []


def test_the_limit_is_the_servers_own_when_its_deployment_sets_one() -> None:
    spec = ServingSpec(**{**IN_FLIGHT.__dict__, "env": {"MLPLAT_MAX_IN_FLIGHT": "8"}})
    assert _messages(_in_flight_stack(spec)) == [
        "autoscaler applied/abalone targets 8 in-flight requests per pod; the target must be within "
        "1..7 (below the server's limit of 8)."
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


HPA_METRIC = "spec.metrics.0"


def _hpa_edited(path: str, value: Any) -> list[Any]:
    stack = _in_flight_stack()
    hpa = next(i for i, r in enumerate(stack) if r.type.endswith(":HorizontalPodAutoscaler"))
    stack[hpa] = resource(stack[hpa].type, "hpa", changed(stack[hpa].props, path, value))
    return stack


def _out_of_range(target: str, limit: int = 64) -> list[str]:
    return [
        f"autoscaler applied/abalone targets {target} in-flight requests per pod; the target must be within "
        f"1..{limit - 1} (below the server's limit of {limit})."
    ]


@pytest.mark.parametrize(
    ("path", "value", "messages"),
    [
        pytest.param(f"{HPA_METRIC}.pods.target.averageValue", "1", [], id="target at the lower bound 1"),
        pytest.param(f"{HPA_METRIC}.pods.target.averageValue", "63", [], id="target at the upper bound 63"),
        pytest.param(f"{HPA_METRIC}.pods.target.averageValue", 63, [], id="target as a number"),
        pytest.param(f"{HPA_METRIC}.pods.target.averageValue", "-1", _out_of_range("-1"), id="a negative target"),
        pytest.param(f"{HPA_METRIC}.type", "Resource", [], id="a metric of another type"),
        pytest.param(
            "spec.metrics",
            [{"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"averageValue": "100"}}}],
            [],
            id="another pods metric, whatever its target",
        ),
        pytest.param(
            "spec.metrics",
            [
                {"type": "Resource", "resource": {"name": "cpu"}},
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "mlplat_serving_in_flight_requests"},
                        "target": {"type": "AverageValue", "averageValue": "64"},
                    },
                },
            ],
            _out_of_range("64"),
            id="the in-flight metric second in the list",
        ),
        pytest.param(
            "spec.scaleTargetRef.name", "other", [], id="a target Deployment not in the stack keeps the default limit"
        ),
    ],
)
def test_k8s_serving_in_flight_scaling_checks_each_condition(path: str, value: Any, messages: list[str]) -> None:
    assert _messages(_hpa_edited(path, value)) == messages


@pytest.mark.parametrize(
    ("env", "messages"),
    [
        pytest.param({"MLPLAT_MAX_IN_FLIGHT": "9"}, [], id="limit 9: the target 8 is just under it"),
        pytest.param({"MLPLAT_MAX_IN_FLIGHT": "8"}, _out_of_range("8", 8), id="limit 8: the target 8 is at it"),
        pytest.param({"MLPLAT_MAX_IN_FLIGHT": "eight"}, [], id="a limit that is no number keeps the default 64"),
        pytest.param({"OTHER": "8"}, [], id="another variable"),
    ],
)
def test_k8s_serving_in_flight_scaling_reads_the_servers_limit(env: dict[str, str], messages: list[str]) -> None:
    assert _messages(_in_flight_stack(ServingSpec(**{**IN_FLIGHT.__dict__, "env": env}))) == messages


def test_k8s_serving_in_flight_scaling_takes_the_limit_of_the_deployment_in_the_autoscalers_namespace() -> None:
    stack = _in_flight_stack(ServingSpec(**{**IN_FLIGHT.__dict__, "env": {"MLPLAT_MAX_IN_FLIGHT": "8"}}))
    deployment = next(i for i, r in enumerate(stack) if r.type == DEPLOYMENT)
    stack[deployment] = resource(DEPLOYMENT, "moved", changed(stack[deployment].props, "metadata.namespace", "other"))
    assert _messages(stack) == []


def test_k8s_serving_in_flight_scaling_finds_the_adapter_by_a_chart_path_ending_in_its_name() -> None:
    adapter = resource(
        "kubernetes:helm.sh/v4:Chart", "adapter", {"chart": "oci://registry.example/charts/prometheus-adapter"}
    )
    assert _messages([*_in_flight_stack(with_adapter=False), adapter]) == []


def test_k8s_serving_in_flight_scaling_does_not_take_another_chart_for_the_adapter() -> None:
    other = resource("kubernetes:helm.sh/v3:Release", "other", {"chart": "prometheus-adapter-crds"})
    assert _messages([*_in_flight_stack(with_adapter=False), other])[0].startswith(
        "autoscaler applied/abalone scales on mlplat_serving_in_flight_requests but the stack installs no "
    )
