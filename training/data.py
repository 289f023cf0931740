"""Read the training data (a local directory or file, or an s3:// URI), check it, split it and encode it.

The rules, so that a bad file fails with one clear line instead of a model trained on garbage:
- every `.csv` file of the channel is read (sorted by name); all must have the same header;
- a column is numeric when at least half of its values parse as finite numbers; then every value must parse, and
  the first that does not is reported with its file and line; other columns are categorical (one-hot encoded);
- no value may be empty; the target column must exist (whether it must be numeric depends on the task).

Memory: the file is read one column at a time (pyarrow's CSV reader, which materialises only the included column)
straight into a float32 array, or into integer codes for a categorical column; text is never held for the whole
table. `prepare` then consumes the columns one by one into the per-split feature matrices, so the table and the
matrices are never both whole in memory. The matrices are column-major ([features, rows] underneath, exposed as
[rows, features] views), which lets each column be written without touching the others' pages.

The split is a seeded permutation (test, then validation, then the rest for training), so the same data and seed
always give the same rows in each split. Standardisation statistics and the categories are fitted on the training
split only; a category never seen in training encodes as all zeros.
"""

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training import storage
from training.errors import InputError

MIN_ROWS = 10
NUMERIC_SHARE = 0.5
# `--task auto`: an integer target with at most this many distinct values is a set of class labels.
MAX_AUTO_CLASSES = 10
REGRESSION = "regression"
CLASSIFICATION = "classification"
EXAMPLE_ROWS = 5


@dataclass
class Column:
    """One column of the table: float32 numbers, or int32 codes into `labels` (categorical)."""

    values: np.ndarray
    labels: list[str] | None = None
    integer: bool = False

    @property
    def numeric(self) -> bool:
        return self.labels is None


@dataclass
class Table:
    """The checked raw data, one array per column; `prepare` consumes the columns."""

    columns: dict[str, Column]
    header: list[str]
    target: str
    rows: int
    source: str
    files: list[str]
    sha256: str

    @property
    def features(self) -> list[str]:
        return [column for column in self.header if column != self.target]

    @property
    def numeric(self) -> list[str]:
        return [column for column in self.features if self.columns[column].numeric]

    @property
    def categorical(self) -> list[str]:
        return [column for column in self.features if not self.columns[column].numeric]

    def resolve_task(self, task: str) -> str:
        """`regression` or `classification` for `--task` (`auto` decides from the target; see the README)."""
        target = self.columns[self.target]
        if task == "auto":
            if not target.numeric:
                return CLASSIFICATION
            if target.integer and len(np.unique(target.values)) <= MAX_AUTO_CLASSES:
                return CLASSIFICATION
            return REGRESSION
        if task == REGRESSION and not target.numeric:
            assert target.labels is not None
            raise InputError(
                f"target column {self.target!r} is not numeric (e.g. {target.labels[0]!r}); "
                "regression needs numbers (use --task classification)"
            )
        if task == CLASSIFICATION and target.numeric and not target.integer:
            raise InputError(
                f"target column {self.target!r} has non-integer numbers; classification needs class labels "
                "(use --task regression)"
            )
        return task


