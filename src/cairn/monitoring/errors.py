"""Exceptions of the monitoring layer (drift, reports, windows)::

MonitoringError              (a CairnError)
├── DriftInputError          frames or a configuration a drift computation cannot use
├── RuleError                a monitoring rule that does not validate (``field``, ``problems``)
└── LoopError                a rule whose retraining cannot run as written (a pipeline that
                             does not read the ``to`` repo, a holdout without the label)

Unknown names (a repo, a deployment folder) raise cairn.data's ``NotFound``, as in every
layer.
"""

from __future__ import annotations

from cairn.storage.errors import CairnError, FieldError

__all__ = ["DriftInputError", "LoopError", "MonitoringError", "RuleError"]


class MonitoringError(CairnError):
    """A drift computation, report or window read failed."""


class DriftInputError(MonitoringError, ValueError):
    """The reference and current frames (or the configuration) cannot be compared: a column
    missing from one side, a column with no values, an unknown test or correction name.
    The message names the column or field and what to change."""


class RuleError(MonitoringError, FieldError):
    """A monitoring rule (YAML or JSON) is malformed. ``field`` is the dotted path of the
    first bad field (``action.retrain.canary.percent``), ``problems`` every (field,
    message)."""


class LoopError(MonitoringError):
    """A step of a monitor's loop cannot run as its rule says; the message names the rule
    field to change. The loop records it as an event and ends the cycle."""
