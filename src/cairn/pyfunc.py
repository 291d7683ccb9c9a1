"""``cairn.pyfunc``: MLflow's ``mlflow.pyfunc.load_model`` for cairn's model URIs
(``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN/NAME``); see
``cairn.tracking.load_model``."""

from __future__ import annotations

from cairn.tracking import LoadedModel, load_model

__all__ = ["LoadedModel", "load_model"]
