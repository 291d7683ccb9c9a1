"""What the conformance tests share: a JSON round trip of any value the face returns."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

from pydantic import BaseModel


def plain(value: Any) -> Any:
    """``value`` as JSON-able data, the way a server would send it; raises TypeError for
    anything that is not a plain value (an internal object crossing the face)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__qualname__} is not a plain value")


def roundtrips(value: Any) -> Any:
    """``plain(value)`` after a trip through JSON text."""
    return json.loads(json.dumps(plain(value)))
