"""Following a training Job on EKS to its end: each change of state as a line, a watchdog for work that cannot start.

One poll reads the Job, its pods and its Kueue Workload and turns them into lines (`queued`, `admitted`,
`rank 1 scheduled on <node>`, `rank 1 running`, `finished: succeeded`); a line is printed when it first appears.
While any rank is not running, the watchdog's clock runs; past `schedule_timeout` the job is failed with the
diagnosis of `mlplat.jobs.diagnose` written on it (annotation `mlplat.io/failure-reason`): a started Job gets
`activeDeadlineSeconds: 1`, so the Job controller fails it and stops its pods but keeps it for inspection; a Job that
Kueue still holds suspended is deleted, which also releases its place in the queue.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlplat.jobs import diagnose as dg
from mlplat.jobs import restarts
from mlplat.jobs.kube import Kube

FAILURE_REASON_ANNOTATION = "mlplat.io/failure-reason"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@dataclass
class FollowResult:
    """How a followed job ended."""

    status: str
    """`succeeded` or `failed`."""
    reason: str = ""
    """Why it failed: the diagnosis, the Job's failure condition, or a rank's exit."""
    diagnosis: dg.Diagnosis | None = None
    """Set when the watchdog failed the job."""
    attempts: int = 1
    disruptions: int = 0
    lines: list[str] = field(default_factory=list)


def rank_of(pod: Mapping[str, Any]) -> int:
    """The pod's completion index (its torchrun node rank)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return int(annotations.get(INDEX_ANNOTATION, -1))


def rank_state(pod: Mapping[str, Any]) -> str:
    """`pending`, `scheduled on <node>`, `running`, `succeeded` or `failed (...)` for one pod."""
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    if phase == "Running":
        return "running"
    if phase == "Succeeded":
        return "succeeded"
    if phase == "Failed":
        code = restarts.exit_code(pod)
        why = "disrupted" if restarts.disrupted(pod) else f"exit {code}" if code is not None else status.get("reason")
        return f"failed ({why})"
    node = (pod.get("spec") or {}).get("nodeName")
    return f"scheduled on {node}" if node else "pending"


