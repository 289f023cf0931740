"""Read the training data (a local directory or file, or an s3:// URI), check it, split it and encode it.

The rules, so that a bad file fails with one clear line instead of a model trained on garbage:
- every `.csv` file of the channel is read (sorted by name); all must have the same header;
- a column is numeric when at least half of its values parse as finite numbers; then every value must parse, and
  the first that does not is reported with its file and line; other columns are categorical (one-hot encoded);
- the target column must exist and be numeric; no value may be empty.

The split is a seeded permutation (test, then validation, then the rest for training), so the same data and seed
always give the same rows in each split. Standardisation statistics and the categories are fitted on the training
split only; a category never seen in training encodes as all zeros.
"""

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training import storage
from training.errors import InputError

MIN_ROWS = 10
NUMERIC_SHARE = 0.5


@dataclass(frozen=True)
class Table:
    """The checked raw data: numeric columns as float64, categorical ones as str, in file order."""

    frame: pd.DataFrame
    target: str
    numeric: list[str]
    categorical: list[str]
    source: str
    files: list[str]
    sha256: str

    @property
    def features(self) -> list[str]:
        return [column for column in self.frame.columns if column != self.target]


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
    """Encoded arrays per split (`train`, `val`, `test`), targets in target units, and the raw rows behind them."""

    encoding: Encoding
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    raw: dict[str, pd.DataFrame] = field(repr=False)


def load_table(data: str, target: str, workdir: Path) -> Table:
    """Fetch (for s3://) and read every CSV file of `data`; raise InputError on anything a model cannot use."""
    files = storage.fetch_csv_files(data, workdir)
    digest = hashlib.sha256()
    frames: list[tuple[str, pd.DataFrame]] = []
    header: list[str] | None = None
    for local, display in files:
        content = local.read_bytes()
        digest.update(content)
        frame = _read_csv(content, display)
        columns = [str(column) for column in frame.columns]
        if header is not None and columns != header:
            raise InputError(
                f"{display} has columns ({', '.join(columns)}) unlike the first file ({', '.join(header)})"
            )
        header = columns
        frames.append((display, frame))
    assert header is not None  # fetch_csv_files never returns an empty list

    first = frames[0][0]
    if target not in header:
        raise InputError(f"target column {target!r} not found in {first} (columns: {', '.join(header)})")
    if len(header) < 2:
        raise InputError(f"{first} has no feature columns besides the target {target!r}")

    combined = pd.concat([frame for _, frame in frames], ignore_index=True)
    if len(combined) < MIN_ROWS:
        raise InputError(
            f"{first} has {len(combined)} rows; at least {MIN_ROWS} are needed for a train/validation/test split"
        )
    numeric = [column for column in header if column == target or _mostly_numeric(combined[column])]
    categorical = [column for column in header if column not in numeric]

    for display, frame in frames:
        _check_values(frame, numeric, display)

    parsed = combined.copy()
    for column in numeric:
        parsed[column] = pd.to_numeric(combined[column].str.strip(), errors="raise").astype(np.float64)
    for column in categorical:
        parsed[column] = combined[column].str.strip()
    return Table(
        frame=parsed,
        target=target,
        numeric=[column for column in numeric if column != target],
        categorical=categorical,
        source=data,
        files=[display for _, display in files],
        sha256=digest.hexdigest(),
    )


def _read_csv(content: bytes, display: str) -> pd.DataFrame:
    if not content.strip():
        raise InputError(f"data file {display} is empty")
    try:
        frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise InputError(f"data file {display} is not valid CSV: {reason}") from None
    if frame.empty:
        raise InputError(f"data file {display} has a header but no rows")
    duplicated = sorted({str(c) for c in frame.columns if list(frame.columns).count(c) > 1})
    if any(str(column).startswith("Unnamed: ") for column in frame.columns) or duplicated:
        raise InputError(f"data file {display} has an empty or duplicated column name in its header")
    return frame


def _finite_numbers(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values.str.strip(), errors="coerce")
    return numbers.notna() & np.isfinite(numbers.fillna(0.0))


def _mostly_numeric(values: pd.Series) -> bool:
    present = values.str.strip() != ""
    return bool(present.any()) and _finite_numbers(values[present]).mean() >= NUMERIC_SHARE


def _check_values(frame: pd.DataFrame, numeric: Sequence[str], display: str) -> None:
    """Report the first empty or non-numeric value with its 1-based file line (the header is line 1)."""
    for column in frame.columns:
        empty = frame[column].str.strip() == ""
        if empty.any():
            line = int(np.flatnonzero(empty.to_numpy())[0]) + 2
            raise InputError(f"column {column!r} in {display} has an empty value on line {line}")
        if column in numeric:
            bad = ~_finite_numbers(frame[column])
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(
                    f"column {column!r} in {display} has a non-numeric value {frame[column].iloc[row]!r} "
                    f"on line {row + 2}"
                )


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


def fit_encoding(table: Table, train: pd.DataFrame) -> Encoding:
    """Categories and standardisation from the training rows only."""
    categorical = {column: sorted(train[column].unique().tolist()) for column in table.categorical}
    means = [float(train[column].mean()) for column in table.numeric]
    stds = [_safe_std(train[column].to_numpy()) for column in table.numeric]
    encoded = list(table.numeric)
    for column, categories in categorical.items():
        encoded += [f"{column}={category}" for category in categories]
        # One-hot columns stay 0/1: scaling them buys nothing and keeps the encoding readable.
        means += [0.0] * len(categories)
        stds += [1.0] * len(categories)
    target = train[table.target].to_numpy()
    return Encoding(
        target=table.target,
        columns=table.features,
        numeric=list(table.numeric),
        categorical=categorical,
        encoded_features=encoded,
        mean=means,
        std=stds,
        target_mean=float(target.mean()),
        target_std=_safe_std(target),
    )


def _safe_std(values: np.ndarray) -> float:
    std = float(np.std(values))
    return std if std > 1e-12 else 1.0


def prepare(table: Table, seed: int, val_fraction: float, test_fraction: float) -> Splits:
    """Split, fit the encoding on the training split, and encode all three splits."""
    indices = split_indices(len(table.frame), seed, val_fraction, test_fraction)
    raw = {name: table.frame.iloc[rows].reset_index(drop=True) for name, rows in indices.items()}
    encoding = fit_encoding(table, raw["train"])
    return Splits(
        encoding=encoding,
        x={name: encoding.encode(frame) for name, frame in raw.items()},
        y={name: frame[table.target].to_numpy(dtype=np.float32) for name, frame in raw.items()},
        raw={name: frame[encoding.columns] for name, frame in raw.items()},
    )
