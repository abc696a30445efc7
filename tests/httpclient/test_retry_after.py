"""Retry-After, retry-after-ms and x-should-retry parsing, on an injected clock."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from asgi_kit.httpclient.retry_after import (
    parse_retry_after,
    parse_retry_after_ms,
    retry_after_seconds,
    should_retry_hint,
)

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("-1", None),
        ("", None),
        ("soon", None),
        ("1e3", None),
        ("inf", None),
        ("nan", None),
        ("9" * 400, math.inf),
        ("Tue, 14 Nov 2023 22:13:30 GMT", 10.0),
        ("Tue, 14 Nov 2023 22:13:30", 10.0),
        ("Tue, 14 Nov 2023 20:00:00 GMT", 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
        ("Tue, 14 Nov 2023 22:13:30 +0100", 0.0),
        ("Mon, 99 Foo 2023 25:61:61 GMT", None),
    ],
)
def test_parse_retry_after(value: str, expected: float | None) -> None:
    """Delta-seconds, HTTP-dates (past clamps to 0), negative, garbage and huge values."""
    assert parse_retry_after(value, now=NOW) == expected


@given(st.integers(min_value=0, max_value=10**12))
def test_delta_seconds_round_trip(seconds: int) -> None:
    """Any non-negative integer is that many seconds."""
    assert parse_retry_after(str(seconds), now=NOW) == float(seconds)


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_http_date_is_relative_to_the_clock(offset: int) -> None:
    """An HTTP-date means (date - now), clamped at zero, whatever the clock says."""
    when = datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=offset)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == max(0.0, float(offset))


@given(st.text(max_size=40))
def test_never_raises_and_never_negative(value: str) -> None:
    """Any text parses to None or a non-negative wait, never an exception."""
    result = parse_retry_after(value, now=NOW)
    assert result is None or result >= 0


@given(st.integers(min_value=1, max_value=10**6))
def test_negative_values_are_ignored(seconds: int) -> None:
    """A negative delta is not a wait."""
    assert parse_retry_after(f"-{seconds}", now=NOW) is None


@pytest.mark.parametrize(
    ("value", "expected"), [("1500", 1.5), ("0", 0.0), ("-5", None), ("x", None), ("", None)]
)
def test_parse_retry_after_ms(value: str, expected: float | None) -> None:
    """retry-after-ms is milliseconds; bad values are ignored."""
    assert parse_retry_after_ms(value) == expected


@given(st.text(max_size=20))
def test_retry_after_ms_never_raises(value: str) -> None:
    """Any retry-after-ms text parses to None or a non-negative wait."""
    result = parse_retry_after_ms(value)
    assert result is None or result >= 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "4"}, 4.0),
        ({"retry-after-ms": "250", "Retry-After": "4"}, 0.25),
        ({"Retry-After-Ms": "bad", "retry-after": "4"}, 4.0),
        ({"Retry-After": "bad"}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    """retry-after-ms wins over Retry-After; case does not matter."""
    assert retry_after_seconds(CIMultiDict(headers), now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("TRUE ", True), ("false", False), ("maybe", None), (None, None)]
)
def test_should_retry_hint(value: str | None, expected: bool | None) -> None:
    """x-should-retry is true, false, or no opinion."""
    headers = CIMultiDict() if value is None else CIMultiDict({"X-Should-Retry": value})
    assert should_retry_hint(headers) is expected
