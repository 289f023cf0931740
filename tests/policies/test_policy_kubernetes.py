"""Kubernetes policies: pod security of every workload, requests and limits, probes, pinned Helm charts."""

import pytest
from policy_support import changed, removed, run

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
RELEASE = "kubernetes:helm.sh/v3:Release"

CONTAINER = {
    "name": "serve",
    "image": "mlplat/serving:0.1.0",
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    },
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    "readinessProbe": {"httpGet": {"path": "/ping", "port": 8080}},
    "livenessProbe": {"httpGet": {"path": "/ping", "port": 8080}},
}
POD = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [CONTAINER],
}
DEPLOYMENT_PROPS = {"metadata": {"name": "serve"}, "spec": {"replicas": 2, "template": {"spec": POD}}}
JOB_PROPS = {"metadata": {"name": "train"}, "spec": {"completionMode": "Indexed", "template": {"spec": POD}}}
C = "spec.template.spec.containers.0"
SECURITY_POLICIES = [
    "k8s-run-as-non-root",
    "k8s-read-only-root-fs",
    "k8s-drop-capabilities",
    "k8s-no-privilege-escalation",
    "k8s-seccomp",
    "k8s-requests-limits",
]


@pytest.mark.parametrize("policy", [*SECURITY_POLICIES, "k8s-deployment-probes"])
def test_a_hardened_deployment_passes(policy: str) -> None:
    assert run(policy, DEPLOYMENT, DEPLOYMENT_PROPS) == []


@pytest.mark.parametrize("policy", SECURITY_POLICIES)
def test_a_hardened_job_passes(policy: str) -> None:
    assert run(policy, JOB, JOB_PROPS) == []


def test_a_container_that_may_run_as_root_is_reported() -> None:
    props = removed(JOB_PROPS, f"{C}.securityContext.runAsNonRoot")
    props = removed(props, "spec.template.spec.securityContext.runAsNonRoot")
    assert run("k8s-run-as-non-root", JOB, props) == [
        "container serve may run as root; set securityContext.runAsNonRoot: true."
    ]


def test_a_container_running_as_uid_0_is_reported() -> None:
    assert run("k8s-run-as-non-root", JOB, changed(JOB_PROPS, f"{C}.securityContext.runAsUser", 0)) == [
        "container serve runs as UID 0; set securityContext.runAsUser to a non-zero UID."
    ]


def test_a_writable_root_filesystem_is_reported() -> None:
    props = changed(DEPLOYMENT_PROPS, f"{C}.securityContext.readOnlyRootFilesystem", False)
    assert run("k8s-read-only-root-fs", DEPLOYMENT, props) == [
        "container serve can write its root filesystem; set securityContext.readOnlyRootFilesystem: true and mount "
        "an emptyDir where it writes."
    ]


def test_kept_capabilities_are_reported() -> None:
    props = changed(DEPLOYMENT_PROPS, f"{C}.securityContext.capabilities", {"drop": ["NET_RAW"], "add": ["SYS_ADMIN"]})
    assert run("k8s-drop-capabilities", DEPLOYMENT, props) == [
        'container serve keeps Linux capabilities; set securityContext.capabilities.drop: ["ALL"].',
        "container serve adds capabilities SYS_ADMIN; remove securityContext.capabilities.add.",
    ]


def test_privilege_escalation_left_at_its_default_is_reported() -> None:
    props = removed(DEPLOYMENT_PROPS, f"{C}.securityContext.allowPrivilegeEscalation")
    assert run("k8s-no-privilege-escalation", DEPLOYMENT, props) == [
        "container serve may escalate privileges; set securityContext.allowPrivilegeEscalation: false."
    ]


def test_a_privileged_container_is_reported() -> None:
    props = changed(DEPLOYMENT_PROPS, f"{C}.securityContext.privileged", True)
    assert run("k8s-no-privilege-escalation", DEPLOYMENT, props) == [
        "container serve is privileged; remove securityContext.privileged."
    ]


def test_a_pod_without_seccomp_is_reported() -> None:
    props = removed(DEPLOYMENT_PROPS, "spec.template.spec.securityContext.seccompProfile")
    assert run("k8s-seccomp", DEPLOYMENT, props) == [
        "container serve runs without a seccomp profile; set securityContext.seccompProfile.type: RuntimeDefault on "
        "the pod."
    ]


def test_an_unconfined_container_overrides_the_pod_profile_and_is_reported() -> None:
    props = changed(DEPLOYMENT_PROPS, f"{C}.securityContext.seccompProfile", {"type": "Unconfined"})
    assert run("k8s-seccomp", DEPLOYMENT, props) == [
        "container serve runs without a seccomp profile; set securityContext.seccompProfile.type: RuntimeDefault on "
        "the pod."
    ]


def test_init_containers_are_held_to_the_same_rules() -> None:
    init = removed(CONTAINER, "securityContext.readOnlyRootFilesystem") | {"name": "fetch"}
    props = changed(JOB_PROPS, "spec.template.spec.initContainers", [init])
    assert run("k8s-read-only-root-fs", JOB, props) == [
        "init container fetch can write its root filesystem; set securityContext.readOnlyRootFilesystem: true and "
        "mount an emptyDir where it writes."
    ]


def test_missing_limits_are_named() -> None:
    props = removed(JOB_PROPS, f"{C}.resources.limits")
    assert run("k8s-requests-limits", JOB, props) == [
        "container serve has no limits.cpu, limits.memory; set resources.requests and resources.limits."
    ]


def test_a_deployment_without_a_liveness_probe_is_reported() -> None:
    props = removed(DEPLOYMENT_PROPS, f"{C}.livenessProbe")
    assert run("k8s-deployment-probes", DEPLOYMENT, props) == [
        "container serve has no livenessProbe; add probes (serving: GET /ping on port 8080)."
    ]


RELEASE_PROPS = {
    "chart": "nvidia-device-plugin",
    "version": "0.17.1",
    "repositoryOpts": {"repo": "https://nvidia.github.io/k8s-device-plugin"},
}


def test_a_pinned_chart_from_https_passes() -> None:
    assert run("helm-chart-pinned", RELEASE, RELEASE_PROPS) == []


def test_a_chart_without_a_version_is_reported() -> None:
    assert run("helm-chart-pinned", RELEASE, removed(RELEASE_PROPS, "version")) == [
        "chart nvidia-device-plugin has no version; pin an exact chart version such as 0.17.1."
    ]


def test_a_version_range_is_reported() -> None:
    assert run("helm-chart-pinned", RELEASE, changed(RELEASE_PROPS, "version", "^0.17")) == [
        "chart nvidia-device-plugin has version '^0.17'; pin an exact chart version such as 0.17.1."
    ]


def test_a_chart_over_plain_http_is_reported() -> None:
    props = changed(RELEASE_PROPS, "repositoryOpts.repo", "http://charts.example.com")
    assert run("helm-chart-pinned", RELEASE, props) == [
        "chart nvidia-device-plugin comes from http://charts.example.com over plain HTTP; use the https:// or oci:// "
        "repository."
    ]
