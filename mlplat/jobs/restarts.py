"""Whole-gang restarts of a torchrun Job that know about disruption: what to do when a rank is lost.

Why this shape. A Kubernetes Job has no notion of a gang: `backoffLimitPerIndex` and `successPolicy` judge each index
alone, so after a failure the Job controller recreates only the failed rank, and the others wait in a rendezvous that
will never complete. JobSet (`failurePolicy.maxRestarts`) recreates every child Job, but it is one more controller on
the cluster. mlplat keeps the plain Indexed Job and lets its `podFailurePolicy` keep the books:

- a pod with the `DisruptionTarget` condition (spot reclaim, drain, preemption, eviction) is ignored: it does not
  count against `backoffLimit`, and its index is recreated;
- exit code 2, the runtime's bad input, fails the Job at once (`FailJob`): retrying cannot help;
- any other failure counts against `backoffLimit`, which is `--max-retries`.

and the follower (`mlplat train --on eks`) makes the restart whole: when one rank is lost it evicts the survivors
through the Eviction API. Evicted pods carry `DisruptionTarget`, so the survivors' exits cost no retry, and the Job
controller recreates every index: the gang restarts together from the last checkpoint. With
`--last-attempt-on-demand`, the final attempt is a new Job on on-demand capacity (a started Job's pod template is
immutable), created under the same name once the old one is gone.

`plan` is a pure function over the Job and its pods; `carry_out` does what it decided.
"""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlplat.jobs.kube import Kube

BAD_INPUT_EXIT_CODE = 2
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
ATTEMPT_ANNOTATION = "mlplat.io/attempt"
DISRUPTIONS_ANNOTATION = "mlplat.io/disruptions"

NOTHING = "nothing"
RESTART = "restart-gang"
RESTART_ON_DEMAND = "restart-on-demand"
GIVE_UP = "give-up"


@dataclass
class Budget:
    """The retry budget of one followed job, and what has been done with it."""

    max_retries: int
    last_attempt_on_demand: bool = False
    manifest: dict[str, Any] | None = None
    """The Job as created; needed to recreate it for an on-demand final attempt."""
    attempt: int = 1
    counted: int = 0
    disruptions: int = 0
    seen: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Step:
    """What to do after one poll."""

    action: str
    reason: str = ""
    counted: bool = False
    evict: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the follower's output."""
        if self.action == RESTART:
            cost = "counts against the retry budget" if self.counted else "costs no retry"
            return f"restarting the whole gang: {self.reason} ({cost})"
        if self.action == RESTART_ON_DEMAND:
            return f"restarting the whole gang on on-demand capacity for the final attempt: {self.reason}"
        return self.reason


def exit_code(pod: Mapping[str, Any]) -> int | None:
    """The exit code of the pod's terminated container, when it has one."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or {}
        if "exitCode" in terminated:
            return int(terminated["exitCode"])
    return None


def disrupted(pod: Mapping[str, Any]) -> bool:
    """True when the pod carries the `DisruptionTarget` condition (what the Job's podFailurePolicy ignores)."""
    return any(
        c.get("type") == "DisruptionTarget" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))


def _rank(pod: Mapping[str, Any]) -> str:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get("batch.kubernetes.io/job-completion-index", "?"))


def plan(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], budget: Budget) -> Step:
    """What to do about pods that failed since the last poll; records nothing (see `carry_out`)."""
    lost = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed" and _name(p) not in budget.seen]
    if not lost:
        return NOTHING_STEP
    if any(exit_code(p) == BAD_INPUT_EXIT_CODE and not disrupted(p) for p in lost):
        return NOTHING_STEP  # the Job's FailJob rule ends it; nothing to restart
    survivors = tuple(
        _name(p)
        for p in pods
        if (p.get("status") or {}).get("phase") in ("Pending", "Running")
        and not (p.get("metadata") or {}).get("deletionTimestamp")
        and _name(p) not in budget.seen
    )
    names = tuple(_name(p) for p in lost)
    counted = any(not disrupted(p) for p in lost)
    what = "; ".join(
        f"rank {_rank(p)} was disrupted" + (f" ({_disruption_reason(p)})" if _disruption_reason(p) else "")
        if disrupted(p)
        else f"rank {_rank(p)} failed (exit {exit_code(p)})"
        for p in lost
    )
    if counted and budget.counted + 1 > budget.max_retries:
        return Step(GIVE_UP, f"{what}; the retry budget of {budget.max_retries} is spent", True, (), names)
    final = counted and budget.counted + 1 == budget.max_retries
    if final and budget.last_attempt_on_demand and budget.manifest is not None:
        return Step(RESTART_ON_DEMAND, what, True, survivors, names)
    return Step(RESTART, what, counted, survivors, names)


NOTHING_STEP = Step(NOTHING)


def _disruption_reason(pod: Mapping[str, Any]) -> str:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "DisruptionTarget":
            return str(condition.get("reason") or "")
    return ""


def on_demand_manifest(manifest: Mapping[str, Any], attempt: int, disruptions: int) -> dict[str, Any]:
    """The Job for a final attempt: on-demand capacity, no retry left, its attempt number on it."""
    import copy

    job = copy.deepcopy(dict(manifest))
    job["spec"]["backoffLimit"] = 0
    pod = job["spec"]["template"]["spec"]
    pod["nodeSelector"] = {**(pod.get("nodeSelector") or {}), CAPACITY_TYPE_LABEL: "on-demand"}
    annotations = job["metadata"].setdefault("annotations", {})
    annotations[ATTEMPT_ANNOTATION] = str(attempt)
    annotations[DISRUPTIONS_ANNOTATION] = str(disruptions)
    job["metadata"].pop("resourceVersion", None)
    return job


def carry_out(
    kube: Kube, namespace: str, job: Mapping[str, Any], step: Step, budget: Budget, wait: float = 60.0
) -> None:
    """Do what `plan` decided and record it in the budget and on the Job's annotations."""
    budget.seen.update(step.lost)
    if step.action == GIVE_UP:
        return
    if step.counted:
        budget.counted += 1
    else:
        budget.disruptions += 1
    budget.attempt += 1
    name = str(job["metadata"]["name"])
    if step.action == RESTART_ON_DEMAND and budget.manifest is not None:
        kube.delete_job(namespace, name)
        deadline = time.monotonic() + wait
        while _exists(kube, namespace, name) and time.monotonic() < deadline:
            time.sleep(1.0)
        kube.create(on_demand_manifest(budget.manifest, budget.attempt, budget.disruptions))
        budget.seen.update(step.evict)
        return
    kube.evict(namespace, step.evict)
    budget.seen.update(step.evict)
    annotations = {ATTEMPT_ANNOTATION: str(budget.attempt), DISRUPTIONS_ANNOTATION: str(budget.disruptions)}
    kube.annotate_job(namespace, name, annotations, {})


def _exists(kube: Kube, namespace: str, name: str) -> bool:
    from mlplat.jobs.kube import KubeError

    try:
        kube.job(namespace, name)
    except KubeError as exc:
        if "404" in str(exc):
            return False
        raise
    return True
