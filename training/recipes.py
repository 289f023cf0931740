"""The built-in trainer's recipes, one per task, in one registry (`RECIPES`).

A recipe is everything that differs between model types: the network, the target the loss sees, the training step,
the validation and test metrics (with their baseline), the metric early stopping minimises, the metric the promotion
gate compares, the exported format, and how a champion is scored. The entrypoint (`main.py`) only calls these, so a
new model type is a new class here and one line in `RECIPES`.

- `regression`: `MLPRegressor`, squared error on the standardised target; per epoch `val_rmse`, `val_mae`, `val_r2`;
  test RMSE/MAE/R² against predicting the training mean (`baseline_test_rmse`); gate on `test_rmse` (lower wins);
  format `mlplat-mlp/1`.
- `classification`: `MLPClassifier`, cross-entropy over the classes; per epoch `val_log_loss`, `val_accuracy`,
  `val_f1_macro`; test accuracy, macro F1, log loss and ROC AUC (one-vs-rest, macro, for several classes) against
  predicting the training split's majority class (`baseline_test_accuracy`); gate on `test_log_loss` (lower wins:
  it moves with every probability, where accuracy ties); format `mlplat-mlp-classifier/1`.
"""

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from training.data import CLASSIFICATION, REGRESSION, Encoding
from training.distributed import Runtime
from training.loop import Step, Tensors, predict, regression_metrics
from training.model import (
    FlatAdamW,
    FlatParameters,
    FusedStep,
    MLPClassifier,
    MLPRegressor,
    StandardisedView,
    autograd_step,
    classification_step,
)

REGRESSION_FORMAT = "mlplat-mlp/1"
CLASSIFIER_FORMAT = "mlplat-mlp-classifier/1"
# Probabilities are clipped away from 0 and 1 before the logarithm, as scikit-learn's log_loss does.
LOG_EPS = 1e-15


# An autograd step of `model.py`: (module, flat, optimizer, x, y, total, autocast).
_Update = Callable[[nn.Module, FlatParameters, FlatAdamW, torch.Tensor, torch.Tensor, torch.Tensor, bool], None]


def _autograd(update: _Update, module: nn.Module, flat: FlatParameters, optimizer: FlatAdamW, runtime: Runtime) -> Step:
    """The loop's step: `update` on `module`, wrapped in DDP when distributed."""
    if runtime.distributed:
        module = nn.parallel.DistributedDataParallel(
            module, device_ids=[runtime.device] if runtime.device.type == "cuda" else None
        )
    autocast = runtime.autocast

    def step(x: torch.Tensor, y: torch.Tensor, total: torch.Tensor) -> None:
        update(module, flat, optimizer, x, y, total, autocast)

    return step


