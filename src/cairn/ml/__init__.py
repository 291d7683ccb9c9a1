"""The ML layer: runs, the model registry, flavors and signatures (DESIGN.md, The ML
lifecycle). It sits above ``pipelines`` and below ``serving``.

Modules (one verb or noun each):

- ``models``: the value objects (RunInfo, MetricPoint, ModelVersion, ModelInfo,
  Comparison).
- ``errors``: MLError and its subclasses.
- ``runs``: runs of pipeline jobs, indexed from the run files datums write into their
  output commits (``.cairn/runs/*.json[l]``), and runs recorded by the SDK.
- ``search``: MLflow's ``search_runs`` filter and order-by grammar over runs.
- ``runfiles``: the run file format (one JSON object, or JSON lines of events) and its
  parser; ``plots``: metric-against-step plots of runs as PNG (matplotlib, Agg).
- ``registry``: models, immutable auto-numbered versions, aliases and their history;
  ``lineage``: a version's job, datum, input files, code, environment and run;
  ``model_diff``: what changed between two versions' lineages (``cairn diff model``).
- ``flavors``: how a model version is fetched from its commit and loaded (scikit-learn
  through skops or joblib, any Python object with ``predict``, a command speaking JSON,
  an MLflow ``python_function`` folder); ``trust``: whether loading a file runs code it
  names, told by its content.
- ``signature``: MLflow's column signatures, inferred at registration and enforced on
  every request.
- ``events``: the lifecycle's event log.

Invariants:

- A model version names a *finished* commit by id, never a branch, so it never changes;
  aliases move, and every move is recorded in ``alias_history`` (what rollback walks back).
- A run of a pipeline job is derived data: its run file is committed output, so deleting
  the run rows loses nothing that ``Runs.sync`` cannot rebuild from the commits.
- Everything here is catalog rows plus reads of the data layer; nothing starts a process
  except the ``command`` flavor when a caller asks it to predict.
- Nothing unpickles a model without the user's consent: a format whose loading runs code
  (pickle, joblib, MLflow folders; told by content, not name) is registered only with
  ``trust=True`` and loaded only for a version recorded as ``trusted`` (``flavors``, Trust).
"""

from cairn.ml.errors import FlavorError, MLError, RunFileError, SignatureError, UntrustedModel
from cairn.ml.models import MetricPoint, ModelInfo, ModelVersion, RunInfo, Signature

__all__ = [
    "FlavorError",
    "MLError",
    "MetricPoint",
    "ModelInfo",
    "ModelVersion",
    "RunFileError",
    "RunInfo",
    "Signature",
    "SignatureError",
    "UntrustedModel",
]
