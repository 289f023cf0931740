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
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
CAPACITY = "karpenter.sh/capacity-type"
CLUSTER_QUEUE = "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"


def _pools(plan: PlanRecord) -> dict[str, dict[str, Any]]:
    """Karpenter NodePools by name."""
    return {p.inputs["metadata"]["name"]: p.inputs for p in plan.of_type(NODE_POOL)}


def _requirement(pool: dict[str, Any], key: str) -> list[str]:
    [values] = [r["values"] for r in pool["spec"]["template"]["spec"]["requirements"] if r["key"] == key]
    return list(values)


def _team_role(plan: PlanRecord, team: str) -> tuple[ResourceRecord, ResourceRecord]:
    role = plan.get("aws:iam/role:Role", f"mlplat-{plan.stack}-compute-team-{team}-role")
    policy = plan.get("aws:iam/rolePolicy:RolePolicy", f"mlplat-{plan.stack}-compute-team-{team}-policy")
    return role, policy


def test_dev_declares_no_cluster_and_so_no_gpu_compute(dev: PlanRecord) -> None:
    assert [r for r in dev.resources if r.type in (COMPUTE, CLUSTER) or r.type.startswith("kubernetes:")] == []
    assert "clusterName" not in dev.outputs


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_compute_component_holds_the_cluster_its_services_pools_queues_and_teams(plans: Any, stack: str) -> None:
    plan: PlanRecord = plans[stack]
    compute = plan.get(COMPUTE, f"mlplat-{stack}-compute")
    assert parent_type(compute) == "mlplat:platform:MlPlatform"
    children = Counter(r.type for r in plan.children(compute.urn))
    pools, teams = len(plan.config["gpuPools"]), len(plan.config["teams"])
    assert children == {
        "mlplat:cluster:GpuCluster": 1,
        "mlplat:nodepool:GpuNodePool": pools,
        "mlplat:cluster_services:ClusterServices": 1,
        "mlplat:kueue:TeamQueues": 1,
        "mlplat:team:TeamNamespace": teams,
    }


# Exact counts of the GPU-capacity resources in each stack with a cluster (prod: 3 pools, 2 teams; staging: 2, 2).
GPU_COUNTS = {
    "prod": {
        "aws:eks/nodeGroup:NodeGroup": 1,
        "aws:eks/addon:Addon": 4,
        "aws:eks/accessEntry:AccessEntry": 2,
        "aws:sqs/queue:Queue": 1,
        "aws:sqs/queuePolicy:QueuePolicy": 1,
        "aws:cloudwatch/eventRule:EventRule": 4,
        "aws:cloudwatch/eventTarget:EventTarget": 4,
        "aws:ec2/tag:Tag": 4,
        "aws:iam/instanceProfile:InstanceProfile": 1,
        "aws:autoscaling/tag:Tag": 0,
        "kubernetes:helm.sh/v3:Release": 5,
        NODE_CLASS: 3,
        NODE_POOL: 3,
        "kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor": 4,
        "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue": 2,
        "kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue": 2,
        "kubernetes:kueue.x-k8s.io/v1beta2:WorkloadPriorityClass": 3,
    },
    "staging": {
        "aws:eks/nodeGroup:NodeGroup": 1,
        "aws:eks/addon:Addon": 4,
        "aws:eks/accessEntry:AccessEntry": 3,  # admin, Karpenter nodes, the budget enforcer (staging enforces)
        "aws:sqs/queue:Queue": 1,
        "aws:sqs/queuePolicy:QueuePolicy": 1,
        "aws:cloudwatch/eventRule:EventRule": 4,
        "aws:cloudwatch/eventTarget:EventTarget": 4,
        "aws:ec2/tag:Tag": 4,
        "aws:iam/instanceProfile:InstanceProfile": 1,
        "aws:autoscaling/tag:Tag": 0,
        # Staging scales an endpoint on in-flight requests: Prometheus and its metrics adapter besides the five.
        "kubernetes:helm.sh/v3:Release": 7,
        NODE_CLASS: 2,
        NODE_POOL: 2,
        "kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor": 3,
        "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue": 2,
        "kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue": 2,
        "kubernetes:kueue.x-k8s.io/v1beta2:WorkloadPriorityClass": 3,
    },
}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_plan_holds_exactly_the_gpu_capacity_resources_of_its_pools_and_teams(plans: Any, stack: str) -> None:
    counts = plans[stack].counts
    assert {t: counts.get(t, 0) for t in GPU_COUNTS[stack]} == GPU_COUNTS[stack]


