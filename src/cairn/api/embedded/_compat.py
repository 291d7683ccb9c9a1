"""Old names on the new sub-clients: ``client.runs``, ``client.pipelines``,
``client.deployments`` and ``client.monitors`` returned the layers' own classes before
the face existed, and callers used their methods. A sub-client forwards a name it does
not define to that class; a name the README taught warns (DeprecationWarning) with the
face's name for it, and goes after one release."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["forward"]


def forward(owner: str, engine: object, name: str, taught: Mapping[str, str]) -> Any:
    """``engine.name`` for ``client.<owner>.<name>``; warns when ``taught`` names it
    (``taught[name]`` says what to use instead). Raises AttributeError."""
    if name.startswith("_"):
        raise AttributeError(name)
    value = getattr(engine, name)
    if name in taught:
        warnings.warn(
            f"client.{owner}.{name} is deprecated; use {taught[name]}",
            DeprecationWarning,
            stacklevel=3,
        )
    return value
