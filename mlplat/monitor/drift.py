"""Drift statistics: what the endpoint saw against the reference profile its model was trained with.

Numeric features get the population stability index (PSI) on the profile's bins and a two-sample Kolmogorov-Smirnov
test against the profile's raw sample; categorical features get PSI over the categories and a chi-square
goodness-of-fit test against the training frequencies, plus an explicit finding for categories training never saw.

A feature drifts when the shift is both large (PSI at or over the threshold) and unlikely to be noise (the test's
p-value under the threshold): PSI alone is noisy on small windows, a p-value alone flags trivial shifts on large
ones. A category training never saw is drift on its own. Everything here is pure: no I/O, no MLflow.
"""

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

PROFILE_FORMAT = "mlplat-profile/1"
# Empty bins would make PSI infinite; a fraction this small stands in for "never seen".
EPSILON = 1e-4
PREDICTION = "prediction"


class ProfileError(ValueError):
    """A reference profile that cannot be compared against; the message names the field."""


@dataclass(frozen=True)
class NumericProfile:
    """A numeric feature at training time: histogram edges and counts, quantiles, moments and a raw sample."""

    name: str
    bins: tuple[float, ...]
    counts: tuple[float, ...]
    sample: tuple[float, ...] = ()
    quantiles: tuple[float, ...] = ()
    mean: float | None = None
    std: float | None = None

    kind: Literal["numeric"] = "numeric"


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical feature at training time: each category's share of the rows."""

    name: str
    frequencies: Mapping[str, float]

    kind: Literal["categorical"] = "categorical"


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class Profile:
    """The reference profile a training run logs (`reference_profile.json`, format `mlplat-profile/1`)."""

    features: Mapping[str, FeatureProfile]
    prediction: NumericProfile | None
    rows: int

    @property
    def feature_names(self) -> list[str]:
        """Features in the order training saw them (the column order of a header-less request)."""
        return list(self.features)

    @classmethod
    def from_dict(cls, data: Any) -> "Profile":
        """Validate a parsed profile document; raises ProfileError naming the first bad field."""
        if not isinstance(data, Mapping):
            raise ProfileError("the profile must be a JSON object")
        if data.get("format") != PROFILE_FORMAT:
            raise ProfileError(f"format must be {PROFILE_FORMAT!r} (got {data.get('format')!r})")
        raw_features = data.get("features")
        if not isinstance(raw_features, Mapping) or not raw_features:
            raise ProfileError("features must be a non-empty object of feature name to profile")
        features = {str(name): _feature(str(name), spec) for name, spec in raw_features.items()}
        prediction = None
        if data.get("prediction") is not None:
            parsed = _feature(PREDICTION, data["prediction"])
            if not isinstance(parsed, NumericProfile):
                raise ProfileError("prediction must be a numeric profile")
            prediction = parsed
        rows = data.get("n", 0)
        if not isinstance(rows, int) or rows < 0:
            raise ProfileError(f"n must be a non-negative integer (got {rows!r})")
        return cls(features=features, prediction=prediction, rows=rows)


def _floats(name: str, key: str, value: Any, required: bool = True) -> tuple[float, ...]:
    if value is None and not required:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ProfileError(f"features.{name}.{key} must be a list of numbers")
    try:
        floats = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ProfileError(f"features.{name}.{key} must be a list of numbers") from None
    if not all(math.isfinite(v) for v in floats):
        raise ProfileError(f"features.{name}.{key} must hold finite numbers only")
    return floats


