"""TeamQueues and the Kueue renderers: a flavor per pool, a ClusterQueue per team in one cohort with its quotas and
preemption inside the cohort, a LocalQueue per namespace, priority classes; all valid against the Kueue CRDs."""

import pulumi_kubernetes as k8s
import pytest
from gpu_mocks import Synthesis, synthesize

from components.kueue import (
    TeamQueues,
    TeamQueuesArgs,
    gpu_quota_split,
    render_cluster_queue,
    render_flavors,
    render_local_queue,
    render_priority_classes,
    render_queues,
)
from components.nodepool import PoolSpec
from components.team import TeamSpec
from mlplat import k8s_validate

POOLS = [PoolSpec("train-spot", ("g5.12xlarge",), 16), PoolSpec("batch-infer", ("g6.xlarge",), 4)]
RESEARCH = TeamSpec(team="research", gpu_quota=18, cpu_quota="256", memory_quota="2Ti")
APPLIED = TeamSpec(team="applied", gpu_quota=8, cpu_quota="64", memory_quota="512Gi")


def _build() -> dict[str, object]:
    provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
    TeamQueues("queues", TeamQueuesArgs(provider=provider, teams=[RESEARCH, APPLIED], pools=POOLS))
    return {}


@pytest.fixture(scope="module")
def plan() -> Synthesis:
    return synthesize(_build)


def test_each_pool_is_a_flavor_selecting_its_nodes_beside_one_cpu_flavor() -> None:
    assert [(f["metadata"]["name"], f["spec"]) for f in render_flavors(POOLS)] == [
        ("cpu-memory", {}),
        ("train-spot", {"nodeLabels": {"mlplat.io/pool": "train-spot"}}),
        ("batch-infer", {"nodeLabels": {"mlplat.io/pool": "batch-infer"}}),
    ]


def test_a_teams_gpu_quota_fills_the_pools_in_order_up_to_each_pools_limit() -> None:
    assert gpu_quota_split(RESEARCH, POOLS) == {"train-spot": 16, "batch-infer": 2}
    assert gpu_quota_split(APPLIED, POOLS) == {"train-spot": 8, "batch-infer": 0}


def test_a_cluster_queue_holds_the_teams_quotas_in_the_shared_cohort() -> None:
    spec = render_cluster_queue(RESEARCH, POOLS)["spec"]
    assert spec["cohortName"] == "mlplat-teams"
    assert spec["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "research"}}
    assert spec["resourceGroups"] == [
        {
            "coveredResources": ["cpu", "memory"],
            "flavors": [
                {
                    "name": "cpu-memory",
                    "resources": [
                        {"name": "cpu", "nominalQuota": "256", "borrowingLimit": 0},
                        {"name": "memory", "nominalQuota": "2Ti", "borrowingLimit": 0},
                    ],
                }
            ],
        },
        {
            "coveredResources": ["nvidia.com/gpu"],
            "flavors": [
                {"name": "train-spot", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 16}]},
                {"name": "batch-infer", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 2}]},
            ],
        },
    ]


def test_preemption_reclaims_lent_quota_and_stays_within_the_cohort() -> None:
    assert render_cluster_queue(RESEARCH, POOLS)["spec"]["preemption"] == {
        "reclaimWithinCohort": "Any",
        "borrowWithinCohort": {"policy": "LowerPriority"},
        "withinClusterQueue": "LowerPriority",
    }


def test_the_local_queue_of_a_namespace_feeds_the_teams_cluster_queue() -> None:
    assert render_local_queue("research") == {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "LocalQueue",
        "metadata": {"name": "default", "namespace": "research"},
        "spec": {"clusterQueue": "research"},
    }


def test_three_priority_classes_order_the_work() -> None:
    assert [(p["metadata"]["name"], p["value"]) for p in render_priority_classes()] == [
        ("low", 100),
        ("standard", 1000),
        ("high", 10000),
    ]


def test_every_kueue_object_is_valid_against_the_kueue_crds() -> None:
    objects = [*render_queues([RESEARCH, APPLIED], POOLS), render_local_queue("research")]
    report = k8s_validate.validate_manifests(objects, "1.35")
    assert [str(p) for p in report.problems] == []
    assert len(report.validated) == 3 + 3 + 2 + 1


def test_the_component_registers_exactly_the_rendered_cluster_scoped_objects(plan: Synthesis) -> None:
    children = [r for r in plan if "mlplat:kueue:TeamQueues$" in r.urn]
    assert sorted(r.name for r in children) == sorted(
        [
            "queues-resourceflavor-cpu-memory",
            "queues-resourceflavor-train-spot",
            "queues-resourceflavor-batch-infer",
            "queues-workloadpriorityclass-low",
            "queues-workloadpriorityclass-standard",
            "queues-workloadpriorityclass-high",
            "queues-clusterqueue-research",
            "queues-clusterqueue-applied",
        ]
    )
    priority = plan.named("queues-workloadpriorityclass-high").inputs
    assert (priority["value"], priority["kind"]) == (10000, "WorkloadPriorityClass")
