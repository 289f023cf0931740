"""Why a training job's pods cannot start, and what fixes it: a pure function over the API objects of one job.

The inputs are what the Kubernetes API returns for the job: its Pods, the Events of the Job, its Pods and its Kueue
Workload, and the Workload itself. Each may be a plain dict (the API's JSON, camelCase) or a `kubernetes` client model.
The reasons are read where each component writes them:

- the kube-scheduler: a `FailedScheduling` Event on the Pod (`0/3 nodes are available: ... untolerated taint ...`);
- Karpenter: a `FailedScheduling` Event on the Pod from component `karpenter`, one clause per NodePool
  (`incompatible with nodepool "x", ... no instance type satisfied resources ...`, `did not tolerate ...`,
  `all available instance types exceed limits for nodepool "x"`);
- the ResourceQuota admission plugin: the Job controller's `FailedCreate` Event on the Job
  (`... is forbidden: exceeded quota: compute-quota, requested: ..., used: ..., limited: ...`); no Pod exists then;
- Kueue: the Workload's `QuotaReserved=False` condition and its `Pending` Event
  (`couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor x, 2 more needed`);
- the kubelet: the container's `waiting` state (`ImagePullBackOff`, `ErrImagePull`) and its `Failed` Event.

The GPU pools a job could run on come from the stack file (`mlplat:gpuPools`), so a message can name every pool and
what it offers, and the teams' quotas from `mlplat:teams`.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
POOL_LABEL = "mlplat.io/pool"

NO_POOL = "no-pool-matches"
POOL_LIMIT = "pool-limit-reached"
TEAM_QUOTA = "team-quota-exhausted"
TAINT = "taint-not-tolerated"
IMAGE_PULL = "image-pull"
UNBOUND_PVC = "unbound-pvc"
PENDING = "pending"

_IMAGE_PULL_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName")
_QUOTA = re.compile(r"exceeded quota: (?P<name>[^,]+), requested: (?P<requested>.+?), used: (?P<used>.+?), "
                    r"limited: (?P<limited>[^\s]+)")  # fmt: skip
_KUEUE_QUOTA = re.compile(r"insufficient unused quota for (?P<resource>\S+) in flavor (?P<flavor>[^,]+), (?P<more>\S+)")
# Karpenter wrote `nodepool "x"` until v1.1 and `nodepool (NodePool=x)` / `NodePool="x"` with structured errors since.
_POOL_REF = r'(?:"(?P<q>[^"]+)"|\(NodePool=(?P<kv>[^)\s]+)\)|NodePool="(?P<kq>[^"]+)")'
_POOL_LIMIT = re.compile(r"exceed limits for nodepool,? ?" + _POOL_REF)
_INCOMPATIBLE = re.compile(r'incompatible with nodepool "(?P<pool>[^"]+)"(?P<why>[^;]*)')
_SCHEDULER_TAINT = re.compile(r"untolerated taint(?:\(s\))? \{(?P<taint>[^}]+)\}")
_KARPENTER_TAINT = re.compile(r"did not tolerate (?P<taint>[^;,\s]+)")


@dataclass(frozen=True)
class PoolOffer:
    """What one GPU pool of the stack can give a pod."""

    name: str
    instance_types: tuple[str, ...]
    gpus_per_node: int
    gpu_models: tuple[str, ...]
    capacity_type: str
    max_gpus: int

    def describe(self) -> str:
        """`train-spot offers g5.2xlarge, g6.2xlarge (1 GPU per node: A10G, L4; SPOT; at most 4 GPUs)`."""
        models = ", ".join(self.gpu_models) or "unknown GPU"
        per_node = f"{self.gpus_per_node} GPU{'s' if self.gpus_per_node != 1 else ''} per node"
        return (
            f"{self.name} offers {', '.join(self.instance_types)} "
            f"({per_node}: {models}; {self.capacity_type}; at most {self.max_gpus} GPUs)"
        )


@dataclass(frozen=True)
class Diagnosis:
    """The scheduler's reason, in words, and the fix."""

    case: str
    reason: str
    fix: str

    def __str__(self) -> str:
        return f"{self.reason}. Fix: {self.fix}"


