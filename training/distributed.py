"""Where this process runs: device, threads, and (under torchrun) its rank in the DDP process group."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Runtime:
    """Rank, world size and device of this process; rank 0 alone logs, checkpoints and registers."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    autocast: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_max(self, values: list[float]) -> list[float]:
        """Element-wise maximum over ranks (identity when alone)."""
        return self._all_reduce(values, dist.ReduceOp.MAX)

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (identity when alone)."""
        return self._all_reduce(values, dist.ReduceOp.SUM)

    def _all_reduce(self, values: list[float], op: Any) -> list[float]:
        if not self.distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=op)
        return [float(value) for value in tensor.tolist()]

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank."""
        if not self.distributed:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


# Below this many multiply-adds per training step, the threads of a parallel region cost more than they save, and
# on a busy machine their spin-waits make a step many times slower; one thread is then the fast choice.
PARALLEL_STEP_WORK = 1 << 24


def configure_threads(environ: Mapping[str, str], local_world_size: int, step_work: int) -> int:
    """Intra-op threads for a step of `step_work` multiply-adds, unless the user set OMP_NUM_THREADS.

    Large steps get the CPUs this process may use, shared fairly between the ranks on this machine.
    """
    if environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = 1 if step_work < PARALLEL_STEP_WORK else max(1, available // max(1, local_world_size))
    torch.set_num_threads(threads)
    return threads


def start(environ: Mapping[str, str]) -> Runtime:
    """Join the process group when torchrun started us (WORLD_SIZE > 1): nccl on GPU, gloo on CPU."""
    world_size = int(environ.get("WORLD_SIZE", "1"))
    rank = int(environ.get("RANK", "0"))
    local_rank = int(environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        autocast = torch.cuda.is_bf16_supported()
    else:
        device = torch.device("cpu")
        autocast = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    local_world_size = int(environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    return Runtime(
        rank=rank,
        world_size=world_size,
        local_rank=local_rank,
        local_world_size=local_world_size,
        device=device,
        autocast=autocast,
    )
