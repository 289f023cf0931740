"""Loaded models: the fast path (a `torch.export` program plus an encoding spec, no pandas) and the MLflow fallback.

A model turns a decoded `Table` into its own input (`encode`, strict about columns and values) and that input into
predictions (`predict`). Fast-path inputs are float32 matrices, so concurrent requests can be stacked into one batch.
"""

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import torch
import yaml

from serving.codec import Table, numeric_block
from serving.protocol import BAD_REQUEST, INTERNAL_ERROR, UNPROCESSABLE, ServingError, quote_names, quote_value

log = logging.getLogger("serving.model")

SPEC_FILE = "mlplat_model.json"
SPEC_FORMAT = "mlplat-mlp/1"


class ModelLoadError(RuntimeError):
    """The model directory or registry entry cannot be served; the message says why."""


@dataclass(frozen=True)
class ModelInfo:
    """What `/version` and `/metrics` report about the model that serves."""

    name: str
    version: str | None
    run_id: str | None
    source: str
    flavor: str

    def as_dict(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "source": self.source,
            "flavor": self.flavor,
        }


class Model(Protocol):
    """A model that serves: `encode` checks and converts a request, `predict` scores it (called off the loop)."""

    info: ModelInfo
    # True when `encode` returns float32 matrices that may be concatenated with other requests' rows.
    batchable: bool

    def encode(self, table: Table) -> Any: ...

    def predict(self, features: Any) -> Any: ...

    def warm(self) -> None: ...


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    """The parsed `MLmodel` file of an MLflow model directory."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise ModelLoadError(f"{model_dir} is not an MLflow model directory (no MLmodel file)")
    try:
        data = yaml.safe_load(mlmodel.read_text())
    except yaml.YAMLError as error:
        raise ModelLoadError(f"{mlmodel} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{mlmodel} is not a mapping")
    return data


def find_spec(model_dir: Path, mlmodel: dict[str, Any]) -> Path | None:
    """The fast-path spec, from the pyfunc flavor's `artifacts` section, else anywhere under `artifacts/`."""
    flavor = (mlmodel.get("flavors") or {}).get("python_function") or {}
    for entry in (flavor.get("artifacts") or {}).values():
        path = entry.get("path") if isinstance(entry, dict) else None
        if isinstance(path, str) and Path(path).name == SPEC_FILE and (model_dir / path).is_file():
            return model_dir / path
    found = sorted((model_dir / "artifacts").glob(f"**/{SPEC_FILE}"))
    return found[0] if found else None


def load_model_dir(model_dir: Path, name: str, version: str | None, source: str, max_rows: int) -> Model:
    """Load an MLflow model directory: the fast path when it carries a spec, MLflow's pyfunc loader otherwise."""
    mlmodel = read_mlmodel(model_dir)
    run_id = mlmodel.get("run_id")
    spec_path = find_spec(model_dir, mlmodel)
    if spec_path is not None:
        spec = _read_spec(spec_path)
        if spec.get("format") == SPEC_FORMAT:
            info = ModelInfo(name, version, run_id, source, SPEC_FORMAT)
            return MlpModel(spec, spec_path.parent, info, max_rows)
        log.warning("%s has format %r, not %r; using the pyfunc loader", spec_path, spec.get("format"), SPEC_FORMAT)
    return PyfuncModel(model_dir, ModelInfo(name, version, run_id, source, "python_function"))


def _read_spec(path: Path) -> dict[str, Any]:
    try:
        spec = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise ModelLoadError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(spec, dict):
        raise ModelLoadError(f"{path} is not a JSON object")
    return spec


