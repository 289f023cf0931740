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


# One bad fixture per condition each Kubernetes policy checks; each case is named after its condition.
SC = f"{C}.securityContext"
POD_SC = "spec.template.spec.securityContext"


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param(
            changed(DEPLOYMENT_PROPS, f"{SC}.runAsUser", 0),
            ["container serve runs as UID 0; set securityContext.runAsUser to a non-zero UID."],
            id="container runAsUser 0",
        ),
        pytest.param(
            changed(removed(DEPLOYMENT_PROPS, f"{SC}.runAsUser"), f"{POD_SC}.runAsUser", 0),
            ["container serve runs as UID 0; set securityContext.runAsUser to a non-zero UID."],
            id="pod runAsUser 0 inherited",
        ),
        pytest.param(
            changed(DEPLOYMENT_PROPS, f"{SC}.runAsNonRoot", False),
            ["container serve may run as root; set securityContext.runAsNonRoot: true."],
            id="container runAsNonRoot false overrides the pod",
        ),
        pytest.param(
            removed(removed(DEPLOYMENT_PROPS, f"{SC}.runAsNonRoot"), f"{POD_SC}.runAsNonRoot"),
            ["container serve may run as root; set securityContext.runAsNonRoot: true."],
            id="runAsNonRoot unset on both",
        ),
        pytest.param(removed(DEPLOYMENT_PROPS, f"{SC}.runAsNonRoot"), [], id="runAsNonRoot from the pod"),
    ],
)
def test_k8s_run_as_non_root_checks_each_condition(props: dict, messages: list[str]) -> None:
    assert run("k8s-run-as-non-root", DEPLOYMENT, props) == messages


def test_k8s_read_only_root_fs_reports_the_flag_left_out() -> None:
    assert run("k8s-read-only-root-fs", DEPLOYMENT, removed(DEPLOYMENT_PROPS, f"{SC}.readOnlyRootFilesystem")) == [
        "container serve can write its root filesystem; set securityContext.readOnlyRootFilesystem: true and mount "
        "an emptyDir where it writes."
    ]


@pytest.mark.parametrize(
    ("capabilities", "messages"),
    [
        pytest.param(
            {"drop": ["NET_RAW"]},
            ['container serve keeps Linux capabilities; set securityContext.capabilities.drop: ["ALL"].'],
            id="drop without ALL",
        ),
        pytest.param(
            {"drop": ["ALL"], "add": ["NET_ADMIN", "SYS_TIME"]},
            ["container serve adds capabilities NET_ADMIN, SYS_TIME; remove securityContext.capabilities.add."],
            id="capabilities added back",
        ),
        pytest.param(
            {},
            ['container serve keeps Linux capabilities; set securityContext.capabilities.drop: ["ALL"].'],
            id="nothing dropped",
        ),
    ],
)
def test_k8s_drop_capabilities_checks_each_condition(capabilities: dict, messages: list[str]) -> None:
    props = changed(DEPLOYMENT_PROPS, f"{SC}.capabilities", capabilities)
    assert run("k8s-drop-capabilities", DEPLOYMENT, props) == messages


@pytest.mark.parametrize(
    ("path", "value", "messages"),
    [
        pytest.param(
            "privileged",
            "true",
            ["container serve is privileged; remove securityContext.privileged."],
            id="privileged as a string",
        ),
        pytest.param("privileged", False, [], id="privileged false"),
        pytest.param(
            "allowPrivilegeEscalation",
            True,
            ["container serve may escalate privileges; set securityContext.allowPrivilegeEscalation: false."],
            id="allowPrivilegeEscalation true",
        ),
        pytest.param(
            "allowPrivilegeEscalation",
            "false",
            ["container serve may escalate privileges; set securityContext.allowPrivilegeEscalation: false."],
            id="allowPrivilegeEscalation as a string is not false",
        ),
    ],
)
def test_k8s_no_privilege_escalation_checks_each_flag(path: str, value: object, messages: list[str]) -> None:
    assert run("k8s-no-privilege-escalation", DEPLOYMENT, changed(DEPLOYMENT_PROPS, f"{SC}.{path}", value)) == messages


NO_SECCOMP = (
    "container serve runs without a seccomp profile; set securityContext.seccompProfile.type: RuntimeDefault on "
    "the pod."
)


