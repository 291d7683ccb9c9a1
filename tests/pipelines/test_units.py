"""The one duration parser (cairn.pipelines.units): Go durations, days and weeks, bare
seconds; every other text refused with a FieldError naming the field."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.pipelines.units import (
    DURATION_UNITS,
    age,
    format_duration,
    parse_duration,
)
from cairn.storage.errors import CairnError, FieldError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h30m", 5400.0),
        ("90s", 90.0),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        ("1d", 86400.0),
        ("1d12h", 129600.0),
        ("1w", 604800.0),
        ("+5s", 5.0),
        ("0", 0.0),
        ("90", 90.0),
        (".5s", 0.5),
        (45, 45.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_accepts_go_durations_days_weeks_and_seconds(
    text: str | float, seconds: float
) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["-1s", "-5", "1min", "1y", "1 h", "h", "", "1e3", "inf", -1.0, math.inf, True, None]
)
def test_parse_duration_refuses_negatives_and_garbage_naming_the_field(text: object) -> None:
    with pytest.raises(FieldError) as caught:
        parse_duration(text, field="--grace")  # type: ignore[arg-type]
    assert caught.value.field == "--grace"
    assert isinstance(caught.value, CairnError) and isinstance(caught.value, ValueError)


def test_a_bare_number_is_no_age_so_callers_read_it_as_a_time() -> None:
    assert age("1700000000") is None
    assert age("1d") == 86400.0
    assert age("soon") is None and age("-1h") is None


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_format_then_parse_is_the_same_duration(seconds: float) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-9, abs=1e-12)


_UNIT = st.sampled_from(sorted(DURATION_UNITS))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), _UNIT), min_size=1, max_size=5))
def test_parts_add_up_and_format_reads_back(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    seconds = sum(n * DURATION_UNITS[unit] for n, unit in parts)
    assert parse_duration(text) == pytest.approx(seconds)
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-12)


def test_format_duration_writes_the_largest_units_first() -> None:
    assert format_duration(0) == "0s"
    assert format_duration(5400) == "1h30m"
    assert format_duration(90061.5) == "1d1h1m1.5s"
    assert format_duration(0.25) == "250ms"
    with pytest.raises(FieldError):
        format_duration(-1)