def pool_offers(cfg: Any) -> list[PoolOffer]:
    """The stack's GPU pools (`StackConfig.gpu_pools`, Karpenter NodePools) as offers."""
    from components import catalog
    from components.config import pool_instance_types

    offers = []
    for pool in cfg.gpu_pools:
        types = pool_instance_types(pool, cfg.allowed_gpu_instance_types)
        models = dict.fromkeys(catalog.GPU_INSTANCES[t].gpu_model for t in types if t in catalog.GPU_INSTANCES)
        offers.append(
            PoolOffer(
                name=pool.name,
                instance_types=tuple(types),
                gpus_per_node=max((catalog.gpus_per_node(t) for t in types), default=0),
                gpu_models=tuple(models),
                capacity_type="/".join(pool.capacity_types),
                max_gpus=pool.gpu_limit,
            )
        )
    return offers


def team_quotas(cfg: Any) -> dict[str, int]:
    """GPU quota of each team namespace (`StackConfig.teams`)."""
    return {team.name: team.gpu_quota for team in cfg.teams}


def plain(obj: Any) -> dict[str, Any]:
    """An API object as the API's JSON (camelCase keys): dicts as they are, client models serialized."""
    if isinstance(obj, Mapping):
        return dict(obj)
    from kubernetes.client import ApiClient

    serialized = ApiClient().sanitize_for_serialization(obj)
    return serialized if isinstance(serialized, dict) else {}


def diagnose(
    pods: Iterable[Any],
    events: Iterable[Any],
    *,
    pools: Sequence[PoolOffer] = (),
    quotas: Mapping[str, int] | None = None,
    workloads: Iterable[Any] = (),
    namespace: str = "",
) -> Diagnosis:
    """Why a job's pods are not running, the most specific reason first; a generic `pending` one when none is known."""
    pod_list = [plain(p) for p in pods]
    event_list = sorted((plain(e) for e in events), key=_event_time)
    workload_list = [plain(w) for w in workloads]
    namespace = namespace or next((_meta(p).get("namespace", "") for p in pod_list), "")
    quotas = quotas or {}
    for check in (
        lambda: _kueue_quota(workload_list, event_list, namespace, quotas),
        lambda: _resource_quota(event_list, namespace, quotas),
        lambda: _image_pull(pod_list, event_list),
        lambda: _unbound_claim(pod_list, event_list),
        lambda: _no_pool_matches(pod_list, event_list, pools),
        lambda: _pool_limit(event_list, pools),
        lambda: _taint(event_list),
    ):
        found = check()
        if found is not None:
            return found
    return _still_pending(pod_list, event_list)


# --- the cases, each from the objects where its component writes it ------------------------------------------------


def _kueue_quota(
    workloads: list[dict[str, Any]], events: list[dict[str, Any]], namespace: str, quotas: Mapping[str, int]
) -> Diagnosis | None:
    messages = [
        (str(c.get("message", "")), str(w.get("spec", {}).get("queueName", "")))
        for w in workloads
        for c in w.get("status", {}).get("conditions") or []
        if c.get("type") == "QuotaReserved" and c.get("status") == "False"
    ]
    messages += [
        (str(e.get("message", "")), "")
        for e in events
        if e.get("involvedObject", {}).get("kind") == "Workload" and e.get("reason") == "Pending"
    ]
    for message, queue in messages:
        match = _KUEUE_QUOTA.search(message)
        if match is None:
            continue
        queue_text = f" (Kueue queue {queue})" if queue else ""
        limit = f"; its quota is {quotas[namespace]} GPUs" if namespace in quotas else ""
        return Diagnosis(
            TEAM_QUOTA,
            f"team {namespace}'s quota is exhausted{queue_text}: {match.group('more')} more {match.group('resource')} "
            f"needed in flavor {match.group('flavor')}{limit}",
            f"the job stays queued until the team's running jobs finish; ask for fewer GPUs "
            f"(--instances x --gpus-per-rank) or raise gpuQuota of team {namespace} in mlplat:teams",
        )
    return None


def _resource_quota(events: list[dict[str, Any]], namespace: str, quotas: Mapping[str, int]) -> Diagnosis | None:
    found = _latest(events, "FailedCreate", _QUOTA)
    if found is None:
        return None
    event, match = found
    team = namespace or event.get("involvedObject", {}).get("namespace", "")
    limit = f" (gpuQuota {quotas[team]})" if team in quotas else ""
    return Diagnosis(
        TEAM_QUOTA,
        f"team {team}'s quota {match.group('name')} is exhausted{limit}: requested {match.group('requested')}, "
        f"used {match.group('used')}, limited {match.group('limited')}",
        f"wait for the team's running jobs to finish, ask for fewer GPUs (--instances x --gpus-per-rank) "
        f"or raise gpuQuota of team {team} in mlplat:teams",
    )


