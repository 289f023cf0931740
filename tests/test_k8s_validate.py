"""The offline Kubernetes validator: version mapping, strict schema checks, plan-record conversion, Helm pinning."""

import json
from typing import Any

import pytest

from mlplat import k8s_validate

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "research"}}


def test_the_pinned_package_bundles_schemas_for_kubernetes_1_25_to_1_37() -> None:
    assert k8s_validate.KUBERNETES_VALIDATE_VERSION == "1.37.0"
    assert tuple(f"1.{m}" for m in range(25, 38)) == k8s_validate.SUPPORTED_VERSIONS


@pytest.mark.parametrize(
    ("cluster", "schema"),
    [("1.33", "1.33"), ("v1.31", "1.31"), ("1.33.4", "1.33"), ("1.40", "1.37"), ("1.22", "1.25")],
)
def test_a_cluster_version_maps_to_the_nearest_bundled_schema(cluster: str, schema: str) -> None:
    assert k8s_validate.schema_version(cluster) == schema


def test_a_valid_manifest_has_no_problems() -> None:
    assert k8s_validate.validate_manifest(NAMESPACE, "1.33") == []


def test_an_unknown_field_is_an_error_in_strict_mode() -> None:
    bad = {**NAMESPACE, "metadata": {"name": "research", "lables": {"a": "b"}}}
    [problem] = k8s_validate.validate_manifest(bad, "1.33")
    assert problem.startswith("metadata: Additional properties are not allowed ('lables' was unexpected)")


def test_a_wrong_type_names_the_path_of_the_field() -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q", "namespace": "research"},
        "spec": {"hard": {"requests.cpu": "4"}, "scopes": "BestEffort"},
    }
    assert k8s_validate.validate_manifest(quota, "1.33") == ["spec.scopes: 'BestEffort' is not of type 'array', 'null'"]


def test_a_kind_without_a_schema_is_reported_not_skipped() -> None:
    report = k8s_validate.validate_manifests(
        [{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}}], "1.33"
    )
    assert [str(p) for p in report.problems] == [
        "Widget ?: Couldn't find schema for kind Widget with api version example.com/v1 for kubernetes version 1.33"
    ]


def _record(type_: str, inputs: dict[str, Any], name: str = "obj") -> dict[str, Any]:
    return {"urn": f"urn:x::{name}", "type": type_, "name": name, "parent": "", "custom": True, "inputs": inputs}


def test_a_recorded_core_object_becomes_a_v1_manifest_with_integral_numbers() -> None:
    record = _record(
        "kubernetes:core/v1:Service",
        {"metadata": {"name": "svc", "namespace": "research"}, "spec": {"ports": [{"port": 29500.0}], "x": None}},
    )
    assert k8s_validate.manifest_from_resource(record) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": "research"},
        "spec": {"ports": [{"port": 29500}]},
    }


def test_a_recorded_object_of_a_named_group_keeps_its_group() -> None:
    record = _record("kubernetes:networking.k8s.io/v1:NetworkPolicy", {"metadata": {"name": "deny"}, "spec": {}})
    assert k8s_validate.manifest_from_resource(record)["apiVersion"] == "networking.k8s.io/v1"  # type: ignore[index]


def test_an_auto_named_object_is_validated_under_its_logical_name() -> None:
    record = _record("kubernetes:core/v1:Namespace", {}, name="team-ns")
    assert k8s_validate.manifest_from_resource(record) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-ns"},
    }


def test_providers_components_and_aws_resources_are_not_manifests() -> None:
    assert k8s_validate.manifest_from_resource(_record("pulumi:providers:kubernetes", {})) is None
    assert k8s_validate.manifest_from_resource(_record("aws:eks/cluster:Cluster", {})) is None
    component = {**_record("kubernetes:core/v1:Namespace", {}), "custom": False}
    assert k8s_validate.manifest_from_resource(component) is None


