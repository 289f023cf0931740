"""The models a worker serves: the fast paths (a `torch.export` program plus an encoding spec, no pandas), their
registry, and the hand-off to the generic MLflow path (`serving.generic`) for every other model.

A model turns a request body into its own input (`prepare`, strict about columns and values), that input into raw
outputs (`predict`, possibly for several requests stacked, possibly off the event loop), and one request's share of
the outputs into a response (`respond`). Fast-path inputs are float32 matrices, so concurrent requests can be stacked.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import torch
import yaml

from serving.codec import FLOAT32_MAX, Table, decode, encode, numeric_block
from serving.protocol import BAD_REQUEST, UNPROCESSABLE, Response, ServingError, quote_names, quote_value

log = logging.getLogger("serving.model")

SPEC_FILE = "mlplat_model.json"
SPEC_FORMAT = "mlplat-mlp/1"
CLASSIFIER_FORMAT = "mlplat-mlp-classifier/1"
# Names the request columns a fast-path model does not use: they are ignored, as MLflow ignores them.
IGNORED_COLUMNS_HEADER = "x-mlplat-ignored-columns"


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


@dataclass(frozen=True)
class Prepared:
    """One request, checked and converted: what `predict` takes, and what `respond` needs besides."""

    features: Any
    table: Table | None = None
    params: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Answer:
    """One request's response, and what observers of scored requests see (`table` None: nothing to observe)."""

    response: Response
    rows: int
    table: Table | None = None
    predictions: Any = None
    # Builds `table` only when someone observes: the generic path's input is a DataFrame, costly to convert.
    lazy_table: Callable[[], Table | None] | None = None

    def observed_table(self) -> Table | None:
        return self.lazy_table() if self.lazy_table is not None else self.table


class Model(Protocol):
    """A model that serves: `prepare` checks and converts a request body, `predict` scores (called off the loop or on
    several requests' rows stacked), `respond` writes one request's answer."""

    info: ModelInfo
    # True when `prepare` gives float32 matrices that may be concatenated with other requests' rows.
    batchable: bool

    def prepare(self, body: bytes, content_type: str, max_rows: int) -> Prepared: ...

    def predict(self, features: Any) -> Any: ...

    def respond(self, prepared: Prepared, outputs: Any, output_type: str) -> Answer: ...

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
    """Load an MLflow model directory: a fast path when it carries a spec of a known format, MLflow's otherwise."""
    mlmodel = read_mlmodel(model_dir)
    run_id = mlmodel.get("run_id")
    spec_path = find_spec(model_dir, mlmodel)
    if spec_path is not None:
        spec = _read_spec(spec_path)
        fmt = str(spec.get("format"))
        loader = FAST_PATHS.get(fmt)
        if loader is not None:
            return loader(spec, spec_path.parent, ModelInfo(name, version, run_id, source, fmt), max_rows)
        known = ", ".join(repr(key) for key in FAST_PATHS)
        log.warning("%s has format %r, not one of %s; using the pyfunc loader", spec_path, spec.get("format"), known)
    from serving.generic import PyfuncModel  # deferred: only the generic path needs mlflow and pandas

    return PyfuncModel(model_dir, ModelInfo(name, version, run_id, source, "python_function"), max_rows)


def _read_spec(path: Path) -> dict[str, Any]:
    try:
        spec = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise ModelLoadError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(spec, dict):
        raise ModelLoadError(f"{path} is not a JSON object")
    return spec


