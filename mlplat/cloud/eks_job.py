"""A distributed training run on the GPU cluster: an indexed Job of N ranks under torchrun, and its rendezvous Service.

The Job is submitted suspended with the team's Kueue queue label, so Kueue admits the whole gang of ranks at once (or
none of it) and then unsuspends it.

`render_training_job(spec)` returns the manifests as plain dicts; `mlplat train --on eks` prints (`--dry-run`) or
creates exactly those. Each pod is one torchrun node: its completion index is its node
rank, and every rank meets at the index-0 pod, reachable by name through the headless Service
(`<job>-0.<job>-rdzv`). The container runs the bundled training image (`python -m training`) with the SageMaker path
contract, and writes only to its emptyDir volumes.

With `entry_point` and `source_uri` set (script mode), the container runs the user's script instead of the built-in
trainer, told where it is in the SageMaker spelling (`SAGEMAKER_PROGRAM`, `SAGEMAKER_SUBMIT_DIRECTORY`) with its
hyperparameters in `SM_HPS`; the runtime itself launches torchrun across the Job's pods (`MLPLAT_NNODES`,
`MLPLAT_RDZV_HOST`, the completion index), so no outer torchrun wraps it.

A run is created per `mlplat train`, not by `pulumi up`, so it is no Pulumi component: no stack declares one.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.k8s_objects import (
    GPU_TOLERATION,
    check_dns_label,
    container_security_context,
    pod_security_context,
)
from components.kueue import LOCAL_QUEUE, PRIORITY_LABEL, QUEUE_LABEL
from components.problems import Problem, refuse

JOB_LABEL = "mlplat.io/job"
WORKLOAD_LABEL = "mlplat.io/workload"
POOL_LABEL = "mlplat.io/pool"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
MODEL_DIR = "/opt/ml/model"
INPUT_DIR = "/opt/ml/input"
SCHEDULE_TIMEOUT_ANNOTATION = "mlplat.io/schedule-timeout-seconds"
BAD_INPUT_EXIT_CODE = 2  # the training runtime's exit status for bad input (training.errors.EXIT_BAD_INPUT)
CONTAINER = "train"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True)
class TrainingJobSpec:
    """One training run, as plain values."""

    name: str
    """Job name (a DNS label; pods are `<name>-<index>`)."""
    namespace: str
    """The team namespace it runs in."""
    image: str
    """The training image."""
    data_uri: str
    """Training data, e.g. `s3://<bucket>/datasets/abalone/1/`."""
    checkpoint_s3_uri: str
    """Where checkpoints are synced, e.g. `s3://<bucket>/checkpoints/<run>/`."""
    tracking_uri: str
    """`MLFLOW_TRACKING_URI`: the tracking server's ARN or URL."""
    registered_model_name: str
    """Registry name the trained model is registered under."""
    ranks: int = 1
    """torchrun nodes (`--nnodes`), one pod each."""
    gpus_per_rank: int = 1
    """GPUs per pod, and processes per node (`--nproc-per-node`)."""
    pool: str | None = None
    """GPU pool to run on (`mlplat.io/pool` node label); any GPU node when None."""
    service_account: str = "workload"
    """The team's IRSA service account."""
    cpu: str = "4"
    """CPU request per pod."""
    cpu_limit: str | None = None
    """CPU limit per pod; the request when None."""
    memory: str = "16Gi"
    """Memory request and limit per pod."""
    shm_size: str = "8Gi"
    """Size of the memory-backed `/dev/shm` (NCCL and DataLoader workers share tensors through it)."""
    max_retries: int = 2
    """Pod failures that count (`backoffLimit`); disruptions do not count and bad input fails at once."""
    schedule_timeout_seconds: int | None = None
    """How long the follower lets a rank wait to start before failing the job; recorded on the Job."""
    active_deadline_seconds: int = 24 * 3600
    """Wall-clock limit of the whole run."""
    ttl_seconds_after_finished: int = 24 * 3600
    """How long a finished Job and its pods stay for inspection."""
    rendezvous_port: int = 29500
    """Port the index-0 pod listens on for the rendezvous."""
    extra_args: Sequence[str] = ()
    """More flags for `python -m training` (hyperparameters)."""
    queue: str | None = LOCAL_QUEUE
    """The namespace's Kueue LocalQueue; None submits the Job unsuspended, for a cluster without Kueue."""
    priority_class: str | None = None
    """A Kueue WorkloadPriorityClass (`low`, `standard`, `high`); the queue's default when None."""
    env: Mapping[str, str] = field(default_factory=dict)
    """More environment variables."""
    entry_point: str | None = None
    """Script mode: the user's script in the source (`SAGEMAKER_PROGRAM`); the built-in trainer when None."""
    source_uri: str | None = None
    """Script mode: the user's `s3://.../sourcedir.tar.gz` (`SAGEMAKER_SUBMIT_DIRECTORY`)."""
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    """Script mode: the script's hyperparameters (`SM_HPS`; the runtime passes each as `--key value`)."""


