"""Numbers written with units: durations (seconds) and Kubernetes quantities.

Durations, the one parser every field, flag and setting that takes one goes through
(``datum_timeout``, a rule's ``window.since`` and ``schedule.every``, ``gc --grace``,
``monitor --since``):

- Go's ``time.ParseDuration`` form: one or more ``<number><unit>`` with units ``ns``,
  ``us`` (``µs``), ``ms``, ``s``, ``m``, ``h``: ``300ms``, ``90s``, ``1m30s``, ``1.5h``;
- and two units Go lacks, for the spans monitoring and gc talk in: ``d`` (86,400 s) and
  ``w`` (7 days): ``2d``, ``1w``, ``1d12h``;
- a bare number is seconds (``90``, ``0.5``), as YAML's numbers are;
- refused, with a ``FieldError`` naming the field: a sign other than ``+`` (no negative
  duration means anything here), a unit outside the list (``min``, ``y``), an empty
  text, an infinite or NaN result.

A field that needs more than zero checks that itself. ``format_duration`` writes seconds
back in this form (``5400`` -> ``1h30m``), so ``parse_duration(format_duration(s)) == s``
up to float rounding.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from cairn.storage.errors import FieldError

__all__ = [
    "DURATION_UNITS",
    "Duration",
    "Quantity",
    "age",
    "duration_value",
    "format_duration",
    "parse_duration",
    "parse_quantity",
]

DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # Go accepts both micro signs
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_NUMBER = r"\d+\.?\d*|\.\d+"
_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h|d|w)")
_PARTS = re.compile(rf"(?:{_PART.pattern})+")
_BARE = re.compile(_NUMBER)
_EXAMPLES = "e.g. 90s, 1m30s, 1.5h, 300ms, 2d or 90 (seconds)"


def parse_duration(text: str | float, field: str = "") -> float:
    """Seconds (a float >= 0) in ``text`` (see the module doc); an int or float is
    seconds already. Raises FieldError (a ValueError) naming ``field`` for anything else.
    """
    where = f"{field}: " if field else ""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise FieldError(f"{where}{text!r} is not a duration; write {_EXAMPLES}", field)
    if isinstance(text, str):
        body = text.strip().removeprefix("+")
        if _BARE.fullmatch(body):
            seconds = float(body)
        elif _PARTS.fullmatch(body):
            seconds = sum(float(n) * DURATION_UNITS[unit] for n, unit in _PART.findall(body))
        else:
            why = "negative" if body.startswith("-") else "not a duration"
            raise FieldError(f"{where}{text!r} is {why}; write {_EXAMPLES}", field)
    else:
        seconds = float(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise FieldError(f"{where}{text!r} is not a finite duration >= 0", field)
    return seconds


def age(text: str) -> float | None:
    """Seconds in ``text`` when it is a duration with a unit (``2d``, ``1h30m``); None
    for anything else, a bare number included (``--since 1700000000`` is a time, not an
    age), so a caller can try other forms next."""
    if _BARE.fullmatch(text.strip().removeprefix("+")):
        return None
    try:
        return parse_duration(text)
    except FieldError:
        return None


def format_duration(seconds: float) -> str:
    """``seconds`` (>= 0) as the longest units first: ``1d2h3m4.5s``, ``0s``; below a
    second ``ms``/``us``/``ns`` (``250ms``). Raises FieldError for a negative or
    non-finite value."""
    if not math.isfinite(seconds) or seconds < 0:
        raise FieldError(f"{seconds!r} is not a finite duration >= 0")
    if seconds == 0:
        return "0s"
    if seconds < 1:
        for unit in ("ms", "us", "ns"):
            if seconds >= DURATION_UNITS[unit] or unit == "ns":
                return f"{_number(seconds / DURATION_UNITS[unit])}{unit}"
    out = ""
    rest = seconds
    for unit in ("d", "h", "m"):
        whole = math.floor(rest / DURATION_UNITS[unit])
        if whole:
            out += f"{whole}{unit}"
            rest -= whole * DURATION_UNITS[unit]
    if rest > 0 or not out:
        out += f"{_number(rest)}s"
    return out


def _number(value: float) -> str:
    # repr is the shortest text that reads back to the same float; exponents are not
    # part of the duration grammar, so those values are written out in full.
    text = repr(value)
    if "e" in text or "E" in text:
        text = f"{value:.20f}".rstrip("0").rstrip(".")
    return text.removesuffix(".0")


def duration_value(value: Any) -> Any:
    """A pydantic before-validator for a duration field: text is parsed, numbers pass on
    to the field's own checks (``gt=0``), None stays None, anything else is refused."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    try:
        return parse_duration(value)
    except FieldError as exc:
        raise PydanticCustomError("cairn_duration", "{reason}", {"reason": str(exc)}) from None


Duration = Annotated[float, BeforeValidator(duration_value)]
"""A pydantic field type: seconds, written as a duration or a number (``Field(gt=0)`` and
the like apply to the seconds)."""

_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
_SUFFIX = {None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_SUFFIX.update({f"{p}i": float(1 << (10 * (i + 1))) for i, p in enumerate("KMGTPE")})


def parse_quantity(value: str | float) -> float:
    """A Kubernetes quantity ("512Mi", "2G", "500m", 1.5) as a plain number (bytes, or
    cores for ``cpu``). Raises ValueError for anything else, including negatives."""
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"invalid quantity {value!r}: negative")
        return float(value)
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"invalid quantity {value!r}: expected e.g. '512Mi', '2G' or '500m'")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def _quantity(value: Any) -> Any:
    try:
        return None if value is None else parse_quantity(value)
    except ValueError as exc:
        raise PydanticCustomError("cairn_quantity", "{reason}", {"reason": str(exc)}) from exc


Quantity = Annotated[float | None, BeforeValidator(_quantity)]
"""A pydantic field type: a Kubernetes quantity as a number (None stays None)."""
