"""The drift statistics against a profile of the abalone data set."""

import math
import re

import numpy as np
import pytest
from monitor_support import FEATURES, abalone, build_profile, numeric_profile, shifted

from mlplat.monitor import drift
from mlplat.monitor.drift import Profile, ProfileError, Thresholds

THRESHOLDS = Thresholds(psi=0.2, p_value=0.01)


@pytest.fixture(scope="module")
def profile() -> Profile:
    return Profile.from_dict(build_profile(abalone(), prediction=abalone()["Rings"].astype(float).to_numpy()))


def _columns(frame):
    return {name: frame[name].tolist() for name in FEATURES}


def test_psi_of_identical_shares_is_zero() -> None:
    assert drift.psi([0.25, 0.25, 0.5], [0.25, 0.25, 0.5]) == 0.0


def test_psi_matches_the_textbook_formula() -> None:
    expected = (0.6 - 0.5) * math.log(0.6 / 0.5) + (0.4 - 0.5) * math.log(0.4 / 0.5)
    assert drift.psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(expected, rel=1e-12)


def test_psi_smooths_an_empty_bin_with_epsilon_instead_of_infinity() -> None:
    value = drift.psi([0.5, 0.5, 0.0], [0.5, 0.4, 0.1])
    assert math.isfinite(value)
    assert value == pytest.approx(
        sum((c - r) * math.log(c / r) for r, c in zip(*_renormalised([0.5, 0.5, 1e-4], [0.5, 0.4, 0.1]), strict=True))
    )


def _renormalised(a, b):
    return [x / sum(a) for x in a], [x / sum(b) for x in b]


def test_values_outside_the_reference_range_fall_into_the_open_outer_bins() -> None:
    shares = drift.bin_shares([0.0, 1.0, 2.0, 3.0], np.array([-5.0, 0.5, 1.0, 2.5, 99.0]))
    assert shares.tolist() == [0.4, 0.2, 0.4]


def test_captures_drawn_from_the_training_distribution_report_no_drift(profile: Profile) -> None:
    sample = abalone().sample(n=400, random_state=7)
    report = drift.compare(profile, _columns(sample), sample["Rings"].astype(float).tolist(), THRESHOLDS)
    assert report.drifted_features == []
    assert report.drifted is False
    assert report.rows == 400
    assert [f.feature for f in report.features] == FEATURES
    assert all(f.psi < 0.1 for f in report.features)


def test_a_mean_shift_in_two_features_and_a_new_category_report_exactly_those_features(profile: Profile) -> None:
    sample = shifted(abalone().sample(n=400, random_state=11))
    report = drift.compare(profile, _columns(sample), None, THRESHOLDS)
    assert report.drifted_features == ["Sex", "Length", "WholeWeight"]
    sex = next(f for f in report.features if f.feature == "Sex")
    assert sex.new_categories == ("U",)
    assert sex.distribution.labels[-1] == "U"
    assert sex.distribution.current[-1] == pytest.approx(80 / 400)
    length = next(f for f in report.features if f.feature == "Length")
    assert length.test == "ks"
    assert length.p_value is not None and length.p_value < 1e-10
    assert length.psi > 0.2


def test_a_new_category_alone_is_drift_even_when_its_share_is_tiny(profile: Profile) -> None:
    values = ["M"] * 36 + ["F"] * 31 + ["I"] * 32 + ["Z"]
    result = drift.compare_categorical(profile.features["Sex"], values, THRESHOLDS)  # type: ignore[arg-type]
    assert result.drifted is True
    assert result.new_categories == ("Z",)
    assert result.p_value is not None and result.p_value > 0.5


def test_a_category_share_shift_is_found_by_chi_square(profile: Profile) -> None:
    values = ["I"] * 300 + ["M"] * 50 + ["F"] * 50
    result = drift.compare_categorical(profile.features["Sex"], values, THRESHOLDS)  # type: ignore[arg-type]
    assert result.drifted is True
    assert result.new_categories == ()
    assert result.test == "chi2"
    assert result.p_value is not None and result.p_value < 1e-20


def test_a_small_shift_on_a_large_window_is_significant_but_not_drift(profile: Profile) -> None:
    frame = abalone()
    values = (frame["Length"] + 0.03).tolist()
    result = drift.compare_numeric(profile.features["Length"], values, THRESHOLDS)  # type: ignore[arg-type]
    assert result.p_value is not None and result.p_value < 0.01
    assert result.psi < 0.2
    assert result.drifted is False