def _feature(name: str, spec: Any) -> FeatureProfile:
    if not isinstance(spec, Mapping):
        raise ProfileError(f"features.{name} must be an object")
    kind = spec.get("type")
    if kind == "categorical":
        freqs = spec.get("frequencies")
        if not isinstance(freqs, Mapping) or not freqs:
            raise ProfileError(f"features.{name}.frequencies must be a non-empty object of category to share")
        try:
            shares = {str(k): float(v) for k, v in freqs.items()}
        except (TypeError, ValueError):
            raise ProfileError(f"features.{name}.frequencies must map categories to numbers") from None
        if any(v < 0 or not math.isfinite(v) for v in shares.values()) or sum(shares.values()) <= 0:
            raise ProfileError(f"features.{name}.frequencies must be non-negative shares with a positive sum")
        return CategoricalProfile(name=name, frequencies=shares)
    if kind != "numeric":
        raise ProfileError(f"features.{name}.type must be 'numeric' or 'categorical' (got {kind!r})")
    bins = _floats(name, "bins", spec.get("bins"))
    counts = _floats(name, "counts", spec.get("counts"))
    if len(bins) < 2 or len(counts) != len(bins) - 1:
        raise ProfileError(
            f"features.{name} needs k+1 bin edges for k counts (got {len(bins)} edges, {len(counts)} counts)"
        )
    if any(b > a for a, b in zip(bins[1:], bins[:-1], strict=True)):
        raise ProfileError(f"features.{name}.bins must be non-decreasing")
    if sum(counts) <= 0 or min(counts) < 0:
        raise ProfileError(f"features.{name}.counts must be non-negative with a positive sum")
    mean, std = spec.get("mean"), spec.get("std")
    return NumericProfile(
        name=name,
        bins=bins,
        counts=counts,
        sample=_floats(name, "sample", spec.get("sample"), required=False),
        quantiles=_floats(name, "quantiles", spec.get("quantiles"), required=False),
        mean=float(mean) if isinstance(mean, int | float) else None,
        std=float(std) if isinstance(std, int | float) else None,
    )


@dataclass(frozen=True)
class Thresholds:
    """When a shift counts as drift: PSI at or over `psi` and the test's p-value under `p_value`."""

    psi: float = 0.2
    p_value: float = 0.01
    # Below this many captured rows PSI swings to 5-8 on every feature for no reason: no verdict is given.
    min_records: int = 50


@dataclass(frozen=True)
class Distribution:
    """Reference and current shares per bin (numeric) or category, as compared; `labels` name the bins."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison: sizes, PSI, the test that backs it, and the verdict."""

    feature: str
    kind: Literal["numeric", "categorical"]
    rows: int
    psi: float
    test: Literal["ks", "chi2"]
    statistic: float | None
    p_value: float | None
    drifted: bool
    distribution: Distribution
    new_categories: tuple[str, ...] = ()
    invalid: int = 0
    reference_mean: float | None = None
    current_mean: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """Every feature's comparison and the prediction's, under one set of thresholds."""

    thresholds: Thresholds
    rows: int
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None = None
    missing_features: tuple[str, ...] = ()
    extra_features: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def drifted_features(self) -> list[str]:
        """The input features that drifted, in profile order (the prediction apart); none on too few rows."""
        return [f.feature for f in self.features if f.drifted] if self.enough_data else []

    @property
    def enough_data(self) -> bool:
        """Whether the window holds `thresholds.min_records` rows, the fewest a verdict is given on."""
        return self.rows >= self.thresholds.min_records

    @property
    def drifted(self) -> bool:
        """True when any feature or the prediction drifted (never on too few rows)."""
        if not self.enough_data:
            return False
        return bool(self.drifted_features) or bool(self.prediction and self.prediction.drifted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "enough_data": self.enough_data,
            "drifted_features": self.drifted_features,
            "prediction_drifted": self.enough_data and bool(self.prediction and self.prediction.drifted),
            "rows": self.rows,
            "thresholds": asdict(self.thresholds),
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "missing_features": list(self.missing_features),
            "extra_features": list(self.extra_features),
            "notes": list(self.notes),
        }


