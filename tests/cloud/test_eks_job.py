"""The distributed training Job: the manifests `mlplat train --on eks` creates for one run."""

from dataclasses import replace
from typing import Any

import pytest

from mlplat import k8s_validate
from mlplat.cloud.eks_job import TrainingJobSpec, render_training_job

SPEC = TrainingJobSpec(
    name="abalone-ddp",
    namespace="research",
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplat/training:0.1.0",
    data_uri="s3://mlplat-prod-artifacts/datasets/abalone/1/",
    checkpoint_s3_uri="s3://mlplat-prod-artifacts/checkpoints/abalone-ddp/",
    tracking_uri="arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/mlplat-prod",
    registered_model_name="abalone",
    ranks=2,
    gpus_per_rank=4,
    pool="train-spot",
)


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render_training_job(SPEC)


@pytest.fixture(scope="module")
def job(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return manifests[1]


@pytest.fixture(scope="module")
def pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = pod["containers"][0]
    return found


def test_a_run_renders_its_rendezvous_service_then_its_job(manifests: list[dict[str, Any]]) -> None:
    assert [k8s_validate.describe(m) for m in manifests] == [
        "Service research/abalone-ddp-rdzv",
        "Job research/abalone-ddp",
    ]


def test_the_job_is_indexed_with_one_pod_per_rank_all_at_once(job: dict[str, Any]) -> None:
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 2, 2)


def test_the_job_is_submitted_suspended_to_the_namespaces_kueue_queue(job: dict[str, Any]) -> None:
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"] == {
        "mlplat.io/job": "abalone-ddp",
        "mlplat.io/workload": "training",
        "kueue.x-k8s.io/queue-name": "default",
    }


def test_a_priority_class_is_named_on_the_job_for_kueue() -> None:
    job = render_training_job(replace(SPEC, priority_class="high"))[1]
    assert job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "high"


def test_without_a_queue_the_job_runs_unsuspended_and_unlabelled() -> None:
    job = render_training_job(replace(SPEC, queue=None))[1]
    assert job["spec"]["suspend"] is False
    assert "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"]


def test_the_job_retries_twice_has_a_deadline_and_cleans_up_after_itself(job: dict[str, Any]) -> None:
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (2, 86400, 86400)


def test_disruptions_cost_no_retry_and_bad_input_fails_the_job_at_once(job: dict[str, Any]) -> None:
    assert job["spec"]["podFailurePolicy"] == {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "train", "operator": "In", "values": [2]}},
        ]
    }


def test_a_negative_retry_budget_is_refused_before_anything_is_rendered() -> None:
    with pytest.raises(ValueError, match=r"maxRetries must be >= 0 \(got -1\)"):
        render_training_job(replace(SPEC, max_retries=-1))


def test_the_rendezvous_service_is_headless_and_publishes_pods_before_they_are_ready(
    manifests: list[dict[str, Any]],
) -> None:
    assert manifests[0]["spec"] == {
        "clusterIP": "None",
        "selector": {"mlplat.io/job": "abalone-ddp"},
        "publishNotReadyAddresses": True,
        "ports": [{"name": "rendezvous", "port": 29500, "targetPort": 29500}],
    }


def test_pods_get_stable_names_under_the_rendezvous_service(pod: dict[str, Any], job: dict[str, Any]) -> None:
    assert pod["subdomain"] == "abalone-ddp-rdzv"
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "mlplat.io/job": "abalone-ddp",
        "mlplat.io/workload": "training",
    }


def test_each_pod_runs_torchrun_as_one_node_meeting_at_the_index_zero_pod(container: dict[str, Any]) -> None:
    assert container["command"] == [
        "python",
        "-m",
        "training.gang",
        "torchrun",
        "--nnodes=2",
        "--nproc-per-node=4",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        "--master-addr=abalone-ddp-0.abalone-ddp-rdzv",
        "--master-port=29500",
        "--max-restarts=0",
        "-m",
        "training",
        "--data",
        "s3://mlplat-prod-artifacts/datasets/abalone/1/",
        "--checkpoint-dir",
        "/opt/ml/checkpoints",
        "--checkpoint-s3-uri",
        "s3://mlplat-prod-artifacts/checkpoints/abalone-ddp/",
        "--model-dir",
        "/opt/ml/model",
        "--registered-model-name",
        "abalone",
    ]