def problems(spec: TrainingJobSpec) -> list[Problem]:
    """Problems with a run's spec, each naming the field."""
    found = check_dns_label("name", spec.name, 50) + check_dns_label("namespace", spec.namespace)
    if spec.ranks < 1:
        found.append(Problem("ranks", f"must be >= 1 (got {spec.ranks})"))
    if spec.gpus_per_rank < 1:
        found.append(Problem("gpusPerRank", f"must be >= 1 (got {spec.gpus_per_rank})"))
    if spec.max_retries < 0:
        found.append(Problem("maxRetries", f"must be >= 0 (got {spec.max_retries})"))
    if spec.schedule_timeout_seconds is not None and spec.schedule_timeout_seconds <= 0:
        found.append(Problem("scheduleTimeoutSeconds", f"must be > 0 (got {spec.schedule_timeout_seconds})"))
    if not spec.checkpoint_s3_uri.startswith("s3://"):
        found.append(Problem("checkpointS3Uri", f"must be an s3:// URI (got {spec.checkpoint_s3_uri!r})"))
    if (spec.entry_point is None) != (spec.source_uri is None):
        found.append(Problem("entryPoint", "and sourceUri go together (script mode)"))
    if spec.source_uri is not None and not spec.source_uri.startswith("s3://"):
        found.append(Problem("sourceUri", f"must be an s3:// URI (got {spec.source_uri!r})"))
    return found


def rendezvous_service_name(spec: TrainingJobSpec) -> str:
    """The headless Service whose DNS names the Job's pods."""
    return f"{spec.name}-rdzv"


def rendezvous_host(spec: TrainingJobSpec) -> str:
    """The index-0 pod's stable DNS name inside the namespace."""
    return f"{spec.name}-0.{rendezvous_service_name(spec)}"


def torchrun_command(spec: TrainingJobSpec) -> list[str]:
    """torchrun as one node of `ranks`, its completion index as node rank, rendezvous at the index-0 pod.

    torchrun exits 1 whatever its worker's status, so `training.gang` runs it and exits with the runtime's own status
    (2 for bad input, which the podFailurePolicy turns into an immediate failure), forwarding SIGTERM to it.
    """
    return [
        "python",
        "-m",
        "training.gang",
        "torchrun",
        f"--nnodes={spec.ranks}",
        f"--nproc-per-node={spec.gpus_per_rank}",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        f"--master-addr={rendezvous_host(spec)}",
        f"--master-port={spec.rendezvous_port}",
        "--max-restarts=0",
        "-m",
        "training",
        "--data",
        spec.data_uri,
        "--checkpoint-dir",
        CHECKPOINT_DIR,
        "--checkpoint-s3-uri",
        spec.checkpoint_s3_uri,
        "--model-dir",
        MODEL_DIR,
        "--registered-model-name",
        spec.registered_model_name,
        *spec.extra_args,
    ]


def script_command(spec: TrainingJobSpec) -> list[str]:
    """Script mode: the runtime, which fetches the source and the `train` channel and launches torchrun itself.

    It exits with the script's status (2 for bad input of its own), so no `training.gang` is needed around it.
    """
    return [
        "python",
        "-m",
        "training",
        "--data",
        f"train={spec.data_uri}",
        "--checkpoint-dir",
        CHECKPOINT_DIR,
        "--model-dir",
        MODEL_DIR,
        "--registered-model-name",
        spec.registered_model_name,
        f"--nproc-per-node={spec.gpus_per_rank}",
    ]


def script_env(spec: TrainingJobSpec) -> list[dict[str, str]]:
    """Script mode's variables: where the code is, its hyperparameters, and the gang's rendezvous."""
    if spec.entry_point is None or spec.source_uri is None:
        return []
    return [
        {"name": "SAGEMAKER_PROGRAM", "value": spec.entry_point},
        {"name": "SAGEMAKER_SUBMIT_DIRECTORY", "value": spec.source_uri},
        {"name": "SM_HPS", "value": json.dumps(dict(spec.hyperparameters), sort_keys=True)},
        {"name": "MLPLAT_NNODES", "value": str(spec.ranks)},
        {"name": "MLPLAT_RDZV_HOST", "value": rendezvous_host(spec)},
        {"name": "MLPLAT_RDZV_PORT", "value": str(spec.rendezvous_port)},
    ]