@dataclass(frozen=True)
class Encoding:
    """How raw feature columns become the network's standardised float32 input (fitted on the training split)."""

    target: str
    columns: list[str]
    numeric: list[str]
    categorical: dict[str, list[str]]
    encoded_features: list[str]
    mean: list[float]
    std: list[float]
    target_mean: float
    target_std: float
    task: str = REGRESSION
    # Classification: the labels as the data spells them (str, or int for an integer target); index i = logit i.
    classes: list[Any] = field(default_factory=list)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw columns → [rows, encoded features] float32, standardised; unknown categories are all zeros."""
        parts: list[np.ndarray] = [frame[self.numeric].to_numpy(dtype=np.float64).reshape(len(frame), -1)]
        for column, categories in self.categorical.items():
            values = frame[column].astype(str).to_numpy()
            parts.append(np.stack([values == category for category in categories], axis=1).astype(np.float64))
        encoded = np.concatenate(parts, axis=1)
        return ((encoded - np.asarray(self.mean)) / np.asarray(self.std)).astype(np.float32)


@dataclass(frozen=True)
class Splits:
    """Encoded arrays per split (`train`, `val`, `test`) and targets, plus what later steps need of the raw rows.

    `y` holds target units (float32) for regression and class indices (int64) for classification. `test_frame` is
    the raw test rows (feature columns; the champion is scored on them), `example` the first training rows (the
    model's input example), `feature_profile` the reference profile's features (see `profile.py`).
    """

    encoding: Encoding
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    test_frame: pd.DataFrame = field(repr=False)
    example: pd.DataFrame = field(repr=False)
    feature_profile: dict[str, Any] = field(repr=False)


# ---- reading ---------------------------------------------------------------------------------------------------


def load_table(data: str, target: str, workdir: Path) -> Table:
    """Fetch (for s3://) and read every CSV file of `data`; raise InputError on anything a model cannot use."""
    files = storage.fetch_csv_files(data, workdir)
    digest = hashlib.sha256()
    header: list[str] | None = None
    for local, display in files:
        _hash_file(local, digest)
        names = _read_header(local, display)
        if header is not None and names != header:
            raise InputError(f"{display} has columns ({', '.join(names)}) unlike the first file ({', '.join(header)})")
        header = names
    assert header is not None  # fetch_csv_files never returns an empty list

    first = files[0][1]
    if target not in header:
        raise InputError(f"target column {target!r} not found in {first} (columns: {', '.join(header)})")
    if len(header) < 2:
        raise InputError(f"{first} has no feature columns besides the target {target!r}")

    columns: dict[str, Column] = {}
    rows = 0
    for name in header:
        columns[name], counts = _read_column(files, header, name)
        rows = sum(counts)
        for count, (_, display) in zip(counts, files, strict=True):
            if count == 0:
                raise InputError(f"data file {display} has a header but no rows")
    if rows < MIN_ROWS:
        raise InputError(f"{first} has {rows} rows; at least {MIN_ROWS} are needed for a train/validation/test split")
    return Table(
        columns=columns,
        header=header,
        target=target,
        rows=rows,
        source=data,
        files=[display for _, display in files],
        sha256=digest.hexdigest(),
    )


def _hash_file(path: Path, digest: Any) -> None:
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)


def _read_header(path: Path, display: str) -> list[str]:
    with path.open("rb") as handle:
        start = handle.read(1 << 16)
        first = start.split(b"\n", 1)[0]
        if not start.strip():
            raise InputError(f"data file {display} is empty")
    try:
        cells = next(csv.reader([first.decode("utf-8-sig").rstrip("\r")], skipinitialspace=True))
    except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise InputError(f"data file {display} is not valid CSV: {exc}") from None
    names = [cell.strip() for cell in cells]
    if any(not name for name in names) or len(set(names)) != len(names):
        raise InputError(f"data file {display} has an empty or duplicated column name in its header")
    return names


def _arrow_column(path: Path, display: str, header: list[str], name: str, as_float: bool) -> Any:
    """One column of one file as a pyarrow array: float64 (raises ArrowInvalid if a value does not parse) or text."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    kind = pa.float64() if as_float else pa.string()
    convert = pacsv.ConvertOptions(
        include_columns=[name],
        column_types={name: kind},
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        true_values=[],
        false_values=[],
    )
    read = pacsv.ReadOptions(column_names=header, skip_rows=1, encoding="utf8")
    try:
        table = pacsv.read_csv(str(path), read_options=read, convert_options=convert)
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if as_float and "CSV conversion error" in message:
            raise
        reason = " ".join(message.split())
        raise InputError(f"data file {display} is not valid CSV: {reason[:200]}") from None
    return table.column(0).combine_chunks()


def _read_column(files: list[tuple[Path, str]], header: list[str], name: str) -> tuple[Column, list[int]]:
    """Read column `name` of every file: numbers as float32, anything else as categorical codes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        numbers = [_arrow_column(local, display, header, name, as_float=True) for local, display in files]
    except pa.ArrowInvalid:
        pass
    else:
        # Every value parsed: the common case, and the one that must be cheap for a large file.
        values = np.concatenate([chunk.to_numpy() for chunk in numbers]) if len(numbers) > 1 else numbers[0].to_numpy()
        del numbers
        if np.isfinite(values).all():
            return _numeric(values), _counts(files, header, name, len(values))

    texts = [pc.utf8_trim_whitespace(_arrow_column(local, display, header, name, False)) for local, display in files]
    for text, (_, display) in zip(texts, files, strict=True):
        empty = pc.equal(text, "")
        if pc.any(empty).as_py():
            line = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0]) + 2
            raise InputError(f"column {name!r} in {display} has an empty value on line {line}")
    counts = [len(text) for text in texts]
    combined = pa.concat_arrays(texts) if len(texts) > 1 else texts[0]
    del texts
    tally = pc.value_counts(combined)
    distinct = pd.Series(tally.field("values").to_pylist(), dtype=object)
    parsed = pd.to_numeric(distinct, errors="coerce")
    finite = (parsed.notna() & np.isfinite(parsed.fillna(0.0))).to_numpy()
    weights = tally.field("counts").to_numpy()
    if weights[finite].sum() >= NUMERIC_SHARE * weights.sum():
        bad = pa.array(distinct[~finite].tolist(), type=pa.string())
        offset = 0
        for count, (_, display) in zip(counts, files, strict=True):
            mask = pc.is_in(combined.slice(offset, count), value_set=bad).to_numpy(zero_copy_only=False)
            if mask.any():
                row = int(np.flatnonzero(mask)[0])
                value = combined[offset + row].as_py()
                raise InputError(f"column {name!r} in {display} has a non-numeric value {value!r} on line {row + 2}")
            offset += count
    encoded = pc.dictionary_encode(combined)
    labels = [str(label) for label in encoded.dictionary.to_pylist()]
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return Column(codes, labels), counts


