"""The epoch loop: in-memory tensors sliced by index, evaluation, early stopping, and resumable progress.

Each epoch's order is a permutation drawn from a generator seeded by (seed, epoch), so a resumed job rebuilds the
exact order of an interrupted epoch and continues at the next batch: no epoch is lost, none is repeated.
A termination request is honoured between batches: the caller's checkpoint hook runs and `Interrupted` is raised.
"""

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from training.distributed import Runtime
from training.errors import Interrupted
from training.model import FlatAdamW, FlatParameters, FusedStep

# Under DDP the ranks agree on stopping with a collective; doing that every batch would double the collectives.
STOP_SYNC_EVERY = 16
EPOCH_SEED_STRIDE = 1_000_003
# Rows per forward pass when predicting a whole split, and per gather of the epoch's order: bounded buffers, so a
# large data set costs its own size in memory and not several times that in activations or shuffled copies.
PREDICT_ROWS = 1 << 16
GATHER_ROWS = 1 << 16


@dataclass
class Progress:
    """Everything about the run's progress that a checkpoint must carry besides weights and optimiser state."""

    epochs_done: int = 0
    batches_done: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    # The recipe's selection metric (lower is better, e.g. val_rmse or val_log_loss) at the best epoch so far.
    best_score: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    best_weights: torch.Tensor | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    finished: bool = False
    stop_reason: str = ""

    def to_meta(self) -> dict[str, Any]:
        """Everything but the best weights, JSON-ready (an infinite best RMSE is written as null)."""
        return {
            "epochs_done": self.epochs_done,
            "batches_done": self.batches_done,
            "loss_sum": self.loss_sum,
            "loss_count": self.loss_count,
            "best_score": self.best_score if math.isfinite(self.best_score) else None,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "finished": self.finished,
            "stop_reason": self.stop_reason,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any], best_weights: torch.Tensor | None) -> "Progress":
        best = meta["best_score"]
        return cls(**{**meta, "best_score": math.inf if best is None else best, "best_weights": best_weights})


@dataclass(frozen=True)
class Tensors:
    """One split on the training device: standardised features, the target as the loss sees it, and the truth.

    Regression: `y_fit` is the standardised target, [rows, 1]; classification: class indices, [rows]. `y` is the
    truth in the data's units (regression) or class indices (classification).
    """

    x: torch.Tensor
    y_fit: torch.Tensor
    y: torch.Tensor


Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]


class TaskHooks(Protocol):
    """What the loop needs of a recipe (see `recipes.py`): its training step and its validation metrics."""

    selection: str

    def step(self, net: nn.Module, flat: FlatParameters, optimizer: FlatAdamW, runtime: Runtime) -> Step: ...

    def validate(self, net: nn.Module, val: Tensors) -> dict[str, float]: ...