def render_training_job(spec: TrainingJobSpec) -> list[dict[str, Any]]:
    """The run's manifests: the headless rendezvous Service, then the indexed Job. Raises ValueError on a bad spec."""
    refuse(f"training job {spec.name!r}", problems(spec))
    labels = {JOB_LABEL: spec.name, WORKLOAD_LABEL: "training"}
    metadata = {"name": spec.name, "namespace": spec.namespace, "labels": labels}
    gpus = str(spec.gpus_per_rank)
    env = [
        {"name": "MLFLOW_TRACKING_URI", "value": spec.tracking_uri},
        {"name": "MLPLAT_DATA_URI", "value": spec.data_uri},
        {"name": "MLPLAT_CHECKPOINT_S3_URI", "value": spec.checkpoint_s3_uri},
        {"name": "SM_MODEL_DIR", "value": MODEL_DIR},
        # torchrun reads the node rank from here; declared so `$(JOB_COMPLETION_INDEX)` expands in the command.
        {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}},
        },
        {"name": "HOME", "value": "/tmp"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        *script_env(spec),
        *({"name": k, "value": v} for k, v in sorted(spec.env.items())),
    ]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "subdomain": rendezvous_service_name(spec),
        "serviceAccountName": spec.service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "tolerations": [GPU_TOLERATION],
        "containers": [
            {
                "name": CONTAINER,
                "image": spec.image,
                "imagePullPolicy": "IfNotPresent",
                "command": script_command(spec) if spec.entry_point else torchrun_command(spec),
                "ports": [{"name": "rendezvous", "containerPort": spec.rendezvous_port, "protocol": "TCP"}],
                "env": env,
                "resources": {
                    "requests": {"cpu": spec.cpu, "memory": spec.memory, "nvidia.com/gpu": gpus},
                    "limits": {"cpu": spec.cpu_limit or spec.cpu, "memory": spec.memory, "nvidia.com/gpu": gpus},
                },
                "securityContext": container_security_context(),
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "dshm", "mountPath": "/dev/shm"},
                    {"name": "input", "mountPath": INPUT_DIR},
                    {"name": "checkpoints", "mountPath": CHECKPOINT_DIR},
                    {"name": "model", "mountPath": MODEL_DIR},
                ],
            }
        ],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.shm_size}},
            {"name": "input", "emptyDir": {}},
            {"name": "checkpoints", "emptyDir": {}},
            {"name": "model", "emptyDir": {}},
        ],
    }
    if spec.pool is not None:
        pod_spec["nodeSelector"] = {POOL_LABEL: spec.pool}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**metadata, "name": rendezvous_service_name(spec)},
        "spec": {
            "clusterIP": "None",
            "selector": {JOB_LABEL: spec.name},
            # Ranks must resolve the index-0 pod before any pod is ready; there is no readiness here.
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": spec.rendezvous_port, "targetPort": spec.rendezvous_port}],
        },
    }
    job_labels = dict(labels)
    if spec.queue is not None:
        job_labels[QUEUE_LABEL] = spec.queue
        if spec.priority_class is not None:
            job_labels[PRIORITY_LABEL] = spec.priority_class
    annotations: dict[str, str] = {}
    if spec.schedule_timeout_seconds is not None:
        annotations[SCHEDULE_TIMEOUT_ANNOTATION] = str(spec.schedule_timeout_seconds)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {**metadata, "labels": job_labels, "annotations": annotations},
        "spec": {
            # Kueue unsuspends the Job once the whole gang fits the team's quota.
            "suspend": spec.queue is not None,
            "completionMode": "Indexed",
            "completions": spec.ranks,
            "parallelism": spec.ranks,
            "backoffLimit": spec.max_retries,
            "podFailurePolicy": pod_failure_policy(),
            "activeDeadlineSeconds": spec.active_deadline_seconds,
            "ttlSecondsAfterFinished": spec.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
    return [service, job]


def pod_failure_policy() -> dict[str, Any]:
    """Disruptions (spot reclaim, drain, preemption, eviction) cost no retry; bad input fails the Job at once.

    Anything else counts against `backoffLimit`. The whole-gang restart around it is `mlplat.jobs.restarts`.
    """
    return {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [BAD_INPUT_EXIT_CODE]},
            },
        ]
    }