def test_a_helm_release_without_an_exact_version_is_a_problem() -> None:
    release = _record(k8s_validate.HELM_RELEASE_TYPE, {"chart": "x", "version": "^1.2", "repositoryOpts": {}}, "rel")
    report = k8s_validate.validate_resources([release], "1.33")
    assert [str(p) for p in report.problems] == [
        "Release rel: chart version must be pinned to an exact version (got '^1.2')"
    ]


def test_a_helm_release_from_plain_http_is_a_problem() -> None:
    inputs = {"chart": "x", "version": "1.2.3", "repositoryOpts": {"repo": "http://charts.example.com"}}
    assert k8s_validate.helm_release_problems(_record(k8s_validate.HELM_RELEASE_TYPE, inputs)) == [
        "chart repository must be https (got 'http://charts.example.com')"
    ]


def test_validating_resources_reports_objects_releases_and_problems_together() -> None:
    resources = [
        _record("kubernetes:core/v1:Namespace", {"metadata": {"name": "a"}}, "ns"),
        _record("kubernetes:core/v1:Namespace", {"metadata": {"name": "b"}, "spec": {"finalizers": "x"}}, "bad"),
        _record(k8s_validate.HELM_RELEASE_TYPE, {"chart": "c", "version": "1.0.0"}, "rel"),
    ]
    report = k8s_validate.validate_resources(resources, "1.33")
    assert report.validated == ["Namespace a", "Namespace b"]
    assert report.helm_releases == ["Release rel"]
    assert [str(p) for p in report.problems] == ["Namespace b: spec.finalizers: 'x' is not of type 'array', 'null'"]
    assert report.to_json()["ok"] is False


def test_the_command_validates_a_shipped_stack_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert k8s_validate.main(["--stack", "prod", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # Two team namespaces of nine objects each, prod's drift CronJob with its ServiceAccount, and 17 Karpenter and
    # Kueue objects: 3 node classes, 3 node pools, 4 flavors, 3 priority classes, 2 cluster queues (+2 local queues
    # counted with the namespaces).
    assert (report["ok"], report["schemaVersion"], len(report["validated"]), len(report["helmReleases"])) == (
        True,
        "1.35",
        35,
        5,
    )


def test_a_karpenter_node_pool_is_validated_against_its_crd_with_unknown_fields_refused() -> None:
    pool = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "gpu"},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                    "requirements": [],
                    "taint": [],
                }
            },
            "disruption": {"consolidationPolicy": "Sometimes", "consolidateAfter": "5m"},
        },
    }
    assert k8s_validate.validate_manifest(pool, "1.35") == [
        "spec.disruption.consolidationPolicy: 'Sometimes' is not one of ['WhenEmpty', 'WhenEmptyOrUnderutilized', "
        "'Balanced']",
        "spec.template.spec: Additional properties are not allowed ('taint' was unexpected)",
    ]


def test_a_kueue_cluster_queue_without_its_required_flavors_is_refused() -> None:
    queue = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": "research"},
        "spec": {"resourceGroups": [{"coveredResources": ["cpu"]}]},
    }
    assert k8s_validate.validate_manifest(queue, "1.35") == ["spec.resourceGroups.0: 'flavors' is a required property"]


def test_every_copied_crd_version_that_is_served_has_a_schema() -> None:
    assert sorted(k for k in k8s_validate.crd_schemas() if k[0].startswith(("karpenter", "kueue"))) == sorted(
        [
            ("karpenter.k8s.aws/v1", "EC2NodeClass"),
            ("karpenter.sh/v1", "NodeClaim"),
            ("karpenter.sh/v1", "NodePool"),
            *(
                (f"kueue.x-k8s.io/{v}", k)
                for v in ("v1beta1", "v1beta2")
                for k in ("ClusterQueue", "Cohort", "LocalQueue", "ResourceFlavor", "Topology", "WorkloadPriorityClass")
            ),
        ]
    )
