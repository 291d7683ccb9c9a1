"""The per-feature statistics equal SciPy's, and PSI gives the values its formula gives."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from scipy.spatial import distance

from cairn.monitoring import statistics as S

# small integer values make ties within and across the samples; floats make none


def _arrays(max_size):
    size = st.integers(1, max_size)
    return st.one_of(
        arrays(np.float64, size, elements=st.integers(-3, 3).map(float)),
        arrays(np.float64, size, elements=st.floats(-1e6, 1e6, allow_nan=False, width=64)),
    )


_samples = _arrays(200)
_small = _arrays(60)


@settings(max_examples=120, deadline=None)
@given(a=_samples, b=_samples)
def test_ks_and_wasserstein_equal_scipys(a, b):
    d, w1 = S.ks_wasserstein(np.sort(a), np.sort(b))
    # method="asymp": the statistic is the same, SciPy's exact p-value is slow to compute
    assert d == pytest.approx(stats.ks_2samp(a, b, method="asymp").statistic, abs=1e-12)
    assert w1 == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(a=_small, b=_small)
def test_small_samples_take_scipys_p_value(a, b):
    d, _ = S.ks_wasserstein(np.sort(a), np.sort(b))
    assert S.ks_pvalue(np.sort(a), np.sort(b), d) == stats.ks_2samp(a, b).pvalue


@pytest.mark.parametrize("shift", [0.0, 0.02, 0.04, 0.06])
@pytest.mark.parametrize("sizes", [(20_000, 15_000), (60_000, 60_000)])
def test_large_samples_p_value_is_close_to_scipys_asymptotic_one(shift, sizes):
    rng = np.random.default_rng(int(shift * 100) + sizes[0])
    a = np.sort(rng.normal(0.0, 1.0, sizes[0]))
    b = np.sort(rng.normal(shift, 1.0, sizes[1]))
    d, _ = S.ks_wasserstein(a, b)
    ours = S.ks_pvalue(a, b, d)
    theirs = stats.ks_2samp(a, b, method="asymp").pvalue
    if theirs > 1e-4:
        assert ours == pytest.approx(theirs, rel=0.01)
    else:
        assert ours < 2e-4


def test_psi_of_known_proportions():
    p = np.array([0.5, 0.5])
    q = np.array([0.25, 0.75])
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert S.psi(p, q) == pytest.approx(expected)
    assert S.psi(p, p) == 0.0
    # an empty bin counts as epsilon, not as zero (which would make PSI infinite)
    eps = 1e-4
    empty = (0.5 - eps) * math.log(0.5 / eps) + (0.5 - 0.5) * 0
    assert S.psi(np.array([0.0, 1.0]), np.array([0.5, 0.5]), eps) == pytest.approx(
        empty + (0.5 - 1.0) * math.log(0.5 / 1.0)
    )


def test_numeric_bins_are_the_reference_deciles():
    ref = np.arange(1000, dtype=np.float64)  # deciles at 99.9, 199.8, ...
    edges, p, q = S.numeric_bins(ref, np.sort(ref + 100.0), 10)
    assert len(edges) == 9
    assert p == pytest.approx(np.full(10, 0.1))
    # shifting by a tenth of the range moves one decile's mass into the open last bin
    assert q[0] == 0.0 and q[-1] == pytest.approx(0.2)
    _, _, q2 = S.numeric_bins(ref, np.sort(ref), 10)
    assert S.psi(p, q2) == 0.0


def test_numeric_bins_merge_equal_edges():
    ref = np.sort(np.array([0.0] * 900 + list(range(1, 101)), dtype=np.float64))
    edges, p, q = S.numeric_bins(ref, ref, 10)
    assert len(edges) == len(set(edges.tolist())) < 9
    assert p.sum() == pytest.approx(1.0) and p[0] == pytest.approx(0.9)


def test_categorical_tests_are_scipys():
    ref = np.array([50.0, 30.0, 20.0])
    cur = np.array([20.0, 30.0, 50.0])
    chi2, p, js, psi = S.categorical_tests(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert chi2 == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)
    assert js == pytest.approx(distance.jensenshannon(ref / 100, cur / 100, base=2))
    assert psi == pytest.approx(S.psi(ref / 100, cur / 100))
    assert S.categorical_tests(np.array([5.0]), np.array([7.0])) == (0.0, 1.0, 0.0, 0.0)


@settings(max_examples=50, deadline=None)
@given(a=_samples)
def test_sorted_quantiles_equal_numpys(a):
    q = [0.0, 0.1, 0.25, 0.5, 0.9, 1.0]
    a = np.sort(a)
    assert S.sorted_quantiles(a, q) == pytest.approx(np.quantile(a, q), rel=1e-12, abs=1e-9)