def test_the_node_rank_comes_from_the_pods_completion_index(container: dict[str, Any]) -> None:
    rank = next(e for e in container["env"] if e["name"] == "JOB_COMPLETION_INDEX")
    assert rank["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
    }


def test_the_container_knows_the_tracking_data_and_checkpoint_uris(container: dict[str, Any]) -> None:
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == SPEC.tracking_uri
    assert env["MLPLAT_DATA_URI"] == SPEC.data_uri
    assert env["MLPLAT_CHECKPOINT_S3_URI"] == SPEC.checkpoint_s3_uri


def test_pods_tolerate_the_gpu_taint_and_select_the_pool(pod: dict[str, Any]) -> None:
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["nodeSelector"] == {"mlplat.io/pool": "train-spot"}


def test_each_pod_requests_and_limits_its_gpus_cpu_and_memory(container: dict[str, Any]) -> None:
    assert container["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "4"},
        "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "4"},
    }


def test_pods_run_as_a_fixed_non_root_user_under_the_default_seccomp_profile(pod: dict[str, Any]) -> None:
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_the_container_is_read_only_unprivileged_and_without_capabilities(container: dict[str, Any]) -> None:
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_the_pod_runs_as_the_teams_service_account_without_an_api_token(pod: dict[str, Any]) -> None:
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"], pod["restartPolicy"]) == (
        "workload",
        False,
        "Never",
    )


def test_scratch_space_is_an_empty_dir_and_shared_memory_is_memory_backed(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    volumes = {v["name"]: v["emptyDir"] for v in pod["volumes"]}
    assert volumes["tmp"] == {}
    assert volumes["dshm"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {
        "/tmp": "tmp",
        "/dev/shm": "dshm",
        "/opt/ml/input": "input",
        "/opt/ml/checkpoints": "checkpoints",
        "/opt/ml/model": "model",
    }


def test_pulumi_does_not_wait_for_the_run_to_finish(job: dict[str, Any]) -> None:
    assert job["metadata"]["annotations"] == {}


def test_the_rendered_manifests_are_valid_for_the_clusters_kubernetes_version(
    manifests: list[dict[str, Any]],
) -> None:
    assert k8s_validate.validate_manifests(manifests, "1.33").problems == []


def test_a_spec_with_no_ranks_is_rejected_with_the_field_named() -> None:
    bad = TrainingJobSpec(**{**SPEC.__dict__, "ranks": 0})
    with pytest.raises(ValueError) as caught:
        render_training_job(bad)
    assert str(caught.value) == "training job 'abalone-ddp': ranks must be >= 1 (got 0)"


def test_a_job_name_too_long_for_its_pod_hostnames_is_rejected() -> None:
    bad = TrainingJobSpec(**{**SPEC.__dict__, "name": "x" * 51})
    with pytest.raises(ValueError, match="name must be a DNS-1123 label of at most 50 characters"):
        render_training_job(bad)


def test_a_script_without_its_source_is_rejected() -> None:
    with pytest.raises(ValueError) as caught:
        render_training_job(replace(SPEC, entry_point="train.py"))
    assert str(caught.value) == "training job 'abalone-ddp': entryPoint and sourceUri go together (script mode)"


def test_a_script_source_outside_s3_is_rejected() -> None:
    with pytest.raises(ValueError) as caught:
        render_training_job(replace(SPEC, entry_point="train.py", source_uri="/tmp/code.tar.gz"))
    assert str(caught.value) == "training job 'abalone-ddp': sourceUri must be an s3:// URI (got '/tmp/code.tar.gz')"


def test_a_script_runs_under_the_runtime_with_no_outer_torchrun_and_the_gangs_rendezvous_in_its_env() -> None:
    script = replace(SPEC, entry_point="train.py", source_uri="s3://b/code/abc/sourcedir.tar.gz", hyperparameters={})
    container = render_training_job(script)[1]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["command"][:3] == ["python", "-m", "training"]
    assert container["command"][-1] == "--nproc-per-node=4"
    rendezvous = (env["MLPLAT_NNODES"], env["MLPLAT_RDZV_HOST"], env["SM_HPS"])
    assert rendezvous == ("2", "abalone-ddp-0.abalone-ddp-rdzv", "{}")