def _numeric(values: np.ndarray) -> Column:
    integer = bool(np.all(np.floor(values) == values))
    return Column(values.astype(np.float32), integer=integer)


def _counts(files: list[tuple[Path, str]], header: list[str], name: str, total: int) -> list[int]:
    """Rows per file (only worth reading again when there are several files)."""
    if len(files) == 1:
        return [total]
    return [len(_arrow_column(local, display, header, name, as_float=True)) for local, display in files]


# ---- splitting and encoding ------------------------------------------------------------------------------------


def split_indices(n: int, seed: int, val_fraction: float, test_fraction: float) -> dict[str, np.ndarray]:
    """A seeded permutation cut into test, validation and training rows (each non-empty)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    return {
        "test": np.sort(order[:n_test]),
        "val": np.sort(order[n_test : n_test + n_val]),
        "train": np.sort(order[n_test + n_val :]),
    }


def _safe_std(values: np.ndarray) -> float:
    std = float(np.std(values, dtype=np.float64))
    return std if std > 1e-12 else 1.0


def _shortest(values: np.ndarray) -> np.ndarray:
    """float32 → float64 as the text a person wrote (0.455, not 0.45500001311): for the few rows people read."""
    return np.array([float(str(value)) for value in values], dtype=np.float64)


def _target(table: Table, task: str, indices: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[Any]]:
    """Targets per split, and for classification the classes (labels as spelled, sorted)."""
    column = table.columns.pop(table.target)
    if task == REGRESSION:
        return {name: column.values[rows] for name, rows in indices.items()}, []
    if column.numeric:
        classes: list[Any] = sorted(int(value) for value in np.unique(column.values))
        index = np.searchsorted(np.asarray(classes, dtype=np.float64), column.values.astype(np.float64))
    else:
        assert column.labels is not None
        classes = sorted(column.labels)
        position = np.argsort(np.asarray(column.labels, dtype=object))
        rank = np.empty(len(position), dtype=np.int64)
        rank[position] = np.arange(len(position))
        index = rank[column.values]
    if len(classes) < 2:
        raise InputError(
            f"target column {table.target!r} has a single class ({classes[0]!r}); classification needs at least two"
        )
    return {name: index[rows].astype(np.int64) for name, rows in indices.items()}, classes


def prepare(table: Table, seed: int, val_fraction: float, test_fraction: float, task: str = REGRESSION) -> Splits:
    """Split, fit the encoding on the training split, and encode all three splits; consumes `table.columns`."""
    from training import profile

    indices = split_indices(table.rows, seed, val_fraction, test_fraction)
    numeric, categorical_columns, features = table.numeric, table.categorical, table.features
    y, classes = _target(table, task, indices)
    train_rows = indices["train"]
    categorical: dict[str, list[str]] = {}
    for column in categorical_columns:
        labels = table.columns[column].labels
        assert labels is not None
        seen = np.unique(table.columns[column].values[train_rows])
        categorical[column] = sorted(labels[code] for code in seen)
    encoded = list(numeric) + [f"{column}={value}" for column, values in categorical.items() for value in values]
    # Column-major underneath: writing one feature touches only its own pages (see the module docstring).
    matrices = {name: np.empty((len(encoded), len(rows)), dtype=np.float32) for name, rows in indices.items()}
    means: list[float] = []
    stds: list[float] = []
    test_columns: dict[str, Any] = {}
    example_columns: dict[str, Any] = {}
    feature_profile: dict[str, Any] = {}
    test_rows, example_rows = indices["test"], train_rows[:EXAMPLE_ROWS]
    position = 0
    for column in [*numeric, *categorical_columns]:  # the order of `encoded`
        data = table.columns.pop(column)
        if data.numeric:
            train_values = data.values[train_rows]
            mean, std = float(np.mean(train_values, dtype=np.float64)), _safe_std(train_values)
            feature_profile[column] = profile.numeric_profile(train_values, seed)
            del train_values
            for name, rows in indices.items():
                target_row = matrices[name][position]
                np.subtract(data.values[rows], np.float32(mean), out=target_row)
                target_row /= np.float32(std)
            means.append(mean)
            stds.append(std)
            test_columns[column] = data.values[test_rows].astype(np.float64)
            example_columns[column] = _shortest(data.values[example_rows])
            position += 1
            continue
        assert data.labels is not None
        spelled = np.asarray(data.labels, dtype=object)
        feature_profile[column] = profile.categorical_frequencies(data.values[train_rows], data.labels)
        for label in categorical[column]:
            code = data.labels.index(label)
            for name, rows in indices.items():
                np.equal(data.values[rows], code, out=matrices[name][position], casting="unsafe")
            # One-hot columns stay 0/1: scaling them buys nothing and keeps the encoding readable.
            means.append(0.0)
            stds.append(1.0)
            position += 1
        test_columns[column] = spelled[data.values[test_rows]]
        example_columns[column] = spelled[data.values[example_rows]]

    target_mean, target_std = 0.0, 1.0
    if task == REGRESSION:
        target_mean = float(np.mean(y["train"], dtype=np.float64))
        target_std = _safe_std(y["train"])
    encoding = Encoding(
        target=table.target,
        columns=features,
        numeric=numeric,
        categorical=categorical,
        encoded_features=encoded,
        mean=means,
        std=stds,
        target_mean=target_mean,
        target_std=target_std,
        task=task,
        classes=classes,
    )
    return Splits(
        encoding=encoding,
        x={name: matrix.T for name, matrix in matrices.items()},
        y=y,
        test_frame=pd.DataFrame({column: test_columns[column] for column in features}),
        example=pd.DataFrame({column: example_columns[column] for column in features}),
        feature_profile=feature_profile,
    )
