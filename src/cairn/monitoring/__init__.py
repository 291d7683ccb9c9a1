"""The monitoring layer: drift of live data against a model's reference data, the reports
that show it, and the model's metric over time once labels arrive (DESIGN.md, The ML
lifecycle; issue 5). It sits above ``serving``, whose prediction log is its current window.

Modules (one noun each):

- ``statistics``: the per-feature numbers over NumPy arrays: the Kolmogorov-Smirnov
  statistic and the Wasserstein-1 distance from one merge of two sorted arrays, the KS
  p-value, PSI, chi-square and Jensen-Shannon over category counts. SciPy provides the
  distributions and tests; the merge exists because ``ks_2samp`` and
  ``wasserstein_distance`` cost about a second per 1,000,000-row feature.
- ``drift``: ``DriftConfig`` (every default with its source: Evidently, Alibi Detect),
  ``compute_drift`` over two DataFrames, ``prediction_drift`` over model outputs, and the
  value objects ``FeatureDrift`` and ``DriftResult`` (``to_json`` is the ``--raw`` form).
- ``performance``: a metric per time bucket from predictions joined to late labels by
  request id.
- ``report``: a rich table for the terminal and a self-contained HTML report (PNG plots
  embedded as base64; no script, no stylesheet link, viewable offline).
- ``windows``: the current window read out of the prediction log
  (``predictions@master:/<deployment>/<YYYY-MM-DD>/*.jsonl``, the format of
  ``cairn.serving.predlog``, read only through its ``read_records``): by time or by the
  last N rows, shadow and failed requests left out, as a DataFrame of inputs, outputs,
  request ids and times.
- ``tables``: table files of a commit (CSV, TSV, Parquet, JSON Lines) read with pandas.
- ``labels``: the one reader of a labels repo (``read_labels``, any ``tables`` format)
  and the join of labels to logged requests; ``cairn monitor --labels`` and the loop use it.
- ``monitor``: ``check_model`` (what ``cairn monitor NAME@ALIAS`` runs): the version's
  training data found through its lineage (or a named commit) as the reference
  (``reference``), the deployment's prediction log as the current window, feature drift,
  output drift against the version's own predictions on the reference, the metric over
  time from a labels repo; ``MonitorReport`` (``model_report``; ``to_json`` is ``--raw``)
  and its HTML page. It reads the registry and loads the model (``cairn.ml.flavors``) but
  writes nothing.
- ``rules``: ``MonitorRule`` (YAML/JSON, validated; errors name the field) and its storage
  in the catalog (``monitors``, ``monitor_versions``), versioned like a pipeline spec.
- ``loop``: ``Monitors``, each rule's state machine (idle -> drift -> data_committed ->
  model_trained -> challenger_registered -> canary -> evaluated -> promoted | rolled_back),
  persisted step by step in ``monitor_state`` (``state``) with a ``monitor.<step>`` event,
  one handler per step (``steps``, dispatched through ``loop._STEP_HANDLERS``), the
  training data a cycle commits (``window_commit``), the canary's decision
  (``evaluation``) and alert webhooks posted off the tick path (``webhook``). The only
  modules here that write (commits, registrations, alias and traffic moves).
- ``replay``: a deployment's logged window answered offline by a candidate version in
  batches and compared with what production answered (agreement, confusion or numeric
  deltas, with labels the metric of both): ``cairn replay``, and the rule's ``replay``
  gate that refuses a challenger before its canary (``steps.challenger_registered``).
- ``explain``: one logged request back to the deployment revision, aliases and model
  version that answered it, that version's recorded lineage, the drift window that held
  it and the events around it (``cairn explain prediction``); reads only what was
  recorded and names what was deleted since.
- ``errors``: ``MonitoringError``, ``DriftInputError``, ``RuleError``, ``LoopError``.

Invariants:

- Pure functions over DataFrames: nothing here writes to the catalog or a repo, so a
  report can be recomputed from the same two windows and gives the same numbers (no
  random sampling; no test depends on a seed).
- The decision for a feature is a single comparison of one named score with one
  threshold (``FeatureDrift.method``, ``score``, ``threshold``), so a user can see why a
  feature was flagged; the other statistics are reported beside it, never combined.
- Feature kinds are decided from the reference alone, so the test applied to a feature
  does not change from one window to the next.
- The dataset drifts when at least one feature drifts and the share of drifting features
  reaches ``drift_share``.
"""

from typing import TYPE_CHECKING

from cairn._lazy import lazy_exports

if TYPE_CHECKING:
    from cairn.monitoring.drift import (
        DriftConfig,
        DriftResult,
        FeatureDrift,
        adjust_p_values,
        compute_drift,
        infer_kinds,
        prediction_drift,
    )
    from cairn.monitoring.errors import DriftInputError, LoopError, MonitoringError, RuleError

# Each name is imported on first use: the rules and errors load without drift's SciPy,
# pandas and PyArrow.
_HOMES = {
    "DriftConfig": "cairn.monitoring.drift",
    "DriftInputError": "cairn.monitoring.errors",
    "DriftResult": "cairn.monitoring.drift",
    "FeatureDrift": "cairn.monitoring.drift",
    "LoopError": "cairn.monitoring.errors",
    "MonitoringError": "cairn.monitoring.errors",
    "RuleError": "cairn.monitoring.errors",
    "adjust_p_values": "cairn.monitoring.drift",
    "compute_drift": "cairn.monitoring.drift",
    "infer_kinds": "cairn.monitoring.drift",
    "prediction_drift": "cairn.monitoring.drift",
}

__all__ = [
    "DriftConfig",
    "DriftInputError",
    "DriftResult",
    "FeatureDrift",
    "LoopError",
    "MonitoringError",
    "RuleError",
    "adjust_p_values",
    "compute_drift",
    "infer_kinds",
    "prediction_drift",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
