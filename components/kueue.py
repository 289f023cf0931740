"""Kueue's queues for the teams: a ResourceFlavor per GPU pool, a ClusterQueue per team in one shared cohort, a
LocalQueue in each team namespace, and the WorkloadPriorityClasses jobs may name.

A team's Job is submitted suspended with the `kueue.x-k8s.io/queue-name` label; Kueue admits the whole gang when the
team's ClusterQueue (plus what it may borrow from idle teams in the cohort) covers every pod, and only then unsuspends
it, so a torchrun group never holds half its GPUs while waiting for the rest. CPU and memory have one flavor and no
borrowing, matching the namespace's ResourceQuota; GPUs are split over the pool flavors and may be borrowed.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from components.k8s_objects import create_objects
from components.nodepool import GPU_RESOURCE, POOL_LABEL, PoolSpec

if TYPE_CHECKING:  # team.py renders the LocalQueue from here, so it cannot be imported at run time
    from components.team import TeamSpec

API_VERSION = "kueue.x-k8s.io/v1beta2"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
LOCAL_QUEUE = "default"
"""The LocalQueue of every team namespace (Kueue's name for a namespace's default queue)."""
COHORT = "mlplat-teams"
CPU_FLAVOR = "cpu-memory"
"""The flavor of CPU and memory: any node, since GPU pods are placed by their GPU flavor."""
PRIORITY_CLASSES = (
    ("low", 100, "Preemptible batch work and experiments; borrowed quota goes to it last."),
    ("standard", 1000, "Normal training runs (the default)."),
    ("high", 10000, "Deadline work; may preempt lower-priority workloads within the team and reclaim lent quota."),
)


def render_flavors(pools: Sequence[PoolSpec]) -> list[dict[str, Any]]:
    """One ResourceFlavor per GPU pool (pods admitted on it get the pool's node label), and the CPU flavor."""
    flavors: list[dict[str, Any]] = [
        {"apiVersion": API_VERSION, "kind": "ResourceFlavor", "metadata": {"name": CPU_FLAVOR}, "spec": {}}
    ]
    for pool in pools:
        flavors.append(
            {
                "apiVersion": API_VERSION,
                "kind": "ResourceFlavor",
                "metadata": {"name": pool.name},
                "spec": {"nodeLabels": {POOL_LABEL: pool.name}},
            }
        )
    return flavors


def gpu_quota_split(team: "TeamSpec", pools: Sequence[PoolSpec]) -> dict[str, int]:
    """The team's GPU quota spread over the pools in order, each pool taking at most its GPU limit."""
    left = team.gpu_quota
    split: dict[str, int] = {}
    for pool in pools:
        split[pool.name] = min(left, pool.gpu_limit)
        left -= split[pool.name]
    return split


def render_cluster_queue(team: "TeamSpec", pools: Sequence[PoolSpec]) -> dict[str, Any]:
    """The team's ClusterQueue: nominal quotas from its config, GPUs borrowable in the cohort, preemption inside it."""
    split = gpu_quota_split(team, pools)
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterQueue",
        "metadata": {"name": team.team},
        "spec": {
            "cohortName": COHORT,
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": team.team}},
            "queueingStrategy": "BestEffortFIFO",
            "resourceGroups": [
                {
                    "coveredResources": ["cpu", "memory"],
                    "flavors": [
                        {
                            "name": CPU_FLAVOR,
                            # The namespace's ResourceQuota caps CPU and memory too; borrowing past it would stall pods.
                            "resources": [
                                {"name": "cpu", "nominalQuota": team.cpu_quota, "borrowingLimit": 0},
                                {"name": "memory", "nominalQuota": team.memory_quota, "borrowingLimit": 0},
                            ],
                        }
                    ],
                },
                {
                    "coveredResources": [GPU_RESOURCE],
                    "flavors": [
                        {"name": pool.name, "resources": [{"name": GPU_RESOURCE, "nominalQuota": split[pool.name]}]}
                        for pool in pools
                    ],
                },
            ],
            "preemption": {
                "reclaimWithinCohort": "Any",
                "borrowWithinCohort": {"policy": "LowerPriority"},
                "withinClusterQueue": "LowerPriority",
            },
            "flavorFungibility": {"whenCanBorrow": "TryNextFlavor", "whenCanPreempt": "TryNextFlavor"},
        },
    }


def render_local_queue(team: str) -> dict[str, Any]:
    """The team namespace's LocalQueue, feeding the team's ClusterQueue."""
    return {
        "apiVersion": API_VERSION,
        "kind": "LocalQueue",
        "metadata": {"name": LOCAL_QUEUE, "namespace": team},
        "spec": {"clusterQueue": team},
    }


def render_priority_classes() -> list[dict[str, Any]]:
    """The WorkloadPriorityClasses a Job may name with `kueue.x-k8s.io/priority-class`."""
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "WorkloadPriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
        }
        for name, value, description in PRIORITY_CLASSES
    ]


def render_queues(teams: Sequence["TeamSpec"], pools: Sequence[PoolSpec]) -> list[dict[str, Any]]:
    """Every cluster-scoped Kueue object of the platform: flavors, priority classes, one ClusterQueue per team."""
    return [*render_flavors(pools), *render_priority_classes(), *(render_cluster_queue(t, pools) for t in teams)]


@dataclass(frozen=True)
class TeamQueuesArgs:
    """Inputs of the teams' queues."""

    provider: k8s.Provider
    """Kubernetes provider of the cluster."""
    teams: Sequence["TeamSpec"]
    """The teams; one ClusterQueue each."""
    pools: Sequence[PoolSpec]
    """The GPU pools; one ResourceFlavor each, in the order Kueue tries them."""


class TeamQueues(pulumi.ComponentResource):
    """The cluster-scoped Kueue objects: flavors, priority classes and the teams' ClusterQueues."""

    manifests: list[dict[str, Any]]

    def __init__(self, name: str, args: TeamQueuesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:kueue:TeamQueues", name, None, opts)
        self.manifests = render_queues(args.teams, args.pools)
        create_objects(name, self.manifests, pulumi.ResourceOptions(parent=self, provider=args.provider))
        self.register_outputs({"clusterQueues": [t.team for t in args.teams]})
