"""The EKS training launcher: the torchrun manifests of `mlplat.cloud.eks_job` for a stack.

`--on eks` renders the torchrun Job manifests of `mlplat.cloud.eks_job` for the stack (ranks, GPU
pool, team namespace, image, retry budget); `mlplat.jobs.eks` creates and follows them, and `--dry-run` prints them.
"""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from contracts import bucket as layout
from mlplat.cloud.common import TrainError, TrainingRun, resolve_image


def eks_manifests(
    run: TrainingRun,
    *,
    ranks: int,
    pool: str | None,
    team: str | None,
    gpus_per_rank: int,
    image: str | None,
    extra_args: Sequence[str] = (),
    max_retries: int = 2,
    schedule_timeout_seconds: int | None = None,
    script: tuple[str, str] | None = None,
    hyperparameters: Mapping[str, str] | None = None,
    experiment: str | None = None,
) -> list[dict[str, Any]]:
    """The torchrun Job and its rendezvous Service for this stack, from `mlplat.cloud.eks_job`.

    `script` is script mode's (entry point, `s3://` URI of the source archive); `hyperparameters` are then the
    script's, and `experiment` the MLflow experiment its run goes to.
    """
    from mlplat.cloud.eks_job import TrainingJobSpec, render_training_job

    outputs, cfg, job_name = run.outputs, run.cfg, run.job_name
    if cfg.cluster is None:
        raise TrainError(f"stack {cfg.environment!r} has no EKS cluster (mlplat:cluster); use --on sagemaker")
    pools = [p.name for p in cfg.gpu_pools]
    chosen_pool = pool or next((p.name for p in cfg.gpu_pools if "spot" in p.capacity_types), None) or pools[0]
    if chosen_pool not in pools:
        raise TrainError(f"--pool {chosen_pool!r} is not a GPU pool of stack {cfg.environment!r} ({', '.join(pools)})")
    teams = [t.name for t in cfg.teams]
    if not teams:
        raise TrainError(f"stack {cfg.environment!r} has no team namespace (mlplat:teams) to run the job in")
    namespace = team or teams[0]
    if namespace not in teams:
        raise TrainError(f"--team {namespace!r} is not a team of stack {cfg.environment!r} ({', '.join(teams)})")
    env = {"MLPLAT_JOB_NAME": job_name, "MLPLAT_ENVIRONMENT": cfg.environment}
    if experiment is not None:
        env["MLFLOW_EXPERIMENT_NAME"] = experiment
    spec = TrainingJobSpec(
        name=job_name,
        namespace=namespace,
        image=resolve_image(image or cfg.images.training, outputs),
        data_uri=layout.s3_uri(outputs.bucket_name, layout.dataset_prefix(run.dataset, run.dataset_version)),
        checkpoint_s3_uri=layout.s3_uri(outputs.bucket_name, layout.checkpoint_prefix(job_name)),
        tracking_uri=run.tracking_uri,
        registered_model_name=run.model,
        ranks=ranks,
        gpus_per_rank=gpus_per_rank,
        pool=chosen_pool,
        extra_args=tuple(extra_args),
        env=env,
        max_retries=max_retries,
        schedule_timeout_seconds=schedule_timeout_seconds,
        entry_point=script[0] if script else None,
        source_uri=script[1] if script else None,
        hyperparameters=dict(hyperparameters or {}),
    )
    try:
        return render_training_job(spec)
    except ValueError as exc:
        raise TrainError(str(exc)) from None


def default_kubeconfig() -> Path:
    """`$KUBECONFIG` (its first entry) or `~/.kube/config`."""
    env = os.environ.get("KUBECONFIG", "")
    return Path(env.split(os.pathsep)[0]) if env else Path.home() / ".kube" / "config"
