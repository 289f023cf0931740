"""GpuCompute in the synthesized shipped stacks: each stack's plan holds the cluster pieces its config asks for, every
Kubernetes object in it is schema-valid, and each team's role reaches exactly its slice of the platform."""

import json
from collections import Counter
from typing import Any

import pytest
from plan_helpers import as_list, parent_type, statements

from components.iam import MLFLOW_CLIENT_OPERATIONS
from mlplat import k8s_validate
from mlplat.synth import PlanRecord, ResourceRecord

COMPUTE = "mlplat:compute:GpuCompute"
CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NAMESPACE = "kubernetes:core/v1:Namespace"


def _pools(plan: PlanRecord) -> dict[str, dict[str, Any]]:
    """GPU node groups by their `mlplat.io/pool` label (the system group excluded)."""
    groups = (g.inputs for g in plan.of_type(NODE_GROUP))
    return {g["labels"]["mlplat.io/pool"]: g for g in groups if g["labels"]["mlplat.io/pool"] != "system"}


def _team_role(plan: PlanRecord, team: str) -> tuple[ResourceRecord, ResourceRecord]:
    role = plan.get("aws:iam/role:Role", f"mlplat-{plan.stack}-compute-team-{team}-role")
    policy = plan.get("aws:iam/rolePolicy:RolePolicy", f"mlplat-{plan.stack}-compute-team-{team}-policy")
    return role, policy


def test_dev_declares_no_cluster_and_so_no_gpu_compute(dev: PlanRecord) -> None:
    assert [r for r in dev.resources if r.type in (COMPUTE, CLUSTER) or r.type.startswith("kubernetes:")] == []
    assert "clusterName" not in dev.outputs


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_compute_component_holds_the_cluster_its_pools_its_services_and_its_teams(plans: Any, stack: str) -> None:
    plan: PlanRecord = plans[stack]
    compute = plan.get(COMPUTE, f"mlplat-{stack}-compute")
    assert parent_type(compute) == "mlplat:platform:MlPlatform"
    children = Counter(r.type for r in plan.children(compute.urn))
    pools, teams = len(plan.config["gpuPools"]), len(plan.config["teams"])
    assert children == {
        "mlplat:cluster:GpuCluster": 1,
        "mlplat:nodepool:GpuNodePool": pools,
        "mlplat:cluster_services:ClusterServices": 1,
        "mlplat:team:TeamNamespace": teams,
    }


def test_prod_runs_a_spot_training_pool_beside_on_demand_pools(prod: PlanRecord) -> None:
    assert {name: g["capacityType"] for name, g in _pools(prod).items()} == {
        "train-spot": "SPOT",
        "train-ondemand": "ON_DEMAND",
        "batch-infer": "ON_DEMAND",
    }


