"""TeamNamespace under mocks: quota, limits, default-deny networking and one IRSA service account scoped to the
team's slice of the bucket, its key and the tracking server."""

import json
from typing import Any

import pulumi_kubernetes as k8s
import pytest
from gpu_mocks import ACCOUNT, OIDC_HOST, OIDC_ISSUER, Recorded, Synthesis, synthesize

from components.team import TeamNamespace, TeamNamespaceArgs, TeamSpec, render_team_namespace
from mlplat import k8s_validate

BUCKET = "arn:aws:s3:::mlplat-prod-artifacts"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/artifacts"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC_HOST}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/team-research-role"
STATEMENTS = [
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"{BUCKET}/datasets/*"},
    {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": KEY},
]
SPEC = TeamSpec(team="research", gpu_quota=16, cpu_quota="256", memory_quota="2Ti", vpc_cidr="10.40.0.0/16")


def _build() -> dict[str, object]:
    provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
    team = TeamNamespace(
        "team-research",
        TeamNamespaceArgs(
            spec=SPEC,
            provider=provider,
            oidc_provider_arn=OIDC_ARN,
            oidc_issuer=OIDC_ISSUER,
            statements=STATEMENTS,
        ),
    )
    return {"role": team.role_arn}


@pytest.fixture(scope="module")
def plan() -> Synthesis:
    return synthesize(_build)


def _object(plan: Synthesis, kind: str, name: str) -> dict[str, Any]:
    return plan.named(f"team-research-{kind}-{name}").inputs


def test_the_namespace_is_the_teams_name_and_enforces_the_restricted_pod_standard(plan: Synthesis) -> None:
    assert _object(plan, "namespace", "research")["metadata"] == {
        "name": "research",
        "labels": {
            "mlplat.io/team": "research",
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        },
    }


def test_the_quota_caps_cpu_and_memory_and_leaves_gpus_to_kueue(plan: Synthesis) -> None:
    assert _object(plan, "resourcequota", "compute-quota")["spec"] == {
        "hard": {
            "requests.cpu": "256",
            "requests.memory": "2Ti",
            "limits.memory": "2Ti",
        }
    }


def test_the_namespace_has_a_local_queue_feeding_the_teams_cluster_queue(plan: Synthesis) -> None:
    queue = plan.named("team-research-localqueue-default")
    assert queue.type == "kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue"
    assert queue.inputs["metadata"] == {"name": "default", "namespace": "research"}
    assert queue.inputs["spec"] == {"clusterQueue": "research"}


def test_containers_without_resources_get_default_requests_and_limits(plan: Synthesis) -> None:
    assert _object(plan, "limitrange", "container-defaults")["spec"] == {
        "limits": [
            {
                "type": "Container",
                "defaultRequest": {"cpu": "500m", "memory": "1Gi"},
                "default": {"cpu": "2", "memory": "4Gi"},
            }
        ]
    }


def test_all_traffic_is_denied_unless_another_policy_allows_it(plan: Synthesis) -> None:
    assert _object(plan, "networkpolicy", "default-deny")["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }


def test_pods_may_resolve_names_through_cluster_dns_only(plan: Synthesis) -> None:
    assert _object(plan, "networkpolicy", "allow-dns")["spec"]["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]


def test_pods_of_the_namespace_may_reach_each_other_for_the_rendezvous(plan: Synthesis) -> None:
    spec = _object(plan, "networkpolicy", "allow-same-namespace")["spec"]
    assert spec["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert spec["egress"] == [{"to": [{"podSelector": {}}]}]


def test_https_egress_reaches_the_vpc_endpoints_and_public_aws_addresses_only(plan: Synthesis) -> None:
    assert _object(plan, "networkpolicy", "allow-https-egress")["spec"]["egress"] == [
        {
            "to": [
                {"ipBlock": {"cidr": "10.40.0.0/16"}},
                {
                    "ipBlock": {
                        "cidr": "0.0.0.0/0",
                        "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"],
                    }
                },
            ],
            "ports": [{"protocol": "TCP", "port": 443}],
        }
    ]


def test_the_service_account_carries_the_teams_role_and_mounts_no_api_token(plan: Synthesis) -> None:
    account = _object(plan, "serviceaccount", "workload")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE_ARN}
    assert account["automountServiceAccountToken"] is False


def test_only_the_teams_service_account_may_assume_the_role(plan: Synthesis) -> None:
    trust = json.loads(plan.named("team-research-role").inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": OIDC_ARN},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{OIDC_HOST}:sub": "system:serviceaccount:research:workload",
                    f"{OIDC_HOST}:aud": "sts.amazonaws.com",
                }
            },
        }
    ]


def test_the_role_may_do_exactly_what_the_statements_say(plan: Synthesis) -> None:
    assert plan.named("team-research-policy").policy() == {"Version": "2012-10-17", "Statement": STATEMENTS}


def test_every_kubernetes_object_goes_through_the_clusters_provider(plan: Synthesis) -> None:
    provider = plan.named("cluster-k8s")
    objects = [r for r in plan if r.type.startswith("kubernetes:")]
    assert len(objects) == 9
    assert {r.provider for r in objects} == {f"{provider.urn}::cluster-k8s-id"}


def test_objects_in_the_namespace_wait_for_the_namespace(plan: Synthesis) -> None:
    namespace = plan.named("team-research-namespace-research")
    quota = plan.named("team-research-resourcequota-compute-quota")
    assert namespace.urn in quota.dependencies


def test_the_component_registers_exactly_the_rendered_objects(plan: Synthesis) -> None:
    rendered = render_team_namespace(SPEC, ROLE_ARN)
    recorded = [
        {"apiVersion": r.inputs["apiVersion"], "kind": r.inputs["kind"], **_without_type(r)}
        for r in plan
        if r.type.startswith("kubernetes:") and r.custom
    ]
    assert sorted(recorded, key=k8s_validate.describe) == sorted(rendered, key=k8s_validate.describe)


def test_every_rendered_object_is_valid_for_the_clusters_kubernetes_version() -> None:
    report = k8s_validate.validate_manifests(render_team_namespace(SPEC, ROLE_ARN), "1.35")
    assert report.problems == []
    assert len(report.validated) == 9


def _without_type(resource: Recorded) -> dict[str, Any]:
    return {k: v for k, v in resource.inputs.items() if k not in ("apiVersion", "kind")}