class MlpModel:
    """The fast path: raw columns are one-hot encoded and standardised with numpy, then scored by the exported program.

    No pandas and no pickles: the spec is JSON and the network a `torch.export` program.
    """

    batchable = True

    def __init__(self, spec: dict[str, Any], artifacts_dir: Path, info: ModelInfo, max_rows: int) -> None:
        self.info = info
        self.max_rows = max_rows
        try:
            self.columns: tuple[str, ...] = tuple(spec["columns"])
            numeric: list[str] = list(spec["numeric"])
            categorical: dict[str, list[str]] = dict(spec.get("categorical") or {})
            encoded: list[str] = list(spec["encoded_features"])
            mean = np.asarray(spec["mean"], dtype=np.float32)
            std = np.asarray(spec["std"], dtype=np.float32)
            program = artifacts_dir / str(spec.get("program", "model.pt2"))
            target_mean, target_std = spec.get("target_mean"), spec.get("target_std")
        except (KeyError, TypeError, ValueError) as error:
            raise ModelLoadError(f"{SPEC_FILE} is incomplete: {error!r}") from None
        index = {feature: position for position, feature in enumerate(encoded)}
        if len(index) != len(encoded) or mean.shape != (len(encoded),) or std.shape != (len(encoded),):
            raise ModelLoadError(f"{SPEC_FILE}: encoded_features, mean and std must have one distinct entry each")
        if set(numeric) | set(categorical) != set(self.columns) or set(numeric) & set(categorical):
            raise ModelLoadError(f"{SPEC_FILE}: every column must be either numeric or categorical")
        try:
            self._numeric = [(column, index[column]) for column in numeric]
            self._categorical = [
                (column, {value: k for k, value in enumerate(values)}, [index[f"{column}={value}"] for value in values])
                for column, values in categorical.items()
            ]
        except KeyError as error:
            raise ModelLoadError(f"{SPEC_FILE}: encoded feature {error} is missing") from None
        self._numeric_names = [column for column, _ in self._numeric]
        self._numeric_slots = [slot for _, slot in self._numeric]
        covered = len(self._numeric) + sum(len(slots) for _, _, slots in self._categorical)
        if covered != len(encoded):
            raise ModelLoadError(f"{SPEC_FILE}: encoded_features has entries no column produces")
        self.n_features = len(encoded)
        self._mean = mean
        # A constant feature in training has std 0; dividing by 1 leaves it centred instead of infinite.
        self._std = np.where(std == 0, np.float32(1), std).astype(np.float32)
        self._target = None if target_mean is None or target_std is None else (float(target_std), float(target_mean))
        self._column_set = frozenset(self.columns)
        self._expected = ", ".join(self.columns)
        if not program.is_file():
            raise ModelLoadError(f"the exported program {program.name} is missing from {artifacts_dir}")
        try:
            self._module = torch.export.load(str(program)).module()
        except Exception as error:
            raise ModelLoadError(f"cannot load the exported program {program.name}: {type(error).__name__}") from None
        self._forward: Any = self._module

    def encode(self, table: Table) -> np.ndarray:
        """A float32 [rows, encoded features] matrix, standardised; 400 for shape problems, 422 for bad values."""
        if table.names is None:
            if len(table.columns) != len(self.columns):
                given, expected = len(table.columns), len(self.columns)
                raise ServingError(
                    BAD_REQUEST, f"each row has {given} values; the model expects {expected}: {self._expected}"
                )
            by_name = dict(zip(self.columns, table.columns, strict=True))
        else:
            unknown = [name for name in table.names if name not in self._column_set]
            if unknown:
                raise ServingError(
                    BAD_REQUEST, f"unknown column(s) {quote_names(unknown)}; the model expects: {self._expected}"
                )
            present = set(table.names)
            missing = [name for name in self.columns if name not in present]
            if missing:
                raise ServingError(BAD_REQUEST, f"missing column(s) {', '.join(repr(m) for m in missing)}")
            by_name = dict(zip(table.names, table.columns, strict=True))
        out = np.empty((table.n_rows, self.n_features), dtype=np.float32)
        out[:, self._numeric_slots] = numeric_block(
            self._numeric_names, [by_name[column] for column in self._numeric_names], table.text
        ).T
        for column, lookup, slots in self._categorical:
            out[:, slots] = self._one_hot(column, by_name[column], lookup)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow here shows as a non-finite prediction
            out -= self._mean
            out /= self._std
        return out

    @staticmethod
    def _one_hot(column: str, values: Sequence[Any], lookup: dict[str, int]) -> np.ndarray:
        try:
            codes = [lookup[value] for value in values]
        except (KeyError, TypeError):
            row = next(i for i, value in enumerate(values) if not isinstance(value, str) or value not in lookup)
            allowed = ", ".join(repr(value) for value in lookup)
            raise ServingError(
                UNPROCESSABLE,
                f"column {column!r}, row {row}: unknown category {quote_value(values[row])}; expected one of {allowed}",
            ) from None
        return np.eye(len(lookup), dtype=np.float32)[codes]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores for each row: the network output, de-standardised when the spec says so."""
        with torch.inference_mode():
            output = self._forward(torch.from_numpy(features))
        if isinstance(output, tuple | list):
            output = output[0]
        result: np.ndarray = output.numpy()
        if result.ndim == 2 and result.shape[1] == 1:
            result = result.reshape(-1)
        if self._target is not None:
            scale, shift = self._target
            result = result * np.float32(scale) + np.float32(shift)
        return result

    def warm(self) -> None:
        """Check the program accepts every batch size it will see, then take the checks off the hot path.

        `encode` always builds a float32 [rows, n_features] matrix, so once the smallest and largest batch passed
        the exported program's own input validation, running it again per request (about half the cost of a
        one-row forward pass) buys nothing; the shape guards compiled into the graph still run.
        """
        sizes = sorted({1, 2, 8, 64, min(self.max_rows, 1024), self.max_rows})
        for rows in sizes:
            try:
                self.predict(np.zeros((rows, self.n_features), dtype=np.float32))
            except Exception as error:
                raise ModelLoadError(
                    f"the exported program rejects a batch of {rows} x {self.n_features} features "
                    f"({type(error).__name__}); export it with a dynamic batch dimension or lower MLPLAT_MAX_ROWS"
                ) from None
        if hasattr(self._module, "validate_inputs"):
            setattr(self._module, "validate_inputs", False)  # noqa: B010 - a torch attribute mypy sees as a Module
            self._forward = self._module.forward
        for rows in sizes[:4]:
            for _ in range(3):
                self.predict(np.zeros((rows, self.n_features), dtype=np.float32))


class PyfuncModel:
    """Any other MLflow model, through `mlflow.pyfunc` with a pandas DataFrame: slower, but it serves everything."""

    batchable = False

    def __init__(self, model_dir: Path, info: ModelInfo) -> None:
        import mlflow.pyfunc  # deferred: the fast path never needs it

        self.info = info
        try:
            self._model = mlflow.pyfunc.load_model(str(model_dir))
        except Exception as error:
            raise ModelLoadError(f"mlflow cannot load {model_dir}: {type(error).__name__}: {error}") from None
        schema = self._model.metadata.get_input_schema()
        self.columns: list[str] | None = None
        if schema is not None and schema.has_input_names():
            self.columns = [str(name) for name in schema.input_names()]

    def encode(self, table: Table) -> Any:
        import pandas as pd

        names: Sequence[str] | None = table.names
        if names is None and self.columns is not None:
            if len(self.columns) != len(table.columns):
                raise ServingError(
                    BAD_REQUEST,
                    f"each row has {len(table.columns)} values; the model expects {len(self.columns)}: "
                    + ", ".join(self.columns),
                )
            names = self.columns
        labels = list(names) if names is not None else list(range(len(table.columns)))
        data: dict[Any, Any] = {}
        for label, column in zip(labels, table.columns, strict=True):
            series = pd.Series(list(column))
            if table.text:
                with contextlib.suppress(ValueError, TypeError):
                    series = pd.to_numeric(series)
            data[label] = series
        return pd.DataFrame(data)

    def predict(self, features: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            result = self._model.predict(features)
        except MlflowException as error:
            log.info("the model rejected an input: %s", type(error).__name__)
            raise ServingError(BAD_REQUEST, "the input does not match the model's signature") from None
        except Exception:
            log.exception("prediction failed")
            raise ServingError(INTERNAL_ERROR, "prediction failed") from None
        return _plain(result)

    def warm(self) -> None:
        """Nothing generic to run: a pyfunc model's valid input is only known from its signature or example."""


def _plain(result: Any) -> Any:
    """Pandas and numpy results as something `codec.encode` writes (MLflow's scoring server does the same)."""
    to_dict = getattr(result, "to_dict", None)
    if hasattr(result, "columns") and to_dict is not None:
        return to_dict(orient="records")
    if hasattr(result, "to_numpy"):
        return result.to_numpy()
    if isinstance(result, np.ndarray | list):
        return result
    return np.asarray(result)


def timed_warm(model: Model) -> float:
    """Warm a model and return how long it took, in seconds."""
    started = time.perf_counter()
    model.warm()
    return time.perf_counter() - started
