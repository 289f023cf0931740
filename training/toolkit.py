"""A small helper a script run in script mode may import: channels, hyperparameters, rank, checkpoints.

    from training import toolkit
    state = toolkit.load_checkpoint()            # None on a fresh start
    ...
    toolkit.save_checkpoint({"epoch": epoch, "model": model.state_dict()})   # rank 0 only, atomic

Checkpoints live in `MLPLAT_CHECKPOINT_DIR` (default /opt/ml/checkpoints, the directory SageMaker syncs to S3), as
one file written to a temporary name and renamed, so a kill mid-write never leaves a torn checkpoint. Where nothing
syncs that directory (an Indexed Job on EKS), the runtime sets `MLPLAT_CHECKPOINT_S3_URI` and each save is uploaded
there at once, so a pod that replaces a reclaimed one finds it. Scripts that do not import this run the same.
"""

import json
import os
from pathlib import Path
from typing import Any

CHECKPOINT = "script-checkpoint.pt"


def channels() -> dict[str, Path]:
    """Every data channel by name (`SM_CHANNELS`, `SM_CHANNEL_<NAME>`)."""
    names = json.loads(os.environ.get("SM_CHANNELS", "[]"))
    return {name: Path(os.environ[f"SM_CHANNEL_{name.upper()}"]) for name in names}


def hyperparameters() -> dict[str, str]:
    """The job's hyperparameters as text (`SM_HPS`)."""
    return {str(key): str(value) for key, value in json.loads(os.environ.get("SM_HPS", "{}")).items()}


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return rank() == 0


def checkpoint_dir() -> Path:
    return Path(os.environ.get("MLPLAT_CHECKPOINT_DIR", "/opt/ml/checkpoints"))


def save_checkpoint(state: dict[str, Any], name: str = CHECKPOINT) -> Path | None:
    """Rank 0 writes `state` atomically into the checkpoint directory; other ranks do nothing (returns None)."""
    if not is_main_process():
        return None
    import torch

    directory = checkpoint_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)
    remote = os.environ.get("MLPLAT_CHECKPOINT_S3_URI")
    if remote:
        from training import storage

        storage.upload(storage.s3_client(), path, storage.S3Location.parse(remote).child(name))
    return path


def load_checkpoint(name: str = CHECKPOINT) -> dict[str, Any] | None:
    """The last saved state (on every rank), or None when the job starts fresh."""
    import torch

    path = checkpoint_dir() / name
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state if isinstance(state, dict) else None