@pytest.mark.parametrize(
    ("path", "value", "messages"),
    [
        pytest.param(f"{POD_SC}.seccompProfile.type", "Localhost", [], id="pod profile Localhost"),
        pytest.param(f"{POD_SC}.seccompProfile.type", "Unconfined", [NO_SECCOMP], id="pod profile Unconfined"),
        pytest.param(f"{SC}.seccompProfile", {"type": "RuntimeDefault"}, [], id="container profile RuntimeDefault"),
    ],
)
def test_k8s_seccomp_checks_each_profile(path: str, value: object, messages: list[str]) -> None:
    assert run("k8s-seccomp", DEPLOYMENT, changed(DEPLOYMENT_PROPS, path, value)) == messages


@pytest.mark.parametrize(
    "missing", ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"], ids=lambda m: f"{m} missing"
)
def test_k8s_requests_limits_names_each_missing_setting(missing: str) -> None:
    props = removed(DEPLOYMENT_PROPS, f"{C}.resources.{missing}")
    assert run("k8s-requests-limits", DEPLOYMENT, props) == [
        f"container serve has no {missing}; set resources.requests and resources.limits."
    ]


def test_k8s_requests_limits_names_every_missing_setting_at_once() -> None:
    props = removed(DEPLOYMENT_PROPS, f"{C}.resources")
    assert run("k8s-requests-limits", DEPLOYMENT, props) == [
        "container serve has no requests.cpu, requests.memory, limits.cpu, limits.memory; set resources.requests and "
        "resources.limits."
    ]


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        pytest.param(["readinessProbe"], "readinessProbe", id="readinessProbe missing"),
        pytest.param(["readinessProbe", "livenessProbe"], "readinessProbe or livenessProbe", id="both probes missing"),
    ],
)
def test_k8s_deployment_probes_names_each_missing_probe(missing: list[str], named: str) -> None:
    props = DEPLOYMENT_PROPS
    for probe in missing:
        props = removed(props, f"{C}.{probe}")
    assert run("k8s-deployment-probes", DEPLOYMENT, props) == [
        f"container serve has no {named}; add probes (serving: GET /ping on port 8080)."
    ]


def test_k8s_rules_apply_to_a_cronjobs_pods() -> None:
    props = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "drift"}]}}}}}}
    assert run("k8s-read-only-root-fs", "kubernetes:batch/v1:CronJob", props) == [
        "container drift can write its root filesystem; set securityContext.readOnlyRootFilesystem: true and mount "
        "an emptyDir where it writes."
    ]


@pytest.mark.parametrize(
    ("change", "messages"),
    [
        pytest.param({"version": "v1.2.3"}, [], id="version with a v"),
        pytest.param({"version": "1.2.3-rc.1+build.5"}, [], id="prerelease and build"),
        pytest.param(
            {"version": "1.2"},
            ["chart nvidia-device-plugin has version '1.2'; pin an exact chart version such as 0.17.1."],
            id="two parts only",
        ),
        pytest.param(
            {"version": "1.2.3 "},
            ["chart nvidia-device-plugin has version '1.2.3 '; pin an exact chart version such as 0.17.1."],
            id="trailing text",
        ),
        pytest.param(
            {"version": "x1.2.3"},
            ["chart nvidia-device-plugin has version 'x1.2.3'; pin an exact chart version such as 0.17.1."],
            id="leading text",
        ),
        pytest.param({"repositoryOpts": {"repo": "oci://registry.k8s.io/charts"}}, [], id="an OCI repository"),
        pytest.param({"chart": "./charts/local", "version": None}, [], id="a chart in this repository"),
        pytest.param({"chart": "/abs/chart", "version": None}, [], id="a chart at an absolute path"),
    ],
)
def test_helm_chart_pinned_checks_each_condition(change: dict, messages: list[str]) -> None:
    props = {k: v for k, v in {**RELEASE_PROPS, **change}.items() if v is not None}
    assert run("helm-chart-pinned", RELEASE, props) == messages


def test_helm_chart_pinned_reports_both_problems_at_once() -> None:
    props = {"chart": "c", "repositoryOpts": {"repo": "http://x"}}
    assert run("helm-chart-pinned", "kubernetes:helm.sh/v4:Chart", props) == [
        "chart c has no version; pin an exact chart version such as 0.17.1.",
        "chart c comes from http://x over plain HTTP; use the https:// or oci:// repository.",
    ]