def psi(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, epsilon: float = EPSILON
) -> float:
    """Population stability index of two share vectors over the same bins, empty bins smoothed to `epsilon`."""
    ref = np.clip(np.asarray(reference, dtype=float), epsilon, None)
    cur = np.clip(np.asarray(current, dtype=float), epsilon, None)
    ref, cur = ref / ref.sum(), cur / cur.sum()
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def bin_shares(edges: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Shares of `values` in the bins between `edges`, the two outer bins open so nothing falls outside."""
    interior = np.asarray(edges[1:-1], dtype=float)
    # side="right" puts a value on an edge into the bin to its right, as numpy.histogram does.
    index = np.searchsorted(interior, values, side="right")
    counts = np.bincount(index, minlength=len(edges) - 1).astype(float)
    return counts / max(len(values), 1)


def _numbers(values: Iterable[Any]) -> tuple[np.ndarray, int]:
    """The finite numbers among `values` and how many were not numbers (or not finite)."""
    out: list[float] = []
    invalid = 0
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError):
            invalid += 1
            continue
        if isinstance(value, bool) or not math.isfinite(number):
            invalid += 1
            continue
        out.append(number)
    return np.asarray(out, dtype=float), invalid


def _edge_labels(edges: Sequence[float]) -> tuple[str, ...]:
    labels = [f"[{a:.4g}, {b:.4g})" for a, b in itertools.pairwise(edges)]
    labels[0] = f"< {edges[1]:.4g}"
    labels[-1] = f">= {edges[-2]:.4g}"
    return tuple(labels)


def compare_numeric(profile: NumericProfile, values: Iterable[Any], thresholds: Thresholds) -> FeatureDrift:
    """PSI on the profile's bins and a two-sample KS test against its sample (PSI alone when it has none)."""
    current, invalid = _numbers(values)
    reference = np.asarray(profile.counts, dtype=float)
    reference = reference / reference.sum()
    shares = bin_shares(profile.bins, current)
    index = psi(reference, shares) if len(current) else 0.0
    statistic: float | None = None
    p_value: float | None = None
    if len(current) and profile.sample:
        from scipy import stats  # 0.6 s to import; every other `mlplat` command would pay it at start-up

        result = stats.ks_2samp(current, np.asarray(profile.sample, dtype=float))
        statistic, p_value = float(result.statistic), float(result.pvalue)
    significant = p_value is None or p_value < thresholds.p_value
    return FeatureDrift(
        feature=profile.name,
        kind="numeric",
        rows=len(current),
        psi=index,
        test="ks",
        statistic=statistic,
        p_value=p_value,
        drifted=bool(len(current)) and index >= thresholds.psi and significant,
        distribution=Distribution(
            labels=_edge_labels(profile.bins),
            reference=tuple(float(v) for v in reference),
            current=tuple(float(v) for v in shares),
        ),
        invalid=invalid,
        reference_mean=profile.mean,
        current_mean=float(current.mean()) if len(current) else None,
    )


def _category(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def compare_categorical(profile: CategoricalProfile, values: Iterable[Any], thresholds: Thresholds) -> FeatureDrift:
    """Chi-square goodness of fit against the training shares, PSI over categories, and unseen categories named."""
    observed = Counter(c for c in (_category(v) for v in values) if c is not None)
    rows = sum(observed.values())
    total = sum(profile.frequencies.values())
    known = [c for c, share in profile.frequencies.items() if share > 0]
    new = tuple(sorted(c for c in observed if c not in known))
    labels = tuple(known) + new
    reference = [profile.frequencies.get(c, 0.0) / total for c in labels]
    current = [observed.get(c, 0) / rows if rows else 0.0 for c in labels]
    statistic: float | None = None
    p_value: float | None = None
    seen_known = sum(observed[c] for c in known)
    if seen_known and len(known) > 1:
        expected = np.asarray([profile.frequencies[c] for c in known], dtype=float)
        expected = expected / expected.sum() * seen_known
        from scipy import stats

        result = stats.chisquare(np.asarray([observed[c] for c in known], dtype=float), expected)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    index = psi(reference, current) if rows else 0.0
    shifted = index >= thresholds.psi and (p_value is None or p_value < thresholds.p_value)
    return FeatureDrift(
        feature=profile.name,
        kind="categorical",
        rows=rows,
        psi=index,
        test="chi2",
        statistic=statistic,
        p_value=p_value,
        drifted=bool(new) or (bool(rows) and shifted),
        distribution=Distribution(labels=labels, reference=tuple(reference), current=tuple(current)),
        new_categories=new,
    )


def compare(
    profile: Profile,
    columns: Mapping[str, Sequence[Any]],
    predictions: Sequence[Any] | None,
    thresholds: Thresholds,
) -> DriftReport:
    """Compare every profiled feature present in `columns` (and the predictions, when both sides have them)."""
    results: list[FeatureDrift] = []
    missing: list[str] = []
    for name, feature in profile.features.items():
        if name not in columns:
            missing.append(name)
            continue
        if isinstance(feature, NumericProfile):
            results.append(compare_numeric(feature, columns[name], thresholds))
        else:
            results.append(compare_categorical(feature, columns[name], thresholds))
    prediction = None
    if profile.prediction is not None and predictions:
        prediction = compare_numeric(profile.prediction, predictions, thresholds)
    rows = max((len(v) for v in columns.values()), default=0)
    extra = tuple(sorted(c for c in columns if c not in profile.features))
    return DriftReport(
        thresholds=thresholds,
        rows=rows,
        features=tuple(results),
        prediction=prediction,
        missing_features=tuple(missing),
        extra_features=extra,
    )
