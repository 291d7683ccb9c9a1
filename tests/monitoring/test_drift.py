"""Drift decisions: no false alarms beyond the configured level on samples of one
distribution, and drift found on genuine shifts built from scikit-learn's real data sets."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_wine

from cairn.monitoring import (
    DriftConfig,
    DriftInputError,
    adjust_p_values,
    compute_drift,
    infer_kinds,
    prediction_drift,
)

SEEDS = 200
ALPHA = 0.05


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.copy()
    frame["diagnosis"] = y.map({0: "malignant", 1: "benign"})
    return frame


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    X, y = load_wine(return_X_y=True, as_frame=True)
    frame = X.copy()
    frame["cultivar"] = y
    return frame


def _halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    return frame.iloc[order[:half]], frame.iloc[order[half:]]


def _plausible_rate(count: int, trials: int, level: float, tests: int = 1) -> bool:
    """False unless ``count`` alarms in ``trials`` would be surprising (p < 0.001/tests,
    one-sided) for a true alarm rate of ``level``."""
    return stats.binomtest(count, trials, level, alternative="greater").pvalue > 0.001 / tests


def test_false_alarm_rate_is_at_most_alpha_across_seeds(cancer):
    """Random halves of one real data set are samples of one distribution: per feature,
    uncorrected tests alarm in at most alpha of the seeds; with Bonferroni or FDR, the
    chance that any feature alarms (the dataset-level false alarm) is at most alpha."""
    columns = ["mean radius", "mean texture", "mean smoothness", "worst area", "diagnosis"]
    per_feature = np.zeros(len(columns), dtype=int)
    any_alarm = {"bonferroni": 0, "fdr": 0, "none": 0}
    for seed in range(SEEDS):
        ref, cur = _halves(cancer, seed)
        result = compute_drift(
            ref, cur, method="test", correction="none", columns=columns, workers=1
        )
        p = np.array([f.p_value for f in result.features])
        per_feature += p < ALPHA
        for correction in any_alarm:
            any_alarm[correction] += bool((adjust_p_values(p, correction) < ALPHA).any())
    for count in per_feature:
        assert _plausible_rate(int(count), SEEDS, ALPHA, tests=len(columns)), per_feature
    assert _plausible_rate(any_alarm["bonferroni"], SEEDS, ALPHA), any_alarm
    assert _plausible_rate(any_alarm["fdr"], SEEDS, ALPHA), any_alarm
    # without a correction, five features alarm together far more often than alpha
    assert any_alarm["none"] > any_alarm["bonferroni"]


def test_no_drift_on_large_samples_of_one_distribution(cancer):
    """Above 1000 reference rows the distances decide (Evidently's default); bootstrap
    samples of one data set stay under 0.1."""
    rng = np.random.default_rng(7)
    ref = cancer.iloc[rng.integers(0, len(cancer), 5000)]
    cur = cancer.iloc[rng.integers(0, len(cancer), 5000)]
    result = compute_drift(ref, cur)
    assert result.method == "distance"
    assert result.drifted_features == [] and not result.drifted
    assert max(f.distance for f in result.features) < 0.1


def test_a_held_out_class_is_drift(wine):
    ref = wine[wine.cultivar < 2]
    cur = wine[wine.cultivar == 2]
    result = compute_drift(ref, cur)
    assert result.method == "test" and result.drifted
    assert result.share_drifted >= 0.5
    assert result.feature("cultivar").kind == "categorical"
    assert result.feature("cultivar").current["unseen"] == ["2"]
    assert {"flavanoids", "color_intensity", "hue"} <= set(result.drifted_features)


def test_a_class_mix_change_is_drift(cancer):
    """Reference: the natural mix (37% malignant); current: 90% malignant."""
    rng = np.random.default_rng(3)
    malignant = cancer[cancer.diagnosis == "malignant"]
    benign = cancer[cancer.diagnosis == "benign"]
    ref = cancer.sample(2000, replace=True, random_state=1)
    cur = pd.concat(
        [
            malignant.iloc[rng.integers(0, len(malignant), 1800)],
            benign.iloc[rng.integers(0, len(benign), 200)],
        ]
    )
    result = compute_drift(ref, cur)
    assert result.method == "distance" and result.drifted
    diagnosis = result.feature("diagnosis")
    assert diagnosis.drifted and diagnosis.distance > 0.1 and diagnosis.psi_band == "shifted"
    assert result.feature("worst perimeter").drifted
    # the same windows judged by PSI and by the tests agree that they drifted
    assert compute_drift(ref, cur, method="psi").feature("diagnosis").drifted
    assert compute_drift(ref, cur, method="test").feature("worst perimeter").drifted


def test_a_mean_shift_and_a_scale_change_are_found_in_their_features_only(cancer):
    ref, cur = _halves(cancer, 11)
    cur = cur.copy()
    radius = cancer["mean radius"]
    cur["mean radius"] = cur["mean radius"] + radius.std()
    texture = cur["mean texture"]
    cur["mean texture"] = texture.mean() + 2.0 * (texture - texture.mean())
    result = compute_drift(ref, cur, method="test")
    assert set(result.drifted_features) == {"mean radius", "mean texture"}
    assert not result.drifted  # 2 of 31 features, below Evidently's 50% share
    assert compute_drift(ref, cur, method="test", drift_share=0.0).drifted
    assert result.feature("mean radius").distance > 0.5
    # the scale change keeps the mean: the KS test sees it in the tails
    assert result.feature("mean texture").p_adjusted < ALPHA


def test_a_category_mix_change_on_many_rows(cancer):
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"diagnosis": rng.choice(cancer.diagnosis.to_numpy(), 10_000)})
    shifted = np.where(rng.random(10_000) < 0.2, "malignant", ref.diagnosis.to_numpy())
    result = compute_drift(ref, pd.DataFrame({"diagnosis": shifted}))
    feature = result.feature("diagnosis")
    assert feature.method == "distance" and feature.drifted
    assert feature.test == "chi2" and feature.p_value < 1e-10


def test_corrections_change_decisions_as_documented(wine):
    """Bonferroni's drifting set is inside FDR's, which is inside the uncorrected one; on
    these windows all three differ, as the p-values put features between the cut-offs."""
    ref = wine[wine.cultivar < 2]
    cur = wine[wine.cultivar > 0]
    drifted = {
        c: set(compute_drift(ref, cur, method="test", correction=c).drifted_features)
        for c in ("bonferroni", "fdr", "none")
    }
    assert drifted["bonferroni"] <= drifted["fdr"] <= drifted["none"]
    assert drifted["bonferroni"] != drifted["none"]
    p = [0.001, 0.012, 0.02, 0.03, 0.045, 0.6]
    assert adjust_p_values(p, "bonferroni") == pytest.approx([0.006, 0.072, 0.12, 0.18, 0.27, 1])
    assert adjust_p_values(p, "fdr") == pytest.approx([0.006, 0.036, 0.04, 0.045, 0.054, 0.6])
    assert (adjust_p_values(p, "none") < ALPHA).sum() == 5
    assert (adjust_p_values(p, "fdr") < ALPHA).sum() == 4
    assert (adjust_p_values(p, "bonferroni") < ALPHA).sum() == 1


def test_kinds_are_inferred_from_the_reference_and_can_be_overridden():
    frame = pd.DataFrame(
        {
            "x": np.linspace(0, 1, 50),
            "few": np.arange(50) % 3,
            "flag": np.arange(50) % 2 == 0,
            "name": ["a", "b"] * 25,
            "cat": pd.Series(["u", "v"] * 25, dtype="category"),
        }
    )
    assert infer_kinds(frame) == {
        "x": "numeric",
        "few": "categorical",
        "flag": "categorical",
        "name": "categorical",
        "cat": "categorical",
    }
    result = compute_drift(frame, frame, kinds={"few": "numeric"})
    assert {f.name: f.kind for f in result.features} == {
        "x": "numeric",
        "few": "numeric",
        "flag": "categorical",
        "name": "categorical",
        "cat": "categorical",
    }
    assert not result.drifted and result.share_drifted == 0.0


def test_missing_values_are_dropped_and_counted():
    ref = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0], "c": list("abcabc") + [None]})
    cur = pd.DataFrame({"x": [np.nan, np.nan, 3.0, 4.0, 5.0, 6.0, 7.0], "c": list("abcabca")})
    result = compute_drift(ref, cur)
    assert result.feature("x").reference["missing"] == 1
    assert result.feature("x").current["missing"] == 2
    assert result.feature("x").current["count"] == 5
    assert result.feature("x").reference["min"] == 1.0
    assert result.feature("c").reference["missing"] == 1


def test_bad_input_raises_drift_input_error():
    frame = pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10.0)})
    with pytest.raises(DriftInputError):
        compute_drift(frame, frame[["x"]])
    with pytest.raises(DriftInputError):
        compute_drift(frame, frame.iloc[:0])
    with pytest.raises(DriftInputError):
        compute_drift(frame, frame.assign(y=np.nan))
    with pytest.raises(DriftInputError):
        compute_drift(frame, frame.assign(x=["a"] * 10))
    with pytest.raises(DriftInputError):
        compute_drift(frame, frame, correction="holm")
    with pytest.raises(DriftInputError):
        compute_drift(frame, frame, threshold=0.2)
    with pytest.raises(DriftInputError):
        DriftConfig(kinds={"x": "text"})
    # comparing only the columns both have works
    assert compute_drift(frame, frame[["x"]], columns=["x"]).features[0].name == "x"


def test_json_round_trips_the_result_and_the_config(wine):
    result = compute_drift(wine[wine.cultivar < 2], wine[wine.cultivar > 0], correction="fdr")
    data = json.loads(result.to_json())
    assert data["drifted"] is result.drifted
    assert data["n_drifted"] == len(result.drifted_features)
    assert [f["name"] for f in data["features"]] == [f.name for f in result.features]
    assert data["features"][0]["reference"]["count"] == 130
    assert DriftConfig.from_dict(data["config"]) == result.config


def test_prediction_drift_treats_labels_as_categories(wine):
    ref = wine.cultivar[wine.cultivar < 2].to_numpy()
    cur = wine.cultivar[wine.cultivar > 0].to_numpy()
    result = prediction_drift(ref, cur)
    assert result.features[0].name == "prediction"
    assert result.features[0].kind == "categorical" and result.drifted
    same = prediction_drift(list(ref), list(ref))
    assert not same.drifted
    probabilities = prediction_drift(
        [[0.1, 0.9], [0.8, 0.2]] * 30, [[0.7, 0.3], [0.8, 0.2]] * 30, method="test"
    )
    assert [f.name for f in probabilities.features] == ["prediction_0", "prediction_1"]
    assert probabilities.features[0].kind == "numeric"
