"""Exceptions of the monitoring layer (drift, reports, windows)::

MonitoringError              (a CairnError)
└── DriftInputError          frames or a configuration a drift computation cannot use

Unknown names (a repo, a deployment folder) raise cairn.data's ``NotFound``, as in every
layer.
"""

from __future__ import annotations

from cairn.storage.errors import CairnError

__all__ = ["DriftInputError", "MonitoringError"]


class MonitoringError(CairnError):
    """A drift computation, report or window read failed."""


class DriftInputError(MonitoringError, ValueError):
    """The reference and current frames (or the configuration) cannot be compared: a column
    missing from one side, a column with no values, an unknown test or correction name.
    The message names the column or field and what to change."""
