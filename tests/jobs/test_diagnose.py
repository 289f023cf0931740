"""The diagnosis of a job that cannot start: each case from recorded API objects, with its exact message."""

import json
from pathlib import Path
from typing import Any

import pytest
from kube_server import Cluster, kubeconfig, serve

from components.config import load_stack
from mlplat.jobs import diagnose as dg
from mlplat.jobs.kube import Kube

FIXTURES = Path(__file__).parent / "fixtures"
STAGING = load_stack("staging")
POOLS = dg.pool_offers(STAGING)
QUOTAS = dg.team_quotas(STAGING)
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplat/training:0.9.9"

EXPECTED = {
    "no_pool_matches": (
        dg.NO_POOL,
        "no GPU pool can run rank 0 (pod abalone-run-1-0-h2x9q): it asks for 8 nvidia.com/gpu per node on pool "
        "train-spot; train-spot offers g5.2xlarge, g6.2xlarge (1 GPU per node: A10G, L4; spot/on-demand; "
        "at most 4 GPUs); eval offers g5.xlarge (1 GPU per node: A10G; on-demand; at most 2 GPUs). "
        "Fix: ask for at most 1 GPU per rank (--gpus-per-rank) and more ranks (--instances), pick another --pool, "
        "or add a pool with larger "
        "instances to mlplat:gpuPools",
    ),
    "pool_limit": (
        dg.POOL_LIMIT,
        "GPU pool train-spot has reached its limit of 4 GPUs: every GPU it may launch is in use. Fix: wait for the "
        "jobs on train-spot to finish, run on another pool (--pool eval), or raise maxSize of pool train-spot in "
        "mlplat:gpuPools",
    ),
    "team_quota_resourcequota": (
        dg.TEAM_QUOTA,
        "team research's quota compute-quota is exhausted (gpuQuota 4): requested requests.nvidia.com/gpu=2, used "
        "requests.nvidia.com/gpu=4, limited requests.nvidia.com/gpu=4. Fix: wait for the team's running jobs to "
        "finish, ask for fewer GPUs (--instances x --gpus-per-rank) or raise gpuQuota of team research in mlplat:teams",
    ),
    "team_quota_kueue": (
        dg.TEAM_QUOTA,
        "team research's quota is exhausted (Kueue queue research): 2 more nvidia.com/gpu needed in flavor "
        "train-spot; its quota is 4 GPUs. Fix: the job stays queued until the team's running jobs finish; ask for "
        "fewer GPUs (--instances x --gpus-per-rank) or raise gpuQuota of team research in mlplat:teams",
    ),
    "taint": (
        dg.TAINT,
        "the nodes that could run the job carry taints the training pods do not tolerate: "
        "dedicated=inference:NoSchedule. Fix: training pods tolerate only nvidia.com/gpu:NoSchedule; remove the "
        "taint from the pool's nodes or run on a pool without it (--pool)",
    ),
    "image_pull": (
        dg.IMAGE_PULL,
        f"rank 0 (pod abalone-run-1-0-p3k7d) cannot pull image {IMAGE} (ImagePullBackOff: Failed to pull image "
        f'"{IMAGE}": rpc error: code = NotFound desc = failed to pull and unpack image "{IMAGE}": failed to resolve '
        f'reference "{IMAGE}": {IMAGE}: not found). Fix: push the image to the stack\'s ECR repository or pass '
        "--image with a tag that exists (the node role needs ecr:BatchGetImage on it)",
    ),
    "unbound_pvc": (
        dg.UNBOUND_PVC,
        "rank 0 (pod abalone-run-1-0-v9n4s) waits for PersistentVolumeClaim abalone-data, which is not bound "
        "(0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims). Fix: create the claim in "
        "namespace research or make its StorageClass able to provision a volume "
        "(`kubectl -n research describe pvc abalone-data`)",
    ),
}


def recorded(case: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{case}.json").read_text())


def run(objects: dict[str, Any]) -> dg.Diagnosis:
    return dg.diagnose(
        objects["pods"], objects["events"], pools=POOLS, quotas=QUOTAS, workloads=objects["workloads"],
        namespace="research",
    )  # fmt: skip


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_recorded_case_is_named_with_its_reason_and_fix(case: str) -> None:
    diagnosis = run(recorded(case))

    assert (diagnosis.case, str(diagnosis)) == EXPECTED[case]


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_the_same_objects_read_through_the_kubernetes_client_give_the_same_diagnosis(case: str, tmp_path: Path) -> None:
    objects = recorded(case)
    cluster = Cluster(frames=[{"job": {"kind": "Job"}, **objects}])
    with serve(cluster) as url:
        kube = Kube.from_kubeconfig(kubeconfig(tmp_path / "config", url))
        pods = kube.pods("research", "abalone-run-1")
        events = kube.events("research")
        workloads = kube.workloads("research")
    diagnosis = dg.diagnose(pods, events, pools=POOLS, quotas=QUOTAS, workloads=workloads, namespace="research")

    assert all(type(p).__name__ == "V1Pod" for p in pods)
    assert (diagnosis.case, str(diagnosis)) == EXPECTED[case]


def test_a_gpu_count_that_fits_the_pool_is_not_called_a_mismatch() -> None:
    objects = recorded("pool_limit")

    assert run(objects).case == dg.POOL_LIMIT


def test_the_karpenter_message_with_structured_errors_names_the_pool_too() -> None:
    objects = recorded("pool_limit")
    for event in objects["events"]:
        event["message"] = event["message"].replace(
            'exceed limits for nodepool "train-spot"', "exceed limits for nodepool (NodePool=train-spot)"
        )

    assert run(objects).reason.startswith("GPU pool train-spot has reached its limit of 4 GPUs")


def test_a_pending_pod_without_a_known_cause_repeats_the_schedulers_words() -> None:
    objects = recorded("unbound_pvc")
    objects["events"][0]["message"] = "0/3 nodes are available: 3 Insufficient memory."
    objects["pods"][0]["status"]["conditions"][0]["message"] = "0/3 nodes are available: 3 Insufficient memory."

    diagnosis = run(objects)

    assert str(diagnosis) == (
        "rank 0 (pod abalone-run-1-0-v9n4s) is not scheduled: 0/3 nodes are available: 3 Insufficient memory.. "
        "Fix: `kubectl -n research describe pod abalone-run-1-0-v9n4s`"
    )


def test_a_cluster_without_kueue_lists_no_workloads(tmp_path: Path) -> None:
    cluster = Cluster(frames=[{"job": {"kind": "Job"}}], kueue=False)
    with serve(cluster) as url:
        kube = Kube.from_kubeconfig(kubeconfig(tmp_path / "config", url))

        assert kube.workloads("research") == []
