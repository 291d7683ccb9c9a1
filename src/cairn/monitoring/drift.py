"""Drift of a current window against a reference, per feature and for the whole dataset.

``compute_drift(reference, current, config)`` compares two pandas DataFrames column by
column and returns a ``DriftResult`` of ``FeatureDrift`` values. Every statistic below is
computed for every feature; ``config.method`` says which one *decides* drift:

==============  ========================================  ===================================
kind            statistics (always computed)              decision by method
==============  ========================================  ===================================
numeric         Kolmogorov-Smirnov D and p-value;         test: p (corrected) < alpha;
                Wasserstein-1 / std of the reference;     distance: W1/std >= threshold;
                PSI over the reference's deciles          psi: PSI >= psi_threshold
categorical     chi-square (2 x k homogeneity) and p;     test: p (corrected) < alpha;
                Jensen-Shannon distance (base 2);         distance: JS >= threshold;
                PSI over the categories                   psi: PSI >= psi_threshold
==============  ========================================  ===================================

Defaults and where they come from:

- ``method="auto"``: the statistical tests when the reference has <= ``small_sample``
  (1000) rows, the distances above. This is Evidently's default drift algorithm
  (docs-old.evidentlyai.com/reference/data-drift-algorithm; release notes of v0.1.50,
  "Automatic Stattest Selection": KS / chi-square with a 0.95 confidence level for
  <= 1000 reference rows; Wasserstein distance (normed) / Jensen-Shannon with threshold
  0.1 above). With many rows every tiny difference is "significant", hence distances.
- ``alpha=0.05``: Evidently's 0.95 confidence level; Alibi Detect's ``KSDrift(p_val=0.05)``
  (docs.seldon.ai/alibi-detect/api-reference/cd/ks).
- ``correction="bonferroni"``: Alibi Detect's ``KSDrift(correction="bonferroni")``; its
  other choice, ``"fdr"``, is the Benjamini-Hochberg procedure (``alpha`` is then the
  q-value), here ``scipy.stats.false_discovery_control(method="bh")``. ``"none"`` tests each
  feature at ``alpha`` (Evidently's behaviour). The correction runs across the features of
  one comparison: Bonferroni multiplies each p-value by their number (capped at 1).
- ``distance_threshold=0.1``: Evidently's ``default_threshold`` for ``wasserstein``
  (normed) and ``jensenshannon``. Wasserstein is divided by the reference's standard
  deviation (population, ddof=0) floored at 0.001, as Evidently's
  ``wasserstein_distance_norm``. Jensen-Shannon uses base 2 (so it lies in [0, 1]);
  Evidently passes SciPy's default natural base, whose values are 1/sqrt(ln 2) = 0.83 times
  the base-2 ones, so at the same 0.1 cairn flags slightly smaller shifts
  (``js_base=math.e`` gives Evidently's numbers).
- ``psi_threshold=0.1`` and ``psi_bins=10``: Evidently's ``psi`` test defaults to 0.1; the
  credit-scoring convention (Lewis, "An Introduction to Credit Scoring") reads < 0.1 as
  stable, 0.1-0.2 (0.25 in some texts) as a moderate and >= 0.2 as a significant shift
  (``FeatureDrift.psi_band``). Ten quantile bins (deciles) of the reference are the classic
  PSI binning; ``psi_epsilon=1e-4`` replaces an empty bin's proportion, Evidently's fill value.
- ``drift_share=0.5``: the dataset drifts when at least half of the features drift,
  Evidently's ``DataDriftPreset`` (docs.evidentlyai.com/metrics/preset_data_drift). Set
  ``0`` for Alibi Detect's rule (any feature drifting means drift).
- ``max_categories=5``: a numeric column with at most 5 distinct reference values is
  treated as categorical (Evidently's ``n_unique <= 5``; Evidently counts both sides, cairn
  counts the reference so that a window cannot change the test). Booleans, strings,
  ``category`` and object columns are categorical; datetimes are numeric (nanoseconds).
  ``kinds={"col": "numeric"}`` overrides the inference.

Missing values (NaN, None) are dropped from both sides before testing and counted in the
summaries. A column with no value on one side cannot be compared: ``DriftInputError``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cairn.monitoring import statistics
from cairn.monitoring.errors import DriftInputError

__all__ = [
    "CORRECTIONS",
    "KINDS",
    "METHODS",
    "DriftConfig",
    "DriftResult",
    "FeatureDrift",
    "adjust_p_values",
    "compute_drift",
    "infer_kinds",
    "prediction_drift",
]

METHODS = ("auto", "test", "distance", "psi")
CORRECTIONS = ("bonferroni", "fdr", "none")
KINDS = ("numeric", "categorical")
_TOP = 10  # categories kept in a summary


@dataclass(frozen=True)
class DriftConfig:
    """How drift is decided; every field's default and its source are in the module
    docstring. Raises DriftInputError for an unknown method, correction or kind, or a
    value out of range."""

    method: str = "auto"
    alpha: float = 0.05
    correction: str = "bonferroni"
    distance_threshold: float = 0.1
    psi_threshold: float = 0.1
    psi_bins: int = 10
    psi_epsilon: float = 1e-4
    js_base: float = 2.0
    drift_share: float = 0.5
    small_sample: int = 1000
    max_categories: int = 5
    kinds: Mapping[str, str] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise DriftInputError(f"method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.correction not in CORRECTIONS:
            raise DriftInputError(
                f"correction {self.correction!r}: use one of {', '.join(CORRECTIONS)}"
            )
        if not 0 < self.alpha < 1:
            raise DriftInputError(f"alpha {self.alpha}: a probability between 0 and 1")
        if not 0 <= self.drift_share <= 1:
            raise DriftInputError(f"drift_share {self.drift_share}: a share between 0 and 1")
        if self.psi_bins < 2:
            raise DriftInputError(f"psi_bins {self.psi_bins}: at least 2")
        if not 0 < self.psi_epsilon < 1:
            raise DriftInputError(f"psi_epsilon {self.psi_epsilon}: between 0 and 1")
        if self.js_base <= 1:
            raise DriftInputError(f"js_base {self.js_base}: a logarithm base above 1")
        bad = {k: v for k, v in self.kinds.items() if v not in KINDS}
        if bad:
            raise DriftInputError(f"kinds {bad}: each kind is 'numeric' or 'categorical'")
        object.__setattr__(self, "kinds", MappingProxyType(dict(self.kinds)))
        if self.columns is not None:
            object.__setattr__(self, "columns", tuple(self.columns))

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["kinds"] = dict(self.kinds)
        out["columns"] = list(self.columns) if self.columns is not None else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftConfig:
        """The inverse of ``to_dict``; unknown keys raise DriftInputError."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise DriftInputError(f"unknown drift settings {unknown}: known are {sorted(names)}")
        return cls(**dict(data))


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison.

    ``test`` is ``"ks"`` (numeric) or ``"chi2"`` (categorical), ``statistic`` its value (KS
    D in [0, 1], or chi-square) and ``p_value`` its raw p-value; ``p_adjusted`` is the
    p-value after the configured correction across features. ``distance_name`` is
    ``"wasserstein_norm"`` (W1 / reference std) or ``"jensenshannon"``. ``method`` is what
    decided ``drifted`` by comparing ``score`` with ``threshold``. ``reference`` and
    ``current`` are summaries: count, missing and mean/std/min/quartiles/max (numeric) or
    the top categories' shares and categories unseen in the reference (categorical).
    """

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float
    p_adjusted: float
    distance_name: str
    distance: float
    psi: float
    method: str
    threshold: float
    drifted: bool
    reference: Mapping[str, Any]
    current: Mapping[str, Any]

    @property
    def score(self) -> float:
        """The number compared with ``threshold``: the corrected p-value (drift when below),
        the distance or the PSI (drift when at or above)."""
        return {"test": self.p_adjusted, "distance": self.distance, "psi": self.psi}[self.method]

    @property
    def psi_band(self) -> str:
        """``"stable"`` (< 0.1), ``"moderate"`` (< 0.2) or ``"shifted"``: the
        credit-scoring reading of PSI, whatever decided ``drifted``."""
        return "stable" if self.psi < 0.1 else "moderate" if self.psi < 0.2 else "shifted"


@dataclass(frozen=True)
class DriftResult:
    """All features of one comparison, in column order, and the dataset-level verdict:
    ``drifted`` when at least one feature drifts and ``share_drifted >= config.drift_share``.
    ``method`` is the resolved decision method (``auto`` becomes test or distance)."""

    features: tuple[FeatureDrift, ...]
    share_drifted: float
    drifted: bool
    config: DriftConfig
    n_reference: int
    n_current: int
    method: str

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def feature(self, name: str) -> FeatureDrift:
        """The feature called ``name``; KeyError when there is none."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "share_drifted": self.share_drifted,
            "n_drifted": len(self.drifted_features),
            "n_features": len(self.features),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "method": self.method,
            "config": self.config.to_dict(),
            "features": [
                {**asdict(f), "reference": dict(f.reference), "current": dict(f.current)}
                for f in self.features
            ],
        }

    def to_json(self, indent: int | None = None) -> str:
        """``to_dict`` as JSON (the CLI's ``--raw``). Non-finite floats become null."""
        return json.dumps(finite(self.to_dict()), indent=indent, allow_nan=False)