def _latest(
    events: list[dict[str, Any]], reason: str, pattern: re.Pattern[str]
) -> tuple[dict[str, Any], re.Match[str]] | None:
    """The newest event of this reason whose message the pattern finds, with the match: the newest says most."""
    for event in reversed(events):
        if event.get("reason") == reason:
            match = pattern.search(str(event.get("message", "")))
            if match is not None:
                return event, match
    return None


def _image_pull(pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> Diagnosis | None:
    for pod in pods:
        for status in pod.get("status", {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") not in _IMAGE_PULL_REASONS:
                continue
            image = status.get("image") or _container_image(pod, status.get("name"))
            pulled = [
                str(e.get("message", ""))
                for e in events
                if _about(e, pod) and str(e.get("message", "")).startswith("Failed to pull image")
            ]
            detail = pulled[-1] if pulled else str(waiting.get("message", ""))
            return Diagnosis(
                IMAGE_PULL,
                f"{_rank(pod)} cannot pull image {image} ({waiting['reason']}: {detail})",
                "push the image to the stack's ECR repository or pass --image with a tag that exists "
                "(the node role needs ecr:BatchGetImage on it)",
            )
    return None


def _unbound_claim(pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> Diagnosis | None:
    for pod in pods:
        message = _last_scheduling_message(pod, events)
        if "PersistentVolumeClaim" not in message and "persistentvolumeclaim" not in message:
            continue
        claims = [
            str(v["persistentVolumeClaim"].get("claimName"))
            for v in pod.get("spec", {}).get("volumes") or []
            if v.get("persistentVolumeClaim")
        ]
        named = ", ".join(claims) or "(unnamed)"
        namespace = _meta(pod).get("namespace", "")
        return Diagnosis(
            UNBOUND_PVC,
            f"{_rank(pod)} waits for PersistentVolumeClaim {named}, which is not bound ({_first_sentence(message)})",
            f"create the claim in namespace {namespace} or make its StorageClass able to provision a volume "
            f"(`kubectl -n {namespace} describe pvc {claims[0] if claims else ''}`)".rstrip(),
        )
    return None


def _no_pool_matches(
    pods: list[dict[str, Any]], events: list[dict[str, Any]], pools: Sequence[PoolOffer]
) -> Diagnosis | None:
    offered = "; ".join(p.describe() for p in pools) or "the stack has no GPU pool"
    by_name = {p.name: p for p in pools}
    for pod in pods:
        gpus = _gpus_requested(pod)
        if not gpus:
            continue
        wanted = (pod.get("spec", {}).get("nodeSelector") or {}).get(POOL_LABEL)
        candidates = [by_name[wanted]] if wanted in by_name else ([] if wanted else list(pools))
        too_big = not any(p.gpus_per_node >= gpus for p in candidates)
        if not too_big and not _karpenter_found_no_instance_type(_karpenter_messages(pod, events)):
            continue
        where = f"pool {wanted}" if wanted else "any pool"
        if wanted and wanted not in by_name:
            where = f"pool {wanted}, which the stack does not have"
        largest = max((p.gpus_per_node for p in pools), default=0)
        return Diagnosis(
            NO_POOL,
            f"no GPU pool can run {_rank(pod)}: it asks for {gpus} {GPU_RESOURCE} per node on {where}; {offered}",
            f"ask for at most {largest} GPU{'s' if largest != 1 else ''} per rank (--gpus-per-rank) and more ranks "
            f"(--instances), pick another --pool, or add a pool with larger instances to mlplat:gpuPools",
        )
    return None


def _pool_limit(events: list[dict[str, Any]], pools: Sequence[PoolOffer]) -> Diagnosis | None:
    found = _latest(events, "FailedScheduling", _POOL_LIMIT)
    if found is None:
        return None
    _, match = found
    name = match.group("q") or match.group("kv") or match.group("kq")
    pool = {p.name: p for p in pools}.get(name)
    limit = f" of {pool.max_gpus} GPUs" if pool else ""
    others = [p.name for p in pools if p.name != name]
    elsewhere = f", run on another pool (--pool {others[0]})" if others else ""
    return Diagnosis(
        POOL_LIMIT,
        f"GPU pool {name} has reached its limit{limit}: every GPU it may launch is in use",
        f"wait for the jobs on {name} to finish{elsewhere}, or raise maxSize of pool {name} in mlplat:gpuPools",
    )


def _taint(events: list[dict[str, Any]]) -> Diagnosis | None:
    for event in reversed(events):
        if event.get("reason") != "FailedScheduling":
            continue
        message = str(event.get("message", ""))
        taints = [m.group("taint").strip() for m in _SCHEDULER_TAINT.finditer(message)]
        taints += [m.group("taint").strip() for m in _KARPENTER_TAINT.finditer(message)]
        if not taints:
            continue
        unique = ", ".join(dict.fromkeys(taints))
        return Diagnosis(
            TAINT,
            f"the nodes that could run the job carry taints the training pods do not tolerate: {unique}",
            f"training pods tolerate only {GPU_RESOURCE}:NoSchedule; remove the taint from the pool's nodes "
            "or run on a pool without it (--pool)",
        )
    return None


def _still_pending(pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> Diagnosis:
    for pod in pods:
        message = _last_scheduling_message(pod, events)
        if message:
            return Diagnosis(
                PENDING,
                f"{_rank(pod)} is not scheduled: {message}",
                f"`kubectl -n {_meta(pod).get('namespace', '')} describe pod {_meta(pod).get('name', '')}`",
            )
    if not pods:
        return Diagnosis(
            PENDING,
            "no pod of the job was created and no event says why",
            "`kubectl describe job` and the Kueue Workload (`kubectl get workloads`) of the job",
        )
    return Diagnosis(PENDING, "the job's pods are not running and no event says why", "`kubectl describe pod`")


# --- reading the objects --------------------------------------------------------------------------------------------


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})


def _rank(pod: Mapping[str, Any]) -> str:
    annotations = _meta(pod).get("annotations") or {}
    index = annotations.get("batch.kubernetes.io/job-completion-index")
    name = _meta(pod).get("name", "?")
    return f"rank {index} (pod {name})" if index is not None else f"pod {name}"


def _about(event: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    involved = event.get("involvedObject") or {}
    return involved.get("kind") == "Pod" and involved.get("name") == _meta(pod).get("name")


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def _last_scheduling_message(pod: Mapping[str, Any], events: list[dict[str, Any]]) -> str:
    mine = [str(e.get("message", "")) for e in events if _about(e, pod) and e.get("reason") == "FailedScheduling"]
    if mine:
        return mine[-1]
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("message", ""))
    return ""


def _karpenter_messages(pod: Mapping[str, Any], events: list[dict[str, Any]]) -> list[str]:
    return [
        str(e.get("message", ""))
        for e in events
        if _about(e, pod)
        and e.get("reason") == "FailedScheduling"
        and "karpenter" in (str((e.get("source") or {}).get("component", "")) + str(e.get("reportingComponent", "")))
    ]


def _karpenter_found_no_instance_type(messages: list[str]) -> bool:
    """True when Karpenter's latest verdict is that no NodePool has an instance type for the pod (not a limit)."""
    if not messages or "exceed limits" in messages[-1] or "did not tolerate" in messages[-1]:
        return False
    reasons = [m.group("why") for m in _INCOMPATIBLE.finditer(messages[-1])]
    return any("no instance type satisfied" in r for r in reasons) and all(
        "no instance type satisfied" in r or "incompatible requirements" in r for r in reasons
    )


def _gpus_requested(pod: Mapping[str, Any]) -> int:
    total = 0
    for container in pod.get("spec", {}).get("containers") or []:
        resources = container.get("resources") or {}
        value = (resources.get("limits") or {}).get(GPU_RESOURCE) or (resources.get("requests") or {}).get(GPU_RESOURCE)
        total += int(value) if value is not None else 0
    return total


def _container_image(pod: Mapping[str, Any], name: Any) -> str:
    for container in pod.get("spec", {}).get("containers") or []:
        if container.get("name") == name:
            return str(container.get("image", "?"))
    return "?"


def _first_sentence(message: str) -> str:
    return message.split(". preemption:")[0].rstrip(".")
