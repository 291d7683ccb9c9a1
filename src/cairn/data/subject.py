"""What an error is about, for the adapters: a library message says what is wrong, and
an adapter (the CLI) adds what to run next from ``exc.about``, a kind such as
``"pipeline.missing"`` and the names the hint needs (cairn.cli.hints holds the table)."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["about"]

E = TypeVar("E", bound=BaseException)


def about(exc: E, kind: str, **names: str) -> E:
    """``exc`` with ``exc.about = (kind, names)``; returns it, to be raised."""
    exc.about = (kind, names)  # type: ignore[attr-defined]
    return exc
