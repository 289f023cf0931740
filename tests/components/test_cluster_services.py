"""ClusterServices under mocks: pinned Helm releases for the device plugin, cluster-autoscaler and metrics-server,
installed through the cluster's provider, with an autoscaler role limited to this cluster's groups."""

import json

import pulumi_kubernetes as k8s
import pytest
from gpu_mocks import ACCOUNT, OIDC_HOST, OIDC_ISSUER, Recorded, Synthesis, synthesize

from components.cluster_services import ClusterServices, ClusterServicesArgs
from mlplat import k8s_validate

RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER = "mlplat-prod-compute-cluster"
CLUSTER_ARN = f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{CLUSTER}"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC_HOST}"


def _args(provider: k8s.Provider, version: str = "1.33") -> ClusterServicesArgs:
    return ClusterServicesArgs(
        provider=provider,
        cluster_name=CLUSTER,
        cluster_arn=CLUSTER_ARN,
        oidc_provider_arn=OIDC_ARN,
        oidc_issuer=OIDC_ISSUER,
        region="us-east-1",
        kubernetes_version=version,
    )


def _build() -> dict[str, object]:
    provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
    return {"role": ClusterServices("svc", _args(provider)).autoscaler_role_arn}


@pytest.fixture(scope="module")
def plan() -> Synthesis:
    return synthesize(_build)


def _release(plan: Synthesis, role: str) -> Recorded:
    return plan.named(f"svc-{role}")


def test_each_service_is_a_helm_chart_pinned_to_an_exact_version(plan: Synthesis) -> None:
    charts = {
        r.name: (r.inputs["chart"], r.inputs["version"], r.inputs["repositoryOpts"]["repo"])
        for r in plan.of_type(RELEASE)
    }
    assert charts == {
        "svc-device-plugin": ("nvidia-device-plugin", "0.17.1", "https://nvidia.github.io/k8s-device-plugin"),
        "svc-autoscaler": ("cluster-autoscaler", "9.47.0", "https://kubernetes.github.io/autoscaler"),
        "svc-metrics-server": ("metrics-server", "3.12.2", "https://kubernetes-sigs.github.io/metrics-server/"),
    }


def test_the_shared_validator_finds_every_release_pinned(plan: Synthesis) -> None:
    report = k8s_validate.validate_plan(plan, "1.33")
    assert sorted(report.helm_releases) == [
        "Release svc-autoscaler",
        "Release svc-device-plugin",
        "Release svc-metrics-server",
    ]
    assert report.problems == []


def test_the_releases_install_into_kube_system_atomically(plan: Synthesis) -> None:
    for release in plan.of_type(RELEASE):
        assert release.inputs["namespace"] == "kube-system"
        assert release.inputs["atomic"] is True


def test_the_releases_go_through_the_clusters_provider(plan: Synthesis) -> None:
    provider = plan.named("cluster-k8s")
    assert {r.provider for r in plan.of_type(RELEASE)} == {f"{provider.urn}::cluster-k8s-id"}


def test_the_device_plugin_tolerates_the_gpu_taint_and_runs_only_on_gpu_nodes(plan: Synthesis) -> None:
    values = _release(plan, "device-plugin").inputs["values"]
    assert values["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}]}]


def test_the_autoscaler_discovers_this_cluster_with_the_matching_image(plan: Synthesis) -> None:
    values = _release(plan, "autoscaler").inputs["values"]
    assert values["autoDiscovery"] == {"clusterName": CLUSTER}
    assert values["awsRegion"] == "us-east-1"
    assert values["image"] == {"tag": "v1.33.0"}
    assert values["nodeSelector"] == {"mlplat.io/pool": "system"}
    assert values["extraArgs"]["expander"] == "least-waste"
    assert values["extraArgs"]["balance-similar-node-groups"] is True


def test_the_autoscaler_service_account_carries_its_role(plan: Synthesis) -> None:
    account = _release(plan, "autoscaler").inputs["values"]["rbac"]["serviceAccount"]
    assert account == {
        "create": True,
        "name": "cluster-autoscaler",
        "annotations": {"eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/svc-autoscaler-role"},
    }


def test_only_the_autoscaler_service_account_may_assume_its_role(plan: Synthesis) -> None:
    trust = json.loads(plan.named("svc-autoscaler-role").inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": OIDC_ARN},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{OIDC_HOST}:sub": "system:serviceaccount:kube-system:cluster-autoscaler",
                    f"{OIDC_HOST}:aud": "sts.amazonaws.com",
                }
            },
        }
    ]


def test_the_autoscaler_may_resize_only_groups_tagged_as_owned_by_this_cluster(plan: Synthesis) -> None:
    statements = plan.named("svc-autoscaler-policy").policy()["Statement"]
    assert statements[0] == {
        "Sid": "ScaleOwnedGroups",
        "Effect": "Allow",
        "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                f"aws:ResourceTag/k8s.io/cluster-autoscaler/{CLUSTER}": "owned",
                "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
            }
        },
    }


def test_everything_else_the_autoscaler_may_do_is_read_only(plan: Synthesis) -> None:
    statements = plan.named("svc-autoscaler-policy").policy()["Statement"]
    assert len(statements) == 3
    discover, nodegroups = statements[1], statements[2]
    assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in discover["Action"])
    assert nodegroups == {
        "Sid": "ReadNodeGroups",
        "Effect": "Allow",
        "Action": ["eks:DescribeNodegroup"],
        "Resource": f"arn:aws:eks:us-east-1:{ACCOUNT}:nodegroup/{CLUSTER}/*/*",
    }


def test_metrics_server_runs_two_replicas_on_the_system_nodes(plan: Synthesis) -> None:
    values = _release(plan, "metrics-server").inputs["values"]
    assert values["replicas"] == 2
    assert values["nodeSelector"] == {"mlplat.io/pool": "system"}


def test_every_service_resource_is_a_child_of_the_component(plan: Synthesis) -> None:
    component = plan.named("svc")
    assert component.type == "mlplat:cluster_services:ClusterServices"
    assert {r.name for r in plan if r.parent == component.urn} == {
        "svc-autoscaler-role",
        "svc-device-plugin",
        "svc-autoscaler",
        "svc-metrics-server",
    }


def test_a_cluster_version_without_a_pinned_autoscaler_image_is_rejected() -> None:
    with pytest.raises(ValueError) as caught:
        ClusterServices("old", _args(provider=None, version="1.29"))  # type: ignore[arg-type]
    assert str(caught.value) == (
        "mlplat:cluster.version has no pinned cluster-autoscaler image; use one of 1.31, 1.32, 1.33 (got '1.29')"
    )
