"""Whole-gang restarts on recorded pod histories: disruptions cost no retry, bad input fails at once, crashes count."""

import json
from pathlib import Path
from typing import Any

from kube_server import Cluster, kubeconfig, serve

from mlplat.jobs import restarts
from mlplat.jobs.follow import follow_job
from mlplat.jobs.kube import Kube

FIXTURES = Path(__file__).parent / "fixtures"


def history(name: str) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = json.loads((FIXTURES / f"history_{name}.json").read_text())
    return frames


def test_a_spot_reclaim_of_one_rank_restarts_the_whole_gang_without_using_the_retry_budget() -> None:
    frame = history("spot_reclaim")[1]

    step = restarts.plan(frame["job"], frame["pods"], restarts.Budget(max_retries=2))

    assert step == restarts.Step(
        restarts.RESTART,
        "rank 1 was disrupted (DeletionByTaintManager)",
        counted=False,
        evict=("abalone-run-1-0-a1b2c",),
        lost=("abalone-run-1-1-d3e4f",),
    )


def test_the_evicted_survivors_do_not_trigger_a_second_restart() -> None:
    frames = history("spot_reclaim")
    budget = restarts.Budget(max_retries=2, seen={"abalone-run-1-1-d3e4f", "abalone-run-1-0-a1b2c"})

    assert restarts.plan(frames[2]["job"], frames[2]["pods"], budget).action == restarts.NOTHING


def test_a_bad_input_exit_is_left_to_the_jobs_failjob_rule() -> None:
    frame = history("bad_input")[1]

    assert restarts.plan(frame["job"], frame["pods"], restarts.Budget(max_retries=2)).action == restarts.NOTHING


def test_a_crashed_rank_restarts_the_gang_and_counts_against_the_budget() -> None:
    frame = history("rank_crash")[1]

    step = restarts.plan(frame["job"], frame["pods"], restarts.Budget(max_retries=2))

    assert (step.action, step.counted, step.evict, step.reason) == (
        restarts.RESTART,
        True,
        ("abalone-run-1-0-a1b2c",),
        "rank 1 failed (exit 1)",
    )


def test_a_crash_with_the_budget_spent_gives_up() -> None:
    frame = history("rank_crash")[1]

    step = restarts.plan(frame["job"], frame["pods"], restarts.Budget(max_retries=1, counted=1))

    assert (step.action, step.reason) == (restarts.GIVE_UP, "rank 1 failed (exit 1); the retry budget of 1 is spent")


def test_the_final_attempt_goes_on_demand_when_asked() -> None:
    frame = history("rank_crash")[1]
    budget = restarts.Budget(max_retries=2, counted=1, last_attempt_on_demand=True, manifest=frame["job"])

    step = restarts.plan(frame["job"], frame["pods"], budget)

    assert step.action == restarts.RESTART_ON_DEMAND


def test_the_on_demand_attempt_selects_on_demand_capacity_and_has_no_retry_left() -> None:
    job = history("rank_crash")[0]["job"]
    job["spec"]["template"] = {"spec": {"nodeSelector": {"mlplat.io/pool": "train-spot"}}}

    replaced = restarts.on_demand_manifest(job, attempt=3, disruptions=1)

    assert replaced["spec"]["template"]["spec"]["nodeSelector"] == {
        "mlplat.io/pool": "train-spot",
        "karpenter.sh/capacity-type": "on-demand",
    }
    assert replaced["spec"]["backoffLimit"] == 0
    assert replaced["metadata"]["annotations"]["mlplat.io/attempt"] == "3"


def test_following_a_reclaimed_gang_evicts_the_survivor_and_ends_succeeded(tmp_path: Path) -> None:
    cluster = Cluster(frames=history("spot_reclaim"))
    lines: list[str] = []
    with serve(cluster) as url:
        kube = Kube.from_kubeconfig(kubeconfig(tmp_path / "config", url))
        budget = restarts.Budget(max_retries=2)
        result = follow_job(
            kube, "research", "abalone-run-1", schedule_timeout=900, poll_interval=0, timeout=60, budget=budget,
            on_line=lines.append,
        )  # fmt: skip

    assert (result.status, result.attempts, result.disruptions, budget.counted) == ("succeeded", 2, 1, 0)
    assert [path for _, path, _ in cluster.calls("POST", "/eviction")] == [
        "/api/v1/namespaces/research/pods/abalone-run-1-0-a1b2c/eviction"
    ]
    patch = cluster.calls("PATCH", "/jobs/abalone-run-1")[0][2]
    assert patch == {"metadata": {"annotations": {"mlplat.io/attempt": "2", "mlplat.io/disruptions": "1"}}}
    assert "restarting the whole gang: rank 1 was disrupted (DeletionByTaintManager) (costs no retry)" in lines
    assert lines[-1] == "finished: succeeded"


def test_following_with_last_attempt_on_demand_recreates_the_job_on_on_demand_capacity(tmp_path: Path) -> None:
    crash = history("rank_crash")
    done = history("spot_reclaim")[-1]
    cluster = Cluster(frames=[crash[0], crash[1], {}, done])
    with serve(cluster) as url:
        kube = Kube.from_kubeconfig(kubeconfig(tmp_path / "config", url))
        budget = restarts.Budget(max_retries=1, last_attempt_on_demand=True, manifest=crash[0]["job"])
        result = follow_job(
            kube, "research", "abalone-run-1", schedule_timeout=900, poll_interval=0, timeout=60, budget=budget,
        )  # fmt: skip

    assert (result.status, result.attempts, budget.counted) == ("succeeded", 2, 1)
    assert [path for _, path, _ in cluster.calls("DELETE")] == ["/apis/batch/v1/namespaces/research/jobs/abalone-run-1"]
    created = cluster.calls("POST", "/jobs")[0][2]
    assert created["spec"]["template"]["spec"]["nodeSelector"]["karpenter.sh/capacity-type"] == "on-demand"
    assert (created["spec"]["backoffLimit"], created["metadata"]["annotations"]["mlplat.io/attempt"]) == (0, "2")
