"""OpenAI's (Go's) duration notation for x-ratelimit-reset-*: formatter and parser."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.ratelimit import format_duration, parse_duration


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (1, "1ms"),
        (20, "20ms"),
        (999, "999ms"),
        (1000, "1s"),
        (1500, "1.5s"),
        (1250, "1.25s"),
        (1001, "1.001s"),
        (59_999, "59.999s"),
        (60_000, "1m0s"),
        (360_000, "6m0s"),
        (60_500, "1m0.5s"),
        (3_600_000, "1h0m0s"),
        (3_723_000, "1h2m3s"),
        (86_400_000, "24h0m0s"),
    ],
)
def test_format_matches_openai_examples(ms: int, text: str) -> None:
    """Milliseconds print as OpenAI sends them (1s, 6m0s, 20ms), Go's Duration.String for whole ms."""
    assert format_duration(ms) == text
    assert parse_duration(text) == ms


@given(st.integers(min_value=0, max_value=10**12))
def test_format_parse_round_trip(ms: int) -> None:
    """Every whole-millisecond duration parses back to itself."""
    assert round(parse_duration(format_duration(ms))) == ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0.0),
        ("1.5h", 5_400_000.0),
        ("300us", 0.3),
        ("300µs", 0.3),
        ("250ns", 0.00025),
        (" 2s ", 2000.0),
        (".5s", 500.0),
        ("1m30s", 90_000.0),
    ],
)
def test_parse_reads_every_go_unit(text: str, ms: float) -> None:
    """The parser reads Go's units, decimals and unit sequences."""
    assert parse_duration(text) == pytest.approx(ms)


@pytest.mark.parametrize(
    "text",
    ["", "s", "1", "1x", "-1s", "1s ms", "1 s", "1.2.3s", "ms1", "1s-", "x" * 80, "1e3s", "+1s", "１s"],
)
def test_parse_rejects_garbage(text: str) -> None:
    """Anything that is not a non-negative Go duration is a ValueError."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@given(st.text(max_size=40))
def test_parse_never_raises_anything_but_value_error(text: str) -> None:
    """Hostile header values either parse to a non-negative number or raise ValueError."""
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0


def test_bad_arguments() -> None:
    """Negative or non-int milliseconds, and a non-str duration, are refused by type and value."""
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)
    with pytest.raises(TypeError):
        format_duration(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_duration(True)
    with pytest.raises(TypeError):
        parse_duration(5)  # type: ignore[arg-type]