def regression_metrics(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² in target units."""
    error = prediction.astype(np.float64) - truth.astype(np.float64)
    total = float(np.sum((truth - truth.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / total if total > 0 else 0.0,
    }


@torch.inference_mode()
def predict(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The network's output for a whole split (target units for the regressor), in chunks of PREDICT_ROWS."""
    was_training = net.training
    net.eval()
    try:
        parts = [net(x[start : start + PREDICT_ROWS]).float().cpu() for start in range(0, x.shape[0], PREDICT_ROWS)]
        return torch.cat(parts).numpy()
    finally:
        net.train(was_training)


@dataclass(frozen=True)
class LoopConfig:
    epochs: int
    batch_size: int
    patience: int
    seed: int


class Trainer:
    """Runs epochs from a `Progress` until done, early-stopped or interrupted.

    `on_epoch(metrics, epoch)` is called on rank 0 after each epoch; `on_checkpoint(progress, urgent)` after each
    epoch and, with urgent=True, before `Interrupted` is raised. `stop_signal()` returns the pending signal or 0.
    """

    def __init__(
        self,
        net: nn.Module,
        flat: FlatParameters,
        optimizer: FlatAdamW,
        runtime: Runtime,
        config: LoopConfig,
        train: Tensors,
        val: Tensors,
        stop_signal: Callable[[], int],
        hooks: TaskHooks,
    ) -> None:
        self.net = net
        self.flat = flat
        self.optimizer = optimizer
        self.runtime = runtime
        self.config = config
        self.val = val
        self.stop_signal = stop_signal
        self.hooks = hooks
        self.train = self._shard(train)
        self.local_batch = max(1, math.ceil(config.batch_size / runtime.world_size))
        self.step = hooks.step(net, flat, optimizer, runtime)

    def _shard(self, train: Tensors) -> Tensors:
        """This rank's rows: every world_size-th row, cut to a common length so all ranks run the same batches."""
        if not self.runtime.distributed:
            return train
        per_rank = train.x.shape[0] // self.runtime.world_size
        rows = torch.arange(self.runtime.rank, per_rank * self.runtime.world_size, self.runtime.world_size)
        rows = rows.to(train.x.device)
        return Tensors(x=train.x[rows].contiguous(), y_fit=train.y_fit[rows].contiguous(), y=train.y[rows])

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.train.x.shape[0] / self.local_batch)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.config.seed * EPOCH_SEED_STRIDE + epoch)
        return torch.randperm(self.train.x.shape[0], generator=generator).to(self.train.x.device)

    def run(
        self,
        progress: Progress,
        on_epoch: Callable[[dict[str, float], int], None],
        on_checkpoint: Callable[[Progress, bool], None],
    ) -> Progress:
        self.net.train()
        while not progress.finished and progress.epochs_done < self.config.epochs:
            epoch = progress.epochs_done + 1
            started = time.perf_counter()
            self.train_epoch(epoch, progress, on_checkpoint)
            metrics = self._end_epoch(progress, time.perf_counter() - started)
            if self.runtime.is_main:
                on_epoch(metrics, epoch)
            on_checkpoint(progress, False)
            signal = self._agreed_signal()
            if signal:
                on_checkpoint(progress, True)
                raise Interrupted(signal)
        if not progress.finished:
            progress.finished = True
            progress.stop_reason = progress.stop_reason or "max_epochs"
            on_checkpoint(progress, False)
        return progress

    def train_epoch(self, epoch: int, progress: Progress, on_checkpoint: Callable[[Progress, bool], None]) -> None:
        """One pass over this rank's rows in the epoch's order, from `progress.batches_done` on."""
        order = self.epoch_order(epoch)
        size = self.local_batch
        rows = self.train.x.shape[0]
        total = torch.zeros(1, 1, dtype=torch.float32, device=self.train.x.device)
        start = progress.batches_done
        n_batches = math.ceil(rows / size)
        # One gather per chunk of batches, then batches are views: no per-sample work, no per-batch copies, and a
        # shuffled copy of at most GATHER_ROWS rows (not of the whole split) at any time.
        per_gather = max(1, GATHER_ROWS // size)
        xs: tuple[torch.Tensor, ...] = ()
        ys: tuple[torch.Tensor, ...] = ()
        first = 0
        distributed = self.runtime.distributed
        step = self.step
        stop_signal = self.stop_signal
        with torch.no_grad() if isinstance(step, FusedStep) else contextlib.nullcontext():
            for batch in range(start, n_batches):
                if batch - first >= len(xs):
                    first = batch - batch % per_gather
                    chunk = order[first * size : (first + per_gather) * size]
                    xs = self.train.x[chunk].split(size)
                    ys = self.train.y_fit[chunk].split(size)
                step(xs[batch - first], ys[batch - first], total)
                if distributed:
                    due = (batch + 1) % STOP_SYNC_EVERY == 0 and batch + 1 < n_batches
                    signal = self._agreed_signal() if due else 0
                else:
                    signal = stop_signal() if batch + 1 < n_batches else 0
                if signal:
                    progress.batches_done = batch + 1
                    progress.loss_sum += float(total)
                    progress.loss_count += min((batch + 1) * size, rows) - start * size
                    on_checkpoint(progress, True)
                    raise Interrupted(signal)
        progress.loss_sum += float(total)
        progress.loss_count += rows - start * size

    def _agreed_signal(self) -> int:
        return int(self.runtime.all_max([float(self.stop_signal())])[0])

    def _end_epoch(self, progress: Progress, seconds: float) -> dict[str, float]:
        loss_sum, loss_count = self.runtime.all_sum([progress.loss_sum, float(progress.loss_count)])
        progress.epochs_done += 1
        progress.batches_done = 0
        progress.loss_sum = 0.0
        progress.loss_count = 0
        metrics = {"train_loss": loss_sum / max(loss_count, 1.0), **self.hooks.validate(self.net, self.val)}
        metrics["epoch_seconds"] = seconds
        progress.history.append({"epoch": float(progress.epochs_done), **metrics})
        score = metrics[self.hooks.selection]
        if score < progress.best_score:
            progress.best_score = score
            progress.best_epoch = progress.epochs_done
            progress.bad_epochs = 0
            progress.best_weights = self.flat.snapshot()
        else:
            progress.bad_epochs += 1
        # Every rank computed the same validation score from the same weights; still, rank 0's verdict is the one
        # all ranks follow, so they can never disagree about whether to run another epoch.
        stop = float(self.runtime.is_main and self.config.patience > 0 and progress.bad_epochs >= self.config.patience)
        if self.runtime.all_max([stop])[0]:
            progress.finished = True
            progress.stop_reason = "early_stopping"
        return metrics