def test_staging_runs_a_spot_training_pool_and_an_on_demand_eval_pool(staging: PlanRecord) -> None:
    pools = _pools(staging)
    assert {name: g["capacityType"] for name, g in pools.items()} == {"train-spot": "SPOT", "eval": "ON_DEMAND"}
    assert pools["train-spot"]["instanceTypes"] == ["g5.2xlarge", "g6.2xlarge"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_gpu_pool_starts_at_zero_and_is_tainted(plans: Any, stack: str) -> None:
    for pool in _pools(plans[stack]).values():
        assert pool["scalingConfig"]["minSize"] == pool["scalingConfig"]["desiredSize"] == 0
        assert pool["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
        assert pool["amiType"] == "AL2023_x86_64_NVIDIA"


def test_prod_autoscaler_tags_promise_the_gpus_each_pool_brings(prod: PlanRecord) -> None:
    key = "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"
    assert {name: g["tags"][key] for name, g in _pools(prod).items()} == {
        "train-spot": "4",
        "train-ondemand": "8",
        "batch-infer": "1",
    }


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_cluster_is_private_encrypted_and_fully_logged_in_the_private_subnets(plans: Any, stack: str) -> None:
    plan: PlanRecord = plans[stack]
    [cluster] = plan.of_type(CLUSTER)
    subnets = plan.outputs["privateSubnetIds"]
    assert cluster.inputs["vpcConfig"] == {
        "subnetIds": subnets,
        "endpointPrivateAccess": True,
        "endpointPublicAccess": False,
    }
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert len(cluster.inputs["enabledClusterLogTypes"]) == 5
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"


def test_only_prod_protects_its_cluster_from_deletion(staging: PlanRecord, prod: PlanRecord) -> None:
    assert [c.inputs["deletionProtection"] for c in staging.of_type(CLUSTER)] == [False]
    assert [c.inputs["deletionProtection"] for c in prod.of_type(CLUSTER)] == [True]


def test_the_admin_role_of_the_stack_gets_the_access_entry(prod: PlanRecord) -> None:
    [entry] = prod.of_type("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["principalArn"] == "arn:aws:iam::444455556666:role/mlplat-prod-admin"


def test_compute_resources_carry_the_stack_and_component_tags(prod: PlanRecord) -> None:
    [cluster] = prod.of_type(CLUSTER)
    assert cluster.inputs["tags"] == {
        "mlplat:environment": "prod",
        "mlplat:team": "ml-platform",
        "mlplat:cost-center": "cc-4900",
        "mlplat:component": "compute",
    }


def test_gpu_instances_and_volumes_inherit_the_cost_tags_through_the_launch_template(prod: PlanRecord) -> None:
    template = prod.get("aws:ec2/launchTemplate:LaunchTemplate", "mlplat-prod-compute-pool-train-spot-lt")
    for spec in template.inputs["tagSpecifications"]:
        assert spec["tags"]["mlplat:cost-center"] == "cc-4900"
        assert spec["tags"]["mlplat:component"] == "compute"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_each_team_has_a_namespace_with_its_configured_gpu_quota(plans: Any, stack: str) -> None:
    plan: PlanRecord = plans[stack]
    quotas = {
        r.inputs["metadata"]["namespace"]: r.inputs["spec"]["hard"]["requests.nvidia.com/gpu"]
        for r in plan.of_type("kubernetes:core/v1:ResourceQuota")
    }
    assert quotas == {t["name"]: str(t["gpuQuota"]) for t in plan.config["teams"]}
    assert sorted(r.inputs["metadata"]["name"] for r in plan.of_type(NAMESPACE)) == sorted(quotas)


def test_the_stack_exports_the_cluster_and_its_team_namespaces(prod: PlanRecord) -> None:
    outputs = prod.outputs
    assert outputs["clusterName"] == "mlplat-prod-compute-cluster"
    assert outputs["clusterEndpoint"].startswith("https://")
    assert outputs["oidcProviderArn"].startswith("arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.")
    assert outputs["teamNamespaces"] == ["research", "applied"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_kubernetes_object_in_the_plan_is_valid_for_the_clusters_version(plans: Any, stack: str) -> None:
    plan: PlanRecord = plans[stack]
    report = k8s_validate.validate_plan(plan, plan.config["cluster"]["version"])
    assert report.schema_version == "1.33"
    assert [str(p) for p in report.problems] == []
    # Eight objects per team namespace, plus a CronJob and its ServiceAccount per endpoint where drift runs on k8s.
    drift_on_cluster = plan.config["monitoring"]["runner"] == "kubernetes"
    assert len(report.validated) == 8 * len(plan.config["teams"]) + (
        2 * len(plan.config["endpoints"]) if drift_on_cluster else 0
    )
    assert len(report.helm_releases) == 3


def test_a_teams_role_trusts_only_its_service_account_through_the_clusters_issuer(prod: PlanRecord) -> None:
    role, _ = _team_role(prod, "research")
    host = prod.outputs["oidcProviderArn"].split(":oidc-provider/", 1)[1]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": prod.outputs["oidcProviderArn"]},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{host}:sub": "system:serviceaccount:research:workload",
                    f"{host}:aud": "sts.amazonaws.com",
                }
            },
        }
    ]


def test_a_teams_role_reads_datasets_writes_checkpoints_and_mlflow_and_nothing_more(prod: PlanRecord) -> None:
    _, policy = _team_role(prod, "applied")
    bucket, key, tracking = (prod.outputs[k] for k in ("bucketArn", "kmsKeyArn", "trackingServerArn"))
    granted = {(a, r) for s in statements(policy) for a in as_list(s["Action"]) for r in as_list(s["Resource"])}
    read = {"s3:GetObject", "s3:GetObjectVersion"}
    write = {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
    expected = {(a, f"{bucket}/{p}*") for a in read for p in ("datasets/", "checkpoints/", "mlflow/")}
    expected |= {(a, f"{bucket}/{p}*") for a in write for p in ("checkpoints/", "mlflow/")}
    expected |= {("s3:ListBucket", bucket)}
    expected |= {(a, key) for a in ("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")}
    expected |= {(f"sagemaker-mlflow:{op}", tracking) for op in MLFLOW_CLIENT_OPERATIONS}
    expected |= {("sagemaker:CreatePresignedMlflowTrackingServerUrl", tracking), ("sagemaker-mlflow:AccessUI", "*")}
    assert granted == expected


def test_a_teams_role_may_list_only_its_prefixes(prod: PlanRecord) -> None:
    _, policy = _team_role(prod, "research")
    prefixes = {
        p
        for s in statements(policy)
        if "s3:ListBucket" in as_list(s["Action"])
        for p in s["Condition"]["StringLike"]["s3:prefix"]
    }
    assert prefixes == {"datasets/", "datasets/*", "checkpoints/", "checkpoints/*", "mlflow/", "mlflow/*"}


def test_the_service_account_names_the_teams_role(prod: PlanRecord) -> None:
    account = prod.get("kubernetes:core/v1:ServiceAccount", "mlplat-prod-compute-team-research-serviceaccount-workload")
    role_arn = account.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn.startswith("arn:aws:iam::123456789012:role/mlplat-prod-compute-team-research-role")