def adjust_p_values(p_values: Sequence[float], correction: str) -> np.ndarray:
    """P-values corrected for testing ``len(p_values)`` features at once: ``"bonferroni"``
    (``min(1, p * k)``), ``"fdr"`` (Benjamini-Hochberg adjusted p-values,
    ``scipy.stats.false_discovery_control``) or ``"none"``. A feature drifts when its
    adjusted p-value is below alpha, which for "fdr" controls the false discovery rate at
    alpha. Raises DriftInputError for another name."""
    p = np.asarray(p_values, dtype=np.float64)
    if correction not in CORRECTIONS:
        raise DriftInputError(f"correction {correction!r}: use one of {', '.join(CORRECTIONS)}")
    if len(p) == 0 or correction == "none":
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(p * len(p), 1.0)
    return np.asarray(stats.false_discovery_control(p, method="bh"), dtype=np.float64)


def infer_kinds(frame: pd.DataFrame, max_categories: int = 5) -> dict[str, str]:
    """``{column: "numeric" | "categorical"}`` by the rules in the module docstring."""
    kinds = {}
    for name in frame.columns:
        col = frame[name]
        if _numeric_dtype(col.dtype):
            distinct = col.nunique(dropna=True)
            kinds[str(name)] = "numeric" if distinct > max_categories else "categorical"
        else:
            kinds[str(name)] = "categorical"
    return kinds


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig | None = None,
    **settings: Any,
) -> DriftResult:
    """Compare ``current`` with ``reference`` column by column.

    ``config`` (or keyword settings overriding it, e.g. ``method="test"``) as DriftConfig.
    The columns are ``config.columns`` or all of the reference's; both frames must have
    them and at least one row. Numeric columns are compared on float64 values. Features are
    computed on ``config.workers`` threads (default: the CPU count); NumPy's sorts release
    the GIL, so numeric features run in parallel.

    Raises DriftInputError: a column missing from ``current``, a column with no value on a
    side, a numeric reference column whose current values are not numbers, no columns.
    """
    config = config or DriftConfig()
    if settings:
        config = DriftConfig.from_dict({**config.to_dict(), **settings})
    if not isinstance(reference, pd.DataFrame) or not isinstance(current, pd.DataFrame):
        raise DriftInputError("reference and current must be pandas DataFrames")
    columns = list(config.columns) if config.columns is not None else list(reference.columns)
    if not columns:
        raise DriftInputError("no columns to compare: the reference frame has none")
    for side, frame in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DriftInputError(
                f"columns {missing} are not in the {side} frame; pass columns=[...] to "
                "compare the ones both have"
            )
        if len(frame) == 0:
            raise DriftInputError(f"the {side} frame has no rows")
    method = config.method
    if method == "auto":
        method = "test" if len(reference) <= config.small_sample else "distance"
    workers = config.workers or min(len(columns), os.cpu_count() or 1)

    def one(name: Any) -> dict[str, Any]:
        return _feature(str(name), reference[name], current[name], config)

    if workers > 1 and len(columns) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            raw = list(pool.map(one, columns))
    else:
        raw = [one(name) for name in columns]
    adjusted = adjust_p_values([r["p_value"] for r in raw], config.correction)
    threshold = {
        "test": config.alpha,
        "distance": config.distance_threshold,
        "psi": config.psi_threshold,
    }[method]
    features = []
    for r, p_adj in zip(raw, adjusted, strict=True):
        if method == "test":
            drifted = bool(p_adj < config.alpha)
        elif method == "distance":
            drifted = bool(r["distance"] >= config.distance_threshold)
        else:
            drifted = bool(r["psi"] >= config.psi_threshold)
        features.append(
            FeatureDrift(
                **r, p_adjusted=float(p_adj), method=method, threshold=threshold, drifted=drifted
            )
        )
    n_drifted = sum(f.drifted for f in features)
    share = n_drifted / len(features)
    return DriftResult(
        features=tuple(features),
        share_drifted=share,
        drifted=n_drifted > 0 and share >= config.drift_share,
        config=config,
        n_reference=len(reference),
        n_current=len(current),
        method=method,
    )


