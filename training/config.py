"""The job's settings, resolved from flags, environment variables, `hyperparameters.json` and defaults.

Precedence, highest first: a command-line flag, then an environment variable, then a key of the SageMaker
hyperparameters file, then the default. SageMaker writes every hyperparameter as a string, so every source is parsed
from text by the same function and a bad value is reported with the place it came from, e.g.
`--epochs must be an integer >= 1 (got '0')` or `hyperparameter 'lr' in /opt/ml/input/config/hyperparameters.json
must be a number > 0 (got 'fast')`.
"""

import argparse
import importlib.util
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from training.errors import InputError

SM_ROOT = "/opt/ml"
DEFAULT_DATA = f"{SM_ROOT}/input/data/train"
DEFAULT_MODEL_DIR = f"{SM_ROOT}/model"
DEFAULT_OUTPUT_DATA_DIR = f"{SM_ROOT}/output/data"
DEFAULT_CHECKPOINT_DIR = f"{SM_ROOT}/checkpoints"
DEFAULT_HYPERPARAMETERS = f"{SM_ROOT}/input/config/hyperparameters.json"
JOB_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SAGEMAKER_ARN_PREFIX = "arn:aws:sagemaker:"


@dataclass(frozen=True)
class Settings:
    """Everything one training job needs to know; built once by `resolve`, never mutated."""

    data: str
    model_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path
    checkpoint_s3_uri: str | None
    hyperparameters: Path
    job_name: str
    target: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    hidden: tuple[int, ...]
    dropout: float
    seed: int
    patience: int
    val_fraction: float
    test_fraction: float
    registered_model_name: str
    promote: bool
    promotion_margin: float
    experiment_name: str
    tracking_uri: str | None
    tracking_timeout: float
    git_commit: str
    image: str
    task: str = "auto"
    start_fresh: bool = False

    def params(self) -> dict[str, str]:
        """The values logged as MLflow parameters: what decides the model, not where files go."""
        return {
            "target": self.target,
            "epochs": str(self.epochs),
            "batch_size": str(self.batch_size),
            "lr": repr(self.lr),
            "weight_decay": repr(self.weight_decay),
            "hidden": ",".join(str(width) for width in self.hidden),
            "dropout": repr(self.dropout),
            "seed": str(self.seed),
            "patience": str(self.patience),
            "val_fraction": repr(self.val_fraction),
            "test_fraction": repr(self.test_fraction),
            "promotion_margin": repr(self.promotion_margin),
            "task": self.task,
            "data": self.data,
        }


# ---- value parsers: each takes the text and returns the value or raises ValueError("must be ...") ----


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"must be an integer >= {minimum}") from None
        if value < minimum:
            raise ValueError(f"must be an integer >= {minimum}")
        return value

    return parse


def _number(low: float, high: float | None = None, low_inclusive: bool = False) -> Callable[[str], float]:
    bound = f"{'>=' if low_inclusive else '>'} {low:g}"
    requirement = f"must be a number {bound}" + (f" and < {high:g}" if high is not None else "")

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(requirement) from None
        too_low = value < low if low_inclusive else value <= low
        if not math.isfinite(value) or too_low or (high is not None and value >= high):
            raise ValueError(requirement)
        return value

    return parse


