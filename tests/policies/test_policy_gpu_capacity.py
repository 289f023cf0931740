"""GPU capacity policies: Karpenter NodePools cap their GPUs and fall back from spot, every team has its Kueue queues,
Jobs in team namespaces carry a queue label. Each starts from a passing fixture the platform renders and changes one
thing."""

from typing import Any

from policy_support import changed, removed, resource, run, run_stack

from components.kueue import render_cluster_queue, render_local_queue
from components.nodepool import PoolSpec, render_node_pool
from components.team import TeamSpec, render_team_namespace
from mlplat.cloud.eks_job import TrainingJobSpec, render_training_job

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NAMESPACE = "kubernetes:core/v1:Namespace"
LOCAL_QUEUE = "kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue"
CLUSTER_QUEUE = "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"
JOB = "kubernetes:batch/v1:Job"
POOL = render_node_pool(PoolSpec("train-spot", ("g5.12xlarge",), 16, ("spot", "on-demand")))
CAPACITY = "spec.template.spec.requirements.1.values"
TEAM = TeamSpec(team="research", gpu_quota=8)
JOB_SPEC = TrainingJobSpec(
    name="abalone",
    namespace="research",
    image="mlplat/training:0.1.0",
    data_uri="s3://art/datasets/abalone/1/",
    checkpoint_s3_uri="s3://art/checkpoints/run/",
    tracking_uri="http://mlflow",
    registered_model_name="abalone",
)


def _team(local: bool = True, cluster_queue: bool = True, job: dict[str, Any] | None = None) -> list[Any]:
    namespace = render_team_namespace(TEAM, "arn:aws:iam::123456789012:role/team")[0]
    found = [resource(NAMESPACE, "ns", namespace)]
    if local:
        found.append(resource(LOCAL_QUEUE, "lq", render_local_queue("research")))
    if cluster_queue:
        found.append(resource(CLUSTER_QUEUE, "cq", render_cluster_queue(TEAM, [PoolSpec("p", ("g5.xlarge",), 8)])))
    if job is not None:
        found.append(resource(JOB, "job", job))
    return found


def test_a_gpu_node_pool_with_a_gpu_limit_passes() -> None:
    assert run("gpu-nodepool-gpu-limit", NODE_POOL, POOL) == []


def test_a_gpu_node_pool_without_a_gpu_limit_is_reported() -> None:
    assert run("gpu-nodepool-gpu-limit", NODE_POOL, removed(POOL, "spec.limits")) == [
        "GPU NodePool has no GPU limit, so Karpenter may launch GPUs without bound; set spec.limits.nvidia.com/gpu "
        "(mlplat:gpuPools[].gpuLimit)."
    ]


def test_a_cpu_node_pool_needs_no_gpu_limit() -> None:
    props = changed(removed(POOL, "spec.limits"), "spec.template.spec.requirements.0.values", ["m6i.large"])
    props = changed(props, "spec.template.spec.taints", [])
    assert run("gpu-nodepool-gpu-limit", NODE_POOL, props) == []


def test_a_spot_pool_with_an_on_demand_fallback_passes() -> None:
    assert run("spot-nodepool-on-demand-fallback", NODE_POOL, POOL) == []


def test_a_spot_pool_without_an_on_demand_fallback_is_reported() -> None:
    assert run("spot-nodepool-on-demand-fallback", NODE_POOL, changed(POOL, CAPACITY, ["reserved", "spot"])) == [
        "NodePool takes spot capacity with no on-demand fallback, so a spot shortage stalls its jobs; add on-demand to "
        "the karpenter.sh/capacity-type requirement (mlplat:gpuPools[].capacityTypes), or record why not in the "
        "mlplat.io/spot-only-waiver annotation (mlplat:gpuPools[].spotWaiver)."
    ]


def test_a_spot_only_pool_with_a_waiver_passes() -> None:
    waiver = {"mlplat.io/spot-only-waiver": "checkpointed sweeps"}
    props = changed(changed(POOL, CAPACITY, ["spot"]), "metadata.annotations", waiver)
    assert run("spot-nodepool-on-demand-fallback", NODE_POOL, props) == []


def test_a_node_pool_over_the_gpu_cap_is_reported() -> None:
    assert run("gpu-pool-max-gpus", NODE_POOL, POOL, maxGpusPerPool=8) == [
        "NodePool may hold 16 GPUs, over the cap of 8; lower spec.limits.nvidia.com/gpu (mlplat:gpuPools[].gpuLimit) "
        "or raise maxGpusPerPool in the policy config."
    ]


def test_a_node_pool_type_outside_the_allow_list_is_reported() -> None:
    assert run("gpu-instance-types-allowed", NODE_POOL, POOL, allowedInstanceTypes=["g5.xlarge"]) == [
        "GPU instance type g5.12xlarge is not allowed in this environment (allowed: g5.xlarge); pick an allowed type "
        "or extend allowedInstanceTypes in the policy config."
    ]


def test_a_team_with_its_local_and_cluster_queue_passes() -> None:
    assert run_stack("kueue-team-cluster-queue", _team()) == []


def test_a_team_namespace_without_a_local_queue_is_reported() -> None:
    [violation] = run_stack("kueue-team-cluster-queue", _team(local=False))
    assert violation.message == (
        "team namespace research has no Kueue LocalQueue, so its jobs are never admitted; add a LocalQueue feeding "
        "the team's ClusterQueue (components.kueue)."
    )


def test_a_local_queue_feeding_an_undeclared_cluster_queue_is_reported() -> None:
    [violation] = run_stack("kueue-team-cluster-queue", _team(cluster_queue=False))
    assert violation.message == (
        "LocalQueue research/default feeds ClusterQueue research, which the stack does not declare; add a "
        "ClusterQueue per team (components.kueue)."
    )


def test_a_rendered_training_job_in_a_team_namespace_passes() -> None:
    job = render_training_job(JOB_SPEC)[1]
    assert run_stack("k8s-job-queue-label", _team(job=job)) == []


def test_a_job_in_a_team_namespace_without_a_queue_label_is_reported() -> None:
    job = render_training_job(JOB_SPEC)[1]
    del job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
    [violation] = run_stack("k8s-job-queue-label", _team(job=job))
    assert violation.message == (
        "Job research/abalone carries no kueue.x-k8s.io/queue-name label, so Kueue cannot admit it as a gang; label "
        "it with the namespace's LocalQueue and submit it suspended."
    )


def test_a_job_outside_team_namespaces_needs_no_queue_label() -> None:
    job = render_training_job(JOB_SPEC)[1]
    job["metadata"] = {"name": "drift", "namespace": "ops", "labels": {}}
    assert run_stack("k8s-job-queue-label", _team(job=job)) == []