class RegressionRecipe:
    """An MLP regressor; the single-process CPU step is the hand-written fused one (see `model.py`)."""

    task = REGRESSION
    format = REGRESSION_FORMAT
    epoch_metrics: ClassVar[tuple[str, ...]] = ("train_loss", "val_rmse", "val_mae", "val_r2")
    selection = "val_rmse"
    promotion_metric = "test_rmse"
    promotion_label = "test RMSE"
    higher_is_better = False

    def build(self, encoding: Encoding, hidden: tuple[int, ...], dropout: float) -> nn.Module:
        return MLPRegressor(len(encoding.encoded_features), hidden, dropout, encoding.target_mean, encoding.target_std)

    def tensors(self, x: np.ndarray, y: np.ndarray, encoding: Encoding, device: torch.device) -> Tensors:
        truth = torch.from_numpy(y).to(device)
        fit = ((truth - encoding.target_mean) / encoding.target_std).float().unsqueeze(1)
        return Tensors(x=torch.from_numpy(x).to(device), y_fit=fit, y=truth)

    def step(self, net: nn.Module, flat: FlatParameters, optimizer: FlatAdamW, runtime: Runtime) -> Step:
        assert isinstance(net, MLPRegressor)
        if not runtime.distributed and runtime.device.type == "cpu":
            return FusedStep(net, optimizer)
        return _autograd(autograd_step, StandardisedView(net), flat, optimizer, runtime)

    def validate(self, net: nn.Module, val: Tensors) -> dict[str, float]:
        scores = regression_metrics(predict(net, val.x), val.y.cpu().numpy())
        target_std = float(net.target_std)  # type: ignore[arg-type]
        return {
            "val_loss": scores["rmse"] ** 2 / target_std**2,
            "val_rmse": scores["rmse"],
            "val_mae": scores["mae"],
            "val_r2": scores["r2"],
        }

    def evaluate(self, net: nn.Module, test: Tensors, train_y: np.ndarray) -> dict[str, float]:
        truth = test.y.cpu().numpy().astype(np.float64)
        scores = regression_metrics(predict(net, test.x), truth)
        baseline = float(np.sqrt(np.mean((truth - float(train_y.mean())) ** 2)))
        return {
            "test_rmse": scores["rmse"],
            "test_mae": scores["mae"],
            "test_r2": scores["r2"],
            "baseline_test_rmse": baseline,
            "rmse_ratio_to_mean": scores["rmse"] / baseline if baseline > 0 else float("nan"),
        }

    def summary(self, final: dict[str, float]) -> str:
        return (
            f"test RMSE {final['test_rmse']:.4f} (predicting the training mean: {final['baseline_test_rmse']:.4f}; "
            f"ratio {final['rmse_ratio_to_mean']:.3f}), MAE {final['test_mae']:.4f}, R² {final['test_r2']:.4f}"
        )

    def outputs(self, net: nn.Module, x: torch.Tensor, encoding: Encoding) -> pd.Series:
        """What the logged model returns for rows `x` (the signature's output example)."""
        return pd.Series(predict(net, x).astype(np.float64), name=encoding.target)

    def profiled(self, net: nn.Module, x: torch.Tensor) -> np.ndarray:
        """The values the reference profile describes as `prediction`: predictions in target units."""
        return predict(net, x)

    def metadata(self, encoding: Encoding) -> dict[str, Any]:
        return {**_preprocessing(encoding, self.format), "output": "target_units"}

    def score(self, model: Any, frame: pd.DataFrame, truth: np.ndarray, encoding: Encoding) -> float:
        """A loaded pyfunc model's test RMSE on `frame`."""
        prediction = np.asarray(model.predict(frame), dtype=np.float64).reshape(-1)
        return float(np.sqrt(np.mean((prediction - truth.astype(np.float64)) ** 2)))