def prediction_drift(
    reference_outputs: Any,
    current_outputs: Any,
    config: DriftConfig | None = None,
    *,
    name: str = "prediction",
    **settings: Any,
) -> DriftResult:
    """Drift of a model's outputs: the same tests on the outputs column(s).

    Outputs are a Series, a 1-D array or list (one column ``name``), a 2-D array or list
    of lists (columns ``name_0``, ``name_1``, ...; e.g. class probabilities) or a
    DataFrame. Integer, boolean and string outputs are class labels and so categorical,
    whatever their number of distinct values; floats (scores, regression) are numeric.
    ``kinds`` in the config overrides. Raises DriftInputError as ``compute_drift``.
    """
    ref = _outputs_frame(reference_outputs, name)
    cur = _outputs_frame(current_outputs, name)
    config = config or DriftConfig()
    kinds = {
        str(c): ("numeric" if pd.api.types.is_float_dtype(ref[c].dtype) else "categorical")
        for c in ref.columns
    }
    kinds.update(config.kinds)
    return compute_drift(ref, cur, replace(config, kinds=kinds), **settings)


def _outputs_frame(outputs: Any, name: str) -> pd.DataFrame:
    if isinstance(outputs, pd.DataFrame):
        return outputs
    if isinstance(outputs, pd.Series):
        return outputs.rename(name).to_frame()
    values = list(outputs) if not isinstance(outputs, np.ndarray) else outputs
    if len(values) and isinstance(values[0], (list, tuple, np.ndarray)):
        array = np.asarray(values)
        return pd.DataFrame(array, columns=[f"{name}_{i}" for i in range(array.shape[1])])
    return pd.DataFrame({name: values})