def test_prod_pools_fall_back_along_their_capacity_types_and_cap_their_gpus(prod: PlanRecord) -> None:
    pools = _pools(prod)
    assert {name: _requirement(p, CAPACITY) for name, p in pools.items()} == {
        "train-spot": ["spot", "on-demand"],
        "train-ondemand": ["reserved", "on-demand"],
        "batch-infer": ["on-demand"],
    }
    assert {name: p["spec"]["limits"] for name, p in pools.items()} == {
        "train-spot": {"nvidia.com/gpu": "16"},
        "train-ondemand": {"nvidia.com/gpu": "8"},
        "batch-infer": {"nvidia.com/gpu": "4"},
    }


def test_a_pool_named_by_family_launches_only_the_familys_allowed_types(prod: PlanRecord) -> None:
    pool = _pools(prod)["batch-infer"]
    assert _requirement(pool, "karpenter.k8s.aws/instance-family") == ["g6"]
    assert _requirement(pool, "node.kubernetes.io/instance-type") == ["g6.xlarge"]


def test_staging_runs_a_spot_training_pool_with_fallback_and_a_time_sliced_eval_pool(staging: PlanRecord) -> None:
    pools = _pools(staging)
    assert _requirement(pools["train-spot"], CAPACITY) == ["spot", "on-demand"]
    assert _requirement(pools["train-spot"], "node.kubernetes.io/instance-type") == ["g5.2xlarge", "g6.2xlarge"]
    assert pools["eval"]["spec"]["template"]["metadata"]["labels"]["nvidia.com/device-plugin.config"] == "eval"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_gpu_pool_is_tainted_and_consolidates_its_idle_nodes(plans: Any, stack: str) -> None:
    for pool in _pools(plans[stack]).values():
        assert pool["spec"]["template"]["spec"]["taints"] == [
            {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
        ]
        assert pool["spec"]["disruption"]["consolidationPolicy"] in ("WhenEmpty", "WhenEmptyOrUnderutilized")


def test_the_only_managed_node_group_is_the_system_group(prod: PlanRecord) -> None:
    assert [g.inputs["labels"] for g in prod.of_type("aws:eks/nodeGroup:NodeGroup")] == [{"mlplat.io/pool": "system"}]


def test_each_team_gets_a_cluster_queue_with_its_quotas_in_one_cohort(prod: PlanRecord) -> None:
    queues = {q.inputs["metadata"]["name"]: q.inputs["spec"] for q in prod.of_type(CLUSTER_QUEUE)}
    assert sorted(queues) == ["applied", "research"]
    assert {q["cohortName"] for q in queues.values()} == {"mlplat-teams"}
    cpu, gpu = queues["research"]["resourceGroups"]
    assert cpu["flavors"][0]["resources"] == [
        {"name": "cpu", "nominalQuota": "256", "borrowingLimit": 0},
        {"name": "memory", "nominalQuota": "2Ti", "borrowingLimit": 0},
    ]
    assert {f["name"]: f["resources"][0]["nominalQuota"] for f in gpu["flavors"]} == {
        "train-spot": 16,
        "train-ondemand": 0,
        "batch-infer": 0,
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


def test_the_admin_role_and_the_karpenter_node_role_get_the_access_entries(prod: PlanRecord) -> None:
    entries = {e.inputs["type"]: e.inputs["principalArn"] for e in prod.of_type("aws:eks/accessEntry:AccessEntry")}
    assert entries["STANDARD"] == "arn:aws:iam::444455556666:role/mlplat-prod-admin"
    assert entries["EC2_LINUX"].startswith("arn:aws:iam::123456789012:role/mlplat-prod-compute-services-karpenter")


def test_compute_resources_carry_the_stack_and_component_tags(prod: PlanRecord) -> None:
    [cluster] = prod.of_type(CLUSTER)
    assert cluster.inputs["tags"] == {
        "mlplat:environment": "prod",
        "mlplat:team": "ml-platform",
        "mlplat:cost-center": "cc-4900",
        "mlplat:component": "compute",
    }


def test_gpu_instances_and_volumes_inherit_the_cost_tags_through_the_node_class(prod: PlanRecord) -> None:
    for node_class in prod.of_type(NODE_CLASS):
        assert node_class.inputs["spec"]["tags"]["mlplat:cost-center"] == "cc-4900"
        assert node_class.inputs["spec"]["tags"]["mlplat:component"] == "compute"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_each_team_has_a_namespace_whose_queue_holds_its_configured_gpu_quota(plans: Any, stack: str) -> None:
    plan: PlanRecord = plans[stack]
    quotas = {
        q.inputs["metadata"]["name"]: sum(
            f["resources"][0]["nominalQuota"] for f in q.inputs["spec"]["resourceGroups"][1]["flavors"]
        )
        for q in plan.of_type(CLUSTER_QUEUE)
    }
    assert quotas == {t["name"]: t["gpuQuota"] for t in plan.config["teams"]}
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
    assert report.schema_version == "1.35"
    assert [str(p) for p in report.problems] == []
    # Nine objects per team namespace (with its LocalQueue); per pool a node class, a node pool and a flavor; the CPU
    # flavor and three priority classes; a ClusterQueue per team; a drift CronJob and its account per endpoint on k8s;
    # a Deployment, Service, autoscaler and disruption budget per cluster-served endpoint, and a NetworkPolicy that
    # admits the metrics scrape to each one scaling on in-flight requests (these also bring Prometheus and an adapter).
    teams, pools = len(plan.config["teams"]), len(plan.config["gpuPools"])
    drift_on_cluster = plan.config["monitoring"]["runner"] == "kubernetes"
    served = [e for e in plan.config["endpoints"] if e.get("platform") == "kubernetes"]
    in_flight = [e for e in served if (e.get("autoscaling") or {}).get("metric") == "inflight"]
    # The budget enforcer's ClusterRole and binding, where it zeroes the pools (every enforcing stack but prod).
    enforcer_rbac = 2 if stack != "prod" else 0
    assert (
        len(report.validated)
        == 9 * teams
        + 3 * pools
        + 4
        + teams
        + 4 * len(served)
        + len(in_flight)
        + (2 * len(plan.config["endpoints"]) if drift_on_cluster else 0)
        + enforcer_rbac
    )
    assert len(report.helm_releases) == 5 + (2 if in_flight else 0)


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


def test_a_teams_role_reads_datasets_and_code_and_writes_checkpoints_mlflow_and_data_capture_only(
    prod: PlanRecord,
) -> None:
    _, policy = _team_role(prod, "applied")
    bucket, key, tracking = (prod.outputs[k] for k in ("bucketArn", "kmsKeyArn", "trackingServerArn"))
    granted = {(a, r) for s in statements(policy) for a in as_list(s["Action"]) for r in as_list(s["Resource"])}
    read = {"s3:GetObject", "s3:GetObjectVersion"}
    write = {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
    expected = {(a, f"{bucket}/{p}*") for a in read for p in ("datasets/", "checkpoints/", "mlflow/", "code/")}
    # data-capture/: the team's cluster-served endpoints write their captured requests there.
    expected |= {(a, f"{bucket}/{p}*") for a in write for p in ("checkpoints/", "mlflow/", "data-capture/")}
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
    assert prefixes == {
        "datasets/", "datasets/*", "checkpoints/", "checkpoints/*", "mlflow/", "mlflow/*", "code/", "code/*"
    }  # fmt: skip


def test_the_service_account_names_the_teams_role(prod: PlanRecord) -> None:
    account = prod.get("kubernetes:core/v1:ServiceAccount", "mlplat-prod-compute-team-research-serviceaccount-workload")
    role_arn = account.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn.startswith("arn:aws:iam::123456789012:role/mlplat-prod-compute-team-research-role")
