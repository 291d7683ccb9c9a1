"""Turning catalog rows into the frozen dataclasses the layers above return."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["row_to"]

T = TypeVar("T")


def row_to(cls: type[T], row: Any, **values: Any) -> T:
    """An instance of dataclass ``cls`` from a row: each field takes the column of the same
    name unless ``values`` gives it (for columns stored as JSON or renamed)."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    mapping = row._mapping
    return cls(
        **{
            n: values[n] if n in values else mapping[n]
            for n in names
            if n in values or n in mapping
        }
    )