def _numeric_dtype(dtype: Any) -> bool:
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not isinstance(dtype, pd.CategoricalDtype)
    ) or pd.api.types.is_datetime64_any_dtype(dtype)


def _as_float(col: pd.Series, name: str, side: str) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(col.dtype) or pd.api.types.is_timedelta64_dtype(
        col.dtype
    ):
        ns = col.to_numpy(dtype="int64", na_value=np.iinfo(np.int64).min)
        out = ns.astype(np.float64)
        out[ns == np.iinfo(np.int64).min] = np.nan
        return out
    if not _numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        try:
            col = pd.to_numeric(col, errors="raise")
        except (ValueError, TypeError) as exc:
            raise DriftInputError(
                f"column {name!r} is numeric in the reference but the {side} frame holds "
                f"values that are not numbers ({exc}); fix the data or set "
                f"kinds={{{name!r}: 'categorical'}}"
            ) from exc
    return col.to_numpy(dtype=np.float64, na_value=np.nan)


def _no_values(name: str, side: str) -> DriftInputError:
    return DriftInputError(
        f"column {name!r} has no values in the {side} frame (all missing); leave it out "
        "with columns=[...]"
    )


def _feature(name: str, ref: pd.Series, cur: pd.Series, config: DriftConfig) -> dict[str, Any]:
    kind = config.kinds.get(name)
    if kind == "categorical" or (kind is None and not _numeric_dtype(ref.dtype)):
        return _categorical(name, ref, cur, config)
    a = _as_float(ref, name, "reference")
    b = _as_float(cur, name, "current")
    a_missing, b_missing = int(np.isnan(a).sum()), int(np.isnan(b).sum())
    a = np.sort(a[~np.isnan(a)]) if a_missing else np.sort(a)
    b = np.sort(b[~np.isnan(b)]) if b_missing else np.sort(b)
    if len(a) == 0:
        raise _no_values(name, "reference")
    if len(b) == 0:
        raise _no_values(name, "current")
    if kind is None:
        distinct = 1 + int(np.count_nonzero(a[1:] != a[:-1]))
        if distinct <= config.max_categories:
            return _categorical(name, ref, cur, config)
    d, w1 = statistics.ks_wasserstein(a, b)
    p = statistics.ks_pvalue(a, b, d)
    std = float(np.std(a))
    _, p_ref, p_cur = statistics.numeric_bins(a, b, config.psi_bins)
    return {
        "name": name,
        "kind": "numeric",
        "test": "ks",
        "statistic": d,
        "p_value": p,
        "distance_name": "wasserstein_norm",
        "distance": w1 / max(std, 0.001),
        "psi": statistics.psi(p_ref, p_cur, config.psi_epsilon),
        "reference": _numeric_summary(a, a_missing, std),
        "current": _numeric_summary(b, b_missing, float(np.std(b))),
    }