class ClassificationRecipe:
    """An MLP classifier over the classes as the data spells them; autograd cross-entropy steps (DDP-ready)."""

    task = CLASSIFICATION
    format = CLASSIFIER_FORMAT
    epoch_metrics: ClassVar[tuple[str, ...]] = ("train_loss", "val_log_loss", "val_accuracy", "val_f1_macro")
    selection = "val_log_loss"
    promotion_metric = "test_log_loss"
    promotion_label = "test log loss"
    higher_is_better = False

    def build(self, encoding: Encoding, hidden: tuple[int, ...], dropout: float) -> nn.Module:
        return MLPClassifier(len(encoding.encoded_features), hidden, dropout, len(encoding.classes))

    def tensors(self, x: np.ndarray, y: np.ndarray, encoding: Encoding, device: torch.device) -> Tensors:
        labels = torch.from_numpy(y).to(device)
        return Tensors(x=torch.from_numpy(x).to(device), y_fit=labels, y=labels)

    def step(self, net: nn.Module, flat: FlatParameters, optimizer: FlatAdamW, runtime: Runtime) -> Step:
        return _autograd(classification_step, net, flat, optimizer, runtime)

    def validate(self, net: nn.Module, val: Tensors) -> dict[str, float]:
        scores = classification_metrics(probabilities(net, val.x), val.y.cpu().numpy())
        return {
            "val_loss": scores["log_loss"],
            "val_log_loss": scores["log_loss"],
            "val_accuracy": scores["accuracy"],
            "val_f1_macro": scores["f1_macro"],
        }

    def evaluate(self, net: nn.Module, test: Tensors, train_y: np.ndarray) -> dict[str, float]:
        truth = test.y.cpu().numpy()
        scores = classification_metrics(probabilities(net, test.x), truth)
        majority = int(np.bincount(train_y).argmax())
        return {
            "test_accuracy": scores["accuracy"],
            "test_f1_macro": scores["f1_macro"],
            "test_log_loss": scores["log_loss"],
            "test_roc_auc": scores["roc_auc"],
            "baseline_test_accuracy": float(np.mean(truth == majority)),
        }

    def summary(self, final: dict[str, float]) -> str:
        return (
            f"test accuracy {final['test_accuracy']:.4f} (majority class: {final['baseline_test_accuracy']:.4f}), "
            f"macro F1 {final['test_f1_macro']:.4f}, log loss {final['test_log_loss']:.4f}, "
            f"ROC AUC {final['test_roc_auc']:.4f}"
        )

    def outputs(self, net: nn.Module, x: torch.Tensor, encoding: Encoding) -> pd.Series:
        indices = probabilities(net, x).argmax(axis=1)
        return pd.Series([encoding.classes[int(index)] for index in indices], name=encoding.target)

    def profiled(self, net: nn.Module, x: torch.Tensor) -> np.ndarray:
        """The predicted class index per row (the reference profile's `prediction`)."""
        return probabilities(net, x).argmax(axis=1).astype(np.float64)

    def metadata(self, encoding: Encoding) -> dict[str, Any]:
        return {
            **_preprocessing(encoding, self.format),
            "task": CLASSIFICATION,
            "classes": list(encoding.classes),
            "output": "logits",
        }

    def score(self, model: Any, frame: pd.DataFrame, truth: np.ndarray, encoding: Encoding) -> float:
        """A loaded pyfunc classifier's test log loss on `frame` (its probabilities, matched by class label)."""
        answer = model.predict(frame, params={"output": "probabilities"})
        table = pd.DataFrame(answer)
        columns = [str(label) for label in encoding.classes]
        if sorted(map(str, table.columns)) != sorted(columns):
            raise ValueError(f"the champion's classes ({', '.join(map(str, table.columns))}) differ")
        table.columns = [str(column) for column in table.columns]
        return classification_metrics(table[columns].to_numpy(dtype=np.float64), truth)["log_loss"]


def _preprocessing(encoding: Encoding, format_: str) -> dict[str, Any]:
    return {
        "format": format_,
        "target": encoding.target,
        "columns": list(encoding.columns),
        "numeric": list(encoding.numeric),
        "categorical": {column: list(values) for column, values in encoding.categorical.items()},
        "encoded_features": list(encoding.encoded_features),
        "mean": [float(value) for value in encoding.mean],
        "std": [float(value) for value in encoding.std],
        "target_mean": None,
        "target_std": None,
        "program": "model.pt2",
    }


def probabilities(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    logits = torch.from_numpy(predict(net, x))
    return torch.softmax(logits.double(), dim=1).numpy()


def classification_metrics(probability: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Accuracy, macro F1, log loss and ROC AUC (one-vs-rest macro over the classes present) from probabilities."""
    n_classes = probability.shape[1]
    predicted = probability.argmax(axis=1)
    f1 = []
    for label in range(n_classes):
        true_positive = float(np.sum((predicted == label) & (truth == label)))
        denominator = float(np.sum(predicted == label) + np.sum(truth == label))
        if denominator:
            f1.append(2.0 * true_positive / denominator)
    picked = np.clip(probability[np.arange(len(truth)), truth], LOG_EPS, 1.0)
    if n_classes == 2:
        auc = _roc_auc(probability[:, 1], truth == 1)
    else:
        aucs = [_roc_auc(probability[:, label], truth == label) for label in range(n_classes)]
        auc = float(np.mean([value for value in aucs if not math.isnan(value)])) if aucs else float("nan")
    return {
        "accuracy": float(np.mean(predicted == truth)),
        "f1_macro": float(np.mean(f1)) if f1 else 0.0,
        "log_loss": float(-np.mean(np.log(picked))),
        "roc_auc": auc,
    }


def _roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """The Mann-Whitney form of ROC AUC (ties count half); NaN when a side is empty."""
    n_positive, n_negative = int(positive.sum()), int((~positive).sum())
    if not n_positive or not n_negative:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


Recipe = RegressionRecipe | ClassificationRecipe
RECIPES: dict[str, Callable[[], Recipe]] = {REGRESSION: RegressionRecipe, CLASSIFICATION: ClassificationRecipe}