def test_prediction_drift_is_reported_apart_from_the_features(profile: Profile) -> None:
    sample = abalone().sample(n=300, random_state=3)
    report = drift.compare(profile, _columns(sample), (sample["Rings"] + 6).tolist(), THRESHOLDS)
    assert report.drifted_features == []
    assert report.prediction is not None and report.prediction.drifted is True
    assert report.drifted is True


def test_non_numeric_values_in_a_numeric_feature_are_counted_and_left_out() -> None:
    profile = drift.NumericProfile(name="x", bins=(0.0, 1.0, 2.0), counts=(5.0, 5.0))
    result = drift.compare_numeric(profile, [0.5, "oops", None, float("nan"), 1.5], THRESHOLDS)
    assert result.rows == 2
    assert result.invalid == 3
    assert result.p_value is None


def test_a_feature_missing_from_the_capture_is_listed_not_compared(profile: Profile) -> None:
    sample = abalone().sample(n=50, random_state=1)
    columns = {name: sample[name].tolist() for name in FEATURES if name != "Height"}
    columns["Colour"] = ["red"] * 50
    report = drift.compare(profile, columns, None, THRESHOLDS)
    assert report.missing_features == ("Height",)
    assert report.extra_features == ("Colour",)
    assert "Height" not in [f.feature for f in report.features]


def test_the_report_serialises_to_plain_json_types(profile: Profile) -> None:
    import json

    sample = shifted(abalone().sample(n=100, random_state=5))
    document = json.loads(json.dumps(drift.compare(profile, _columns(sample), None, THRESHOLDS).to_dict()))
    assert document["drifted"] is True
    assert document["thresholds"] == {"psi": 0.2, "p_value": 0.01, "min_records": 50}
    assert document["features"][0]["feature"] == "Sex"
    assert document["features"][0]["new_categories"] == ["U"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "the profile must be a JSON object"),
        ({"format": "other/1", "features": {}}, "format must be 'mlplat-profile/1' (got 'other/1')"),
        ({"format": "mlplat-profile/1", "features": {}}, "features must be a non-empty object"),
        (
            {"format": "mlplat-profile/1", "features": {"a": {"type": "text"}}},
            "features.a.type must be 'numeric' or 'categorical' (got 'text')",
        ),
        (
            {"format": "mlplat-profile/1", "features": {"a": {"type": "numeric", "bins": [0, 1], "counts": [1, 2]}}},
            "features.a needs k+1 bin edges for k counts (got 2 edges, 2 counts)",
        ),
        (
            {"format": "mlplat-profile/1", "features": {"a": {"type": "categorical", "frequencies": {}}}},
            "features.a.frequencies must be a non-empty object",
        ),
    ],
)
def test_a_malformed_profile_is_rejected_naming_the_field(document: object, message: str) -> None:
    with pytest.raises(ProfileError, match="^" + re.escape(message)):
        Profile.from_dict(document)


def test_the_profile_keeps_the_training_column_order() -> None:
    document = build_profile(abalone())
    document["prediction"] = numeric_profile([1.0, 2.0, 3.0])
    assert Profile.from_dict(document).feature_names == FEATURES


def test_the_profile_training_logs_is_read_and_reports_no_drift_on_its_own_data() -> None:
    from training import profile as training_profile

    frame = abalone()
    numeric = [c for c in FEATURES if c != "Sex"]
    document = training_profile.reference_profile(
        frame[FEATURES], numeric, ["Sex"], frame["Rings"].to_numpy(dtype=float)
    )
    parsed = Profile.from_dict(document)
    assert parsed.feature_names == FEATURES
    length = parsed.features["Length"]
    assert isinstance(length, drift.NumericProfile) and len(length.counts) == len(length.bins) - 1
    sample = frame.sample(n=300, random_state=4)
    report = drift.compare(parsed, _columns(sample), sample["Rings"].astype(float).tolist(), THRESHOLDS)
    assert (report.drifted_features, report.drifted) == ([], False)
    shifted_report = drift.compare(parsed, _columns(shifted(sample)), None, THRESHOLDS)
    assert shifted_report.drifted_features == ["Sex", "Length", "WholeWeight"]