# Up to this many rows, a request is encoded in Python rather than numpy (see `MlpModel._encode_small`).
_SMALL_ROWS = 16


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
        self._warned_ignored = False
        self._expected = ", ".join(self.columns)
        if not program.is_file():
            raise ModelLoadError(f"the exported program {program.name} is missing from {artifacts_dir}")
        try:
            self._module = torch.export.load(str(program)).module()
        except Exception as error:
            raise ModelLoadError(f"cannot load the exported program {program.name}: {type(error).__name__}") from None
        self._forward: Any = self._module

    def prepare(self, body: bytes, content_type: str, max_rows: int) -> Prepared:
        """Decode and encode a body; request columns the model does not use are named in a response header."""
        table = decode(body, content_type, max_rows)
        ignored = self.ignored_columns(table)
        headers = ((IGNORED_COLUMNS_HEADER, quote_names(ignored)),) if ignored else ()
        return Prepared(self.encode(table), table, table.params, headers)

    def ignored_columns(self, table: Table) -> list[str]:
        """Named request columns the model has no use for; logged the first time (MLflow ignores them too)."""
        if table.names is None:
            return []
        ignored = [name for name in table.names if name not in self._column_set]
        if ignored and not self._warned_ignored:
            self._warned_ignored = True
            log.warning("ignoring request column(s) the model does not use: %s", quote_names(ignored))
        return ignored

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
            present = set(table.names)
            missing = [name for name in self.columns if name not in present]
            if missing:
                raise ServingError(BAD_REQUEST, f"missing column(s) {', '.join(repr(m) for m in missing)}")
            by_name = dict(zip(table.names, table.columns, strict=True))
        out = self._encode_small(by_name, table.n_rows) if table.n_rows <= _SMALL_ROWS and not table.text else None
        if out is None:
            out = self._encode_block(by_name, table)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow here shows as a non-finite prediction
            out -= self._mean
            out /= self._std
        return out

    def _encode_small(self, by_name: dict[str, Sequence[Any]], n_rows: int) -> np.ndarray | None:
        """A few rows of plain, in-range numbers and known categories, built in Python: numpy's fixed cost per call is
        most of a one-row request's encoding. None for anything else, which `_encode_block` then checks and names."""
        rows = [[0.0] * self.n_features for _ in range(n_rows)]
        for column, slot in self._numeric:
            for row, value in zip(rows, by_name[column], strict=True):
                kind = type(value)
                # NaN fails both comparisons; an int is widened through float64 exactly as the block path does.
                if (kind is not float and kind is not int) or not -FLOAT32_MAX <= value <= FLOAT32_MAX:
                    return None
                row[slot] = float(value)
        for column, lookup, slots in self._categorical:
            for row, value in zip(rows, by_name[column], strict=True):
                code = lookup.get(value) if type(value) is str else None
                if code is None:
                    return None
                row[slots[code]] = 1.0
        return np.array(rows, dtype=np.float32)

    def _encode_block(self, by_name: dict[str, Sequence[Any]], table: Table) -> np.ndarray:
        """Any number of rows, vectorised, with the checks that name the column and row of a bad value."""
        out = np.empty((table.n_rows, self.n_features), dtype=np.float32)
        out[:, self._numeric_slots] = numeric_block(
            self._numeric_names, [by_name[column] for column in self._numeric_names], table.text
        ).T
        for column, lookup, slots in self._categorical:
            out[:, slots] = self._one_hot(column, by_name[column], lookup)
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
        output = self._run(features)
        if output.ndim == 2 and output.shape[1] == 1:
            output = output.reshape(-1)
        if self._target is not None:
            scale, shift = self._target
            output = output * np.float32(scale) + np.float32(shift)
        return output

    def _run(self, features: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            output = self._forward(torch.from_numpy(features))
        if isinstance(output, tuple | list):
            output = output[0]
        result: np.ndarray = output.numpy()
        return result

    def respond(self, prepared: Prepared, outputs: np.ndarray, output_type: str) -> Answer:
        """The predictions as a 200 response; 422 when the network answered NaN or infinity for a row."""
        _check_finite(outputs)
        body, media = encode(outputs, output_type)
        return Answer(Response(200, body, media, prepared.headers), int(outputs.shape[0]), prepared.table, outputs)

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


class MlpClassifier(MlpModel):
    """`mlplat-mlp-classifier/1`: the regressor's encoding; the program's logits become class labels, or each class's
    probability (softmax of the logits) with `{"params": {"output": "probabilities"}}`."""

    OUTPUTS = ("labels", "probabilities")

    def __init__(self, spec: dict[str, Any], artifacts_dir: Path, info: ModelInfo, max_rows: int) -> None:
        classes = spec.get("classes")
        if (
            not isinstance(classes, list)
            or len(classes) < 2
            or not all(isinstance(label, str | int) and not isinstance(label, bool) for label in classes)
        ):
            raise ModelLoadError(f"{SPEC_FILE}: 'classes' must list at least two labels (strings or integers)")
        keys = [str(label) for label in classes]
        if len(set(keys)) != len(keys):
            raise ModelLoadError(f"{SPEC_FILE}: 'classes' names a label more than once")
        super().__init__({**spec, "target_mean": None, "target_std": None}, artifacts_dir, info, max_rows)
        self.classes: list[str | int] = classes
        self._keys = keys
        self._allowed = ", ".join(repr(output) for output in self.OUTPUTS)

    def prepare(self, body: bytes, content_type: str, max_rows: int) -> Prepared:
        prepared = super().prepare(body, content_type, max_rows)
        self._output(prepared.params)  # refused before the request joins a batch
        return prepared

    def _output(self, params: dict[str, Any] | None) -> str:
        output = (params or {}).get("output", "labels")
        if output not in self.OUTPUTS:
            raise ServingError(BAD_REQUEST, f"params.output must be one of {self._allowed}; got {quote_value(output)}")
        return str(output)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The logits, float32 [rows, classes]."""
        logits = self._run(features)
        if logits.ndim != 2 or logits.shape[1] != len(self.classes):
            raise ModelLoadError(
                f"the exported program answers shape {tuple(logits.shape)}; the spec has {len(self.classes)} classes"
            )
        return logits

    def respond(self, prepared: Prepared, outputs: np.ndarray, output_type: str) -> Answer:
        """Labels (argmax of the logits), or one `{label: probability}` object per row."""
        _check_finite(outputs)
        predictions: list[Any]
        if self._output(prepared.params) == "labels":
            predictions = [self.classes[index] for index in outputs.argmax(axis=1).tolist()]
        else:
            predictions = [dict(zip(self._keys, row, strict=True)) for row in _softmax(outputs).tolist()]
        body, media = encode(predictions, output_type)
        return Answer(Response(200, body, media, prepared.headers), len(predictions), prepared.table, predictions)


def _softmax(logits: np.ndarray) -> np.ndarray:
    wide = logits.astype(np.float64)
    wide -= wide.max(axis=1, keepdims=True)
    np.exp(wide, out=wide)
    wide /= wide.sum(axis=1, keepdims=True)
    return wide


def _check_finite(outputs: np.ndarray) -> None:
    if outputs.dtype.kind == "f":
        finite = np.isfinite(outputs)
        if not finite.all():
            row = int(np.argmin(finite.reshape(len(finite), -1).all(axis=1)))
            raise ServingError(
                UNPROCESSABLE, f"row {row}: the model's prediction is not a finite number (inputs far out of range?)"
            )


# The fast paths, by their spec's `format`: adding a model type is one entry here and its loader class.
FAST_PATHS: dict[str, Callable[[dict[str, Any], Path, ModelInfo, int], Model]] = {
    SPEC_FORMAT: MlpModel,
    CLASSIFIER_FORMAT: MlpClassifier,
}


def timed_warm(model: Model) -> float:
    """Warm a model and return how long it took, in seconds."""
    started = time.perf_counter()
    model.warm()
    return time.perf_counter() - started