def _numeric_summary(values: np.ndarray, missing: int, std: float) -> dict[str, Any]:
    q25, q50, q75 = statistics.sorted_quantiles(values, [0.25, 0.5, 0.75])
    return {
        "count": len(values),
        "missing": missing,
        "mean": float(np.mean(values)),
        "std": std,
        "min": float(values[0]),
        "q25": float(q25),
        "median": float(q50),
        "q75": float(q75),
        "max": float(values[-1]),
    }


def _categorical(name: str, ref: pd.Series, cur: pd.Series, config: DriftConfig) -> dict[str, Any]:
    for side, values in (("reference", ref), ("current", cur)):
        if values.dtype == object and values.map(_unhashable).any():
            raise DriftInputError(
                f"column {name!r} of the {side} frame holds lists or tables among its "
                "values (outputs of another shape or method); compare one kind of value"
            )
    ref_counts = ref.value_counts(dropna=True, sort=True)
    cur_counts = cur.value_counts(dropna=True, sort=True)
    ref_counts = ref_counts[ref_counts > 0]
    cur_counts = cur_counts[cur_counts > 0]
    if len(ref_counts) == 0:
        raise _no_values(name, "reference")
    if len(cur_counts) == 0:
        raise _no_values(name, "current")
    keys = ref_counts.index.union(cur_counts.index, sort=False)
    r = ref_counts.reindex(keys, fill_value=0).to_numpy(dtype=np.float64)
    c = cur_counts.reindex(keys, fill_value=0).to_numpy(dtype=np.float64)
    chi2, p, js, psi = statistics.categorical_tests(
        r, c, base=config.js_base, eps=config.psi_epsilon
    )
    labels = [_label(k) for k in keys]
    unseen = [labels[i] for i in np.flatnonzero(r == 0)]
    return {
        "name": name,
        "kind": "categorical",
        "test": "chi2",
        "statistic": chi2,
        "p_value": p,
        "distance_name": "jensenshannon",
        "distance": js,
        "psi": psi,
        "reference": _categorical_summary(labels, r, len(ref) - int(r.sum()), []),
        "current": _categorical_summary(labels, c, len(cur) - int(c.sum()), unseen),
    }


def _unhashable(value: Any) -> bool:
    return isinstance(value, list | dict | set | np.ndarray)


def _categorical_summary(
    labels: list[str], counts: np.ndarray, missing: int, unseen: list[str]
) -> dict[str, Any]:
    total = float(counts.sum())
    top = np.argsort(-counts, kind="stable")[:_TOP]
    summary: dict[str, Any] = {
        "count": int(total),
        "missing": missing,
        "categories": int(np.count_nonzero(counts)),
        "top": {labels[i]: float(counts[i] / total) for i in top if counts[i] > 0},
    }
    if unseen:
        summary["unseen"] = unseen[:_TOP]
    return summary


def _label(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity) in it, at any depth of dicts,
    lists and tuples (tuples become lists), replaced by None: what JSON can hold."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