def job_condition(job: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """The Job's condition of a type (`Complete`, `Failed`) when it is true."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def own_workloads(workloads: Sequence[Mapping[str, Any]], job_name: str) -> list[dict[str, Any]]:
    """The Kueue Workloads owned by the Job."""
    return [
        dict(w)
        for w in workloads
        if any(
            o.get("kind") == "Job" and o.get("name") == job_name
            for o in (w.get("metadata") or {}).get("ownerReferences") or []
        )
    ]


def state_lines(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], workloads: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The lines that describe one poll, in order; the follower prints those it has not printed yet."""
    lines: list[str] = []
    spec = job.get("spec") or {}
    for workload in workloads:
        queue = (workload.get("spec") or {}).get("queueName", "")
        conditions = {c.get("type"): c for c in (workload.get("status") or {}).get("conditions") or []}
        lines.append(f"queued in Kueue queue {queue}" if queue else "queued")
        if (conditions.get("Admitted") or {}).get("status") == "True":
            lines.append(f"admitted by Kueue ({(conditions['Admitted'].get('message') or 'quota reserved')})")
    if spec.get("suspend") and not workloads:
        lines.append("queued (the Job is suspended)")
    for pod in sorted(pods, key=rank_of):
        state = rank_state(pod)
        name = (pod.get("metadata") or {}).get("name", "?")
        if state.startswith(("running", "succeeded", "failed")) and (pod.get("spec") or {}).get("nodeName"):
            lines.append(f"rank {rank_of(pod)} scheduled on {pod['spec']['nodeName']} ({name})")
        lines.append(f"rank {rank_of(pod)} {state} ({name})")
    if job_condition(job, "Complete"):
        lines.append("finished: succeeded")
    failed = job_condition(job, "Failed")
    if failed:
        lines.append(f"finished: failed ({failed.get('reason')}: {failed.get('message', '')})")
    return lines


def all_ranks_started(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> bool:
    """True when every rank has a pod that is running or done: the watchdog's clock stops."""
    ranks = int((job.get("spec") or {}).get("completions") or 1)
    started = {rank_of(p) for p in pods if rank_state(p) in ("running", "succeeded")}
    return len(started) >= ranks


def follow_job(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    schedule_timeout: float,
    poll_interval: float,
    timeout: float,
    pools: Sequence[dg.PoolOffer] = (),
    quotas: Mapping[str, int] | None = None,
    budget: restarts.Budget | None = None,
    on_line: Callable[[str], None] = lambda _line: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> FollowResult:
    """Poll the Job until it ends; restart the gang when a rank is lost; fail it when it cannot start in time."""
    printed: set[str] = set()
    result = FollowResult(status="running")
    started = clock()
    waiting_since: float | None = started
    budget = budget or restarts.Budget(max_retries=0)

    def say(line: str) -> None:
        if line not in printed:
            printed.add(line)
            result.lines.append(line)
            on_line(line)

    while True:
        job = kube.job(namespace, name)
        pods = [dg.plain(p) for p in kube.pods(namespace, name)]
        workloads = own_workloads(kube.workloads(namespace), name)
        for line in state_lines(job, pods, workloads):
            say(line)
        if job_condition(job, "Complete"):
            result.status = "succeeded"
            return result
        failed = job_condition(job, "Failed")
        if failed:
            annotations = (job.get("metadata") or {}).get("annotations") or {}
            result.status = "failed"
            result.reason = annotations.get(FAILURE_REASON_ANNOTATION) or (
                f"{failed.get('reason')}: {failed.get('message', '')}"
            )
            return result
        step = restarts.plan(job, pods, budget)
        if step.action != restarts.NOTHING:
            say(step.describe())
            restarts.carry_out(kube, namespace, job, step, budget)
            result.attempts, result.disruptions = budget.attempt, budget.disruptions
            waiting_since = clock()
            if step.action == restarts.GIVE_UP:
                result.status, result.reason = "failed", step.reason
                return result
        elif all_ranks_started(job, pods):
            waiting_since = None
        elif waiting_since is None:
            waiting_since = clock()
        now = clock()
        if waiting_since is not None and now - waiting_since >= schedule_timeout:
            events = kube.events(namespace)
            diagnosis = dg.diagnose(
                pods, _own_events(events, name, pods, workloads), pools=pools, quotas=quotas, workloads=workloads,
                namespace=namespace,
            )  # fmt: skip
            reason = f"not running after {schedule_timeout:g} s: {diagnosis}"
            fail_job(kube, namespace, job, reason)
            say(f"finished: failed ({reason})")
            result.status, result.reason, result.diagnosis = "failed", reason, diagnosis
            return result
        if now - started >= timeout:
            result.status = "timeout"
            result.reason = f"still running after {timeout:.0f} s; it keeps running: `mlplat jobs` shows it"
            return result
        sleep(poll_interval)


def fail_job(kube: Kube, namespace: str, job: Mapping[str, Any], reason: str) -> None:
    """Write the reason on the Job and end it (see the module docstring for why two ways)."""
    name = str(job["metadata"]["name"])
    if (job.get("spec") or {}).get("suspend"):
        kube.annotate_job(namespace, name, {FAILURE_REASON_ANNOTATION: reason}, {})
        kube.delete_job(namespace, name)
        return
    kube.annotate_job(namespace, name, {FAILURE_REASON_ANNOTATION: reason}, {"activeDeadlineSeconds": 1})


def _own_events(
    events: Sequence[Any], job: str, pods: Sequence[Mapping[str, Any]], workloads: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    names = {job} | {(p.get("metadata") or {}).get("name") for p in pods}
    names |= {(w.get("metadata") or {}).get("name") for w in workloads}
    plain = [dg.plain(e) for e in events]
    return [e for e in plain if (e.get("involvedObject") or {}).get("name") in names]