def _hidden(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
    try:
        widths = tuple(int(part) for part in parts)
    except ValueError:
        widths = ()
    if not widths or any(width < 1 for width in widths):
        raise ValueError("must be a comma-separated list of layer widths >= 1, e.g. '64,32'")
    return widths


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _name(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def _job_name(text: str) -> str:
    if not JOB_NAME_PATTERN.match(text.strip()):
        raise ValueError("must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return text.strip()


def _s3_uri(text: str) -> str | None:
    if not text.strip():
        return None
    if not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", text.strip()):
        raise ValueError("must be an s3://bucket[/prefix] URI")
    return text.strip()


def _text(text: str) -> str:
    return text


TASKS = ("auto", "regression", "classification")


def _task(text: str) -> str:
    if text.strip().lower() not in TASKS:
        raise ValueError(f"must be one of {', '.join(TASKS)}")
    return text.strip().lower()


@dataclass(frozen=True)
class _Option:
    """One setting: its flag, environment variables, whether hyperparameters.json may set it, default, parser."""

    name: str
    default: str
    parse: Callable[[str], Any]
    envs: tuple[str, ...] = ()
    in_json: bool = True
    help: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


_OPTIONS: tuple[_Option, ...] = (
    _Option("data", DEFAULT_DATA, _name, ("SM_CHANNEL_TRAIN",), False,
            "training data: a directory or file of CSV, or an s3:// URI (prefix or object)"),
    _Option("model_dir", DEFAULT_MODEL_DIR, _name, ("SM_MODEL_DIR",), False, "where the MLflow model is written"),
    _Option("output_data_dir", DEFAULT_OUTPUT_DATA_DIR, _name, ("SM_OUTPUT_DATA_DIR",), False,
            "where metrics.json, training_curves.png and the reference profile are written"),
    _Option("checkpoint_dir", DEFAULT_CHECKPOINT_DIR, _name, ("MLPLAT_CHECKPOINT_DIR",), False,
            "local checkpoint directory (SageMaker syncs /opt/ml/checkpoints itself)"),
    _Option("checkpoint_s3_uri", "", _s3_uri, ("MLPLAT_CHECKPOINT_S3_URI",), False,
            "also copy checkpoints here; a bare s3://bucket means s3://bucket/checkpoints/<job>/"),
    _Option("hyperparameters", DEFAULT_HYPERPARAMETERS, _name, ("MLPLAT_HYPERPARAMETERS",), False,
            "SageMaker hyperparameters file (JSON object of strings); optional at its default path"),
    _Option("job_name", "mlplat-training", _job_name, ("MLPLAT_JOB_NAME", "TRAINING_JOB_NAME"), False,
            "names the MLflow run and the checkpoint prefix; a restarted job must keep it"),
    _Option("target", "Rings", _name, ("MLPLAT_TARGET",), True, "the column to predict"),
    _Option("task", "auto", _task, ("MLPLAT_TASK",), True,
            "regression, classification, or auto (a text target, or an integer one with <= 10 values, is "
            "classification)"),
    _Option("epochs", "200", _integer(1), ("MLPLAT_EPOCHS",), True, "maximum epochs"),
    _Option("batch_size", "64", _integer(1), ("MLPLAT_BATCH_SIZE",), True, "global batch size (split across ranks)"),
    _Option("lr", "0.003", _number(0.0), ("MLPLAT_LR",), True, "AdamW learning rate"),
    _Option("weight_decay", "0.0001", _number(0.0, low_inclusive=True), ("MLPLAT_WEIGHT_DECAY",), True,
            "AdamW weight decay"),
    _Option("hidden", "64,32", _hidden, ("MLPLAT_HIDDEN",), True, "hidden layer widths, e.g. 64,32"),
    _Option("dropout", "0.0", _number(0.0, 1.0, low_inclusive=True), ("MLPLAT_DROPOUT",), True,
            "dropout after each hidden layer"),
    _Option("seed", "42", _integer(0), ("MLPLAT_SEED",), True, "decides the split, the initial weights, the order"),
    _Option("patience", "20", _integer(0), ("MLPLAT_PATIENCE",), True,
            "stop after this many epochs without a better validation RMSE (0: never stop early)"),
    _Option("val_fraction", "0.15", _number(0.0, 0.5), ("MLPLAT_VAL_FRACTION",), True, "validation share"),
    _Option("test_fraction", "0.15", _number(0.0, 0.5), ("MLPLAT_TEST_FRACTION",), True, "test share"),
    _Option("registered_model_name", "abalone-rings", _name, ("MLPLAT_REGISTERED_MODEL_NAME",), True,
            "the registry name the model is registered under"),
    _Option("promote", "false", _boolean, ("MLPLAT_PROMOTE",), True,
            "when the model passes the gate, move the champion alias too"),
    _Option("promotion_margin", "0.0", _number(0.0, 1.0, low_inclusive=True), ("MLPLAT_PROMOTION_MARGIN",), True,
            "the new test RMSE must be below champion RMSE * (1 - margin)"),
    _Option("experiment_name", "mlplat-training", _name, ("MLPLAT_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_NAME"), True,
            "MLflow experiment"),
    _Option("start_fresh", "false", _boolean, ("MLPLAT_START_FRESH",), True,
            "delete another job's checkpoints, result and run.json found in the checkpoint location, then start"),
    _Option("tracking_timeout", "120", _number(0.0), ("MLPLAT_TRACKING_TIMEOUT",), False,
            "seconds to keep retrying an unanswering tracking server before giving up on a blocking call"),
)  # fmt: skip

_JSON_KEYS = {option.name for option in _OPTIONS if option.in_json}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as the entrypoint's one-line bad-input error instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise InputError(message)


def build_parser() -> argparse.ArgumentParser:
    """The command line: every flag is text, parsed by the same function as its environment variable."""
    parser = _Parser(
        prog="python -m training",
        allow_abbrev=False,
        description="Train an MLP regressor on a CSV data set, track it in MLflow and register it.",
        epilog="Precedence: flag > environment variable > hyperparameters.json > default. "
        "Tracking server from MLFLOW_TRACKING_URI (http(s) URL or SageMaker MLflow ARN).",
    )
    for option in _OPTIONS:
        sources = ", ".join(option.envs) if option.envs else "no env"
        help_text = f"{option.help} [env: {sources}; default: {option.default or 'none'}]"
        if option.name in {"promote", "start_fresh"}:
            parser.add_argument(option.flag, dest=option.name, action="store_const", const="true", help=help_text)
        else:
            parser.add_argument(option.flag, dest=option.name, metavar="VALUE", help=help_text)
    return parser


def resolve(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Build the settings from the command line and environment; raise InputError naming the first bad value."""
    args = list(argv)
    if args[:1] == ["train"]:
        # SageMaker starts a training container as `docker run <image> train`.
        args = args[1:]
    namespace = vars(build_parser().parse_args(args))

    hp_option = next(option for option in _OPTIONS if option.name == "hyperparameters")
    hp_path, hp_source = _raw(hp_option, namespace, environ, {})
    hyperparameters = _read_hyperparameters(Path(hp_path), required=hp_source != "default")

    values: dict[str, Any] = {}
    for option in _OPTIONS:
        text, source = _raw(option, namespace, environ, hyperparameters)
        try:
            values[option.name] = option.parse(text)
        except ValueError as exc:
            where = {
                "flag": option.flag,
                "json": f"hyperparameter '{option.name}' in {hp_path}",
                "default": f"default of {option.flag}",
            }.get(source, source)
            raise InputError(f"{where} {exc} (got {text!r})") from None

    if values["val_fraction"] + values["test_fraction"] >= 0.9:
        raise InputError("val_fraction + test_fraction must be < 0.9 so that a training split remains")

    tracking_uri = environ.get("MLFLOW_TRACKING_URI") or None
    if (
        tracking_uri
        and tracking_uri.startswith(SAGEMAKER_ARN_PREFIX)
        and importlib.util.find_spec("sagemaker_mlflow") is None
    ):
        raise InputError(
            "MLFLOW_TRACKING_URI is a SageMaker MLflow ARN but the sagemaker-mlflow plugin is not installed "
            "(pip install sagemaker-mlflow)"
        )

    return Settings(
        data=values["data"],
        model_dir=Path(values["model_dir"]),
        output_data_dir=Path(values["output_data_dir"]),
        checkpoint_dir=Path(values["checkpoint_dir"]),
        checkpoint_s3_uri=values["checkpoint_s3_uri"],
        hyperparameters=Path(hp_path),
        job_name=values["job_name"],
        target=values["target"],
        epochs=values["epochs"],
        batch_size=values["batch_size"],
        lr=values["lr"],
        weight_decay=values["weight_decay"],
        hidden=values["hidden"],
        dropout=values["dropout"],
        seed=values["seed"],
        patience=values["patience"],
        val_fraction=values["val_fraction"],
        test_fraction=values["test_fraction"],
        registered_model_name=values["registered_model_name"],
        promote=values["promote"],
        promotion_margin=values["promotion_margin"],
        experiment_name=values["experiment_name"],
        tracking_uri=tracking_uri,
        tracking_timeout=values["tracking_timeout"],
        git_commit=environ.get("MLPLAT_GIT_COMMIT", ""),
        image=environ.get("MLPLAT_IMAGE", "local"),
        task=values["task"],
        start_fresh=values["start_fresh"],
    )


def _raw(
    option: _Option, namespace: Mapping[str, Any], environ: Mapping[str, str], hyperparameters: Mapping[str, str]
) -> tuple[str, str]:
    """The option's text and where it came from: 'flag', an environment variable's name, 'json' or 'default'."""
    if namespace.get(option.name) is not None:
        return str(namespace[option.name]), "flag"
    for env in option.envs:
        if environ.get(env):
            return environ[env], env
    if option.in_json and option.name in hyperparameters:
        return hyperparameters[option.name], "json"
    return option.default, "default"


def _read_hyperparameters(path: Path, required: bool) -> dict[str, str]:
    """SageMaker's hyperparameters.json as text values; keys may use '-' or '_'. Absent is fine unless asked for."""
    if not path.exists():
        if required:
            raise InputError(f"hyperparameters file {path} does not exist")
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read hyperparameters file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"hyperparameters file {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise InputError(f"hyperparameters file {path} must hold a JSON object")
    values: dict[str, str] = {}
    for key, value in document.items():
        name = str(key).replace("-", "_")
        if name.startswith("sagemaker_"):
            continue  # set by SageMaker's own tooling, not ours
        if name not in _JSON_KEYS:
            known = ", ".join(sorted(_JSON_KEYS))
            raise InputError(f"unknown hyperparameter {key!r} in {path} (known: {known})")
        values[name] = _as_text(value)
    return values


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def environment() -> Mapping[str, str]:
    """The process environment (a seam for tests)."""
    return os.environ
