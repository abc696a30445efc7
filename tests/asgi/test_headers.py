"""Header helpers on raw ASGI header lists."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._asgi.headers import (
    decode_header,
    get_header,
    get_header_values,
    get_single_header,
    has_header,
    header_name,
    scope_header,
)
from asgi_kit.testing import make_scope

raw_header = st.tuples(st.binary(min_size=1, max_size=20).map(bytes.lower), st.binary(max_size=50))


def test_duplicates_are_kept_in_order() -> None:
    """Every value of a repeated header is returned, in order."""
    headers = [(b"x-a", b"1"), (b"x-b", b"2"), (b"x-a", b"3")]
    assert get_header_values(headers, b"x-a") == [b"1", b"3"]
    assert get_header(headers, b"x-a") == b"1"
    assert get_single_header(headers, b"x-a") == (b"1", 2)
    assert get_single_header(headers, b"x-c") == (None, 0)


def test_header_name_normalises_and_validates() -> None:
    """Configured names become lower-case bytes; invalid names fail at construction."""
    assert header_name("X-Request-ID") == b"x-request-id"
    for bad in ["", "bad name", "x:y", "ü", "a\r\nb"]:
        with pytest.raises(ValueError, match="header name"):
            header_name(bad)
    with pytest.raises(TypeError, match="header name"):
        header_name(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^api_key_header 'x y' is not a valid header name token$"):
        header_name("x y", option="api_key_header")


def test_scope_header_and_has_header() -> None:
    """Scope shortcut reads the scope's header list; has_header sees presence only."""
    scope = make_scope(headers=[("X-Token", "abc")])
    assert scope_header(scope, b"x-token") == b"abc"
    assert scope_header({"headers": None}, b"x-token") is None
    assert has_header(scope["headers"], b"x-token")
    assert not has_header(scope["headers"], b"x-other")


def test_non_utf8_values_never_raise() -> None:
    """Bytes that are not UTF-8 are returned as bytes and decode for display without error."""
    headers = [(b"x-bin", b"\xff\xfe\x80")]
    assert get_header(headers, b"x-bin") == b"\xff\xfe\x80"
    assert decode_header(b"\xff\xfe\x80") == "\xff\xfe\x80"
    assert decode_header(b"abcdef", limit=3) == "abc"


@given(st.lists(raw_header, max_size=20), st.binary(min_size=1, max_size=20).map(bytes.lower))
def test_property_values_match_a_naive_filter(headers: list[tuple[bytes, bytes]], name: bytes) -> None:
    """get_header_values equals filtering the list; get_header is its first element."""
    expected = [v for k, v in headers if k == name]
    assert get_header_values(headers, name) == expected
    assert get_header(headers, name) == (expected[0] if expected else None)
    assert get_single_header(headers, name) == ((expected[0] if expected else None), len(expected))


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=300))
def test_property_decode_never_fails_and_is_bounded(value: bytes, limit: int) -> None:
    """decode_header accepts any bytes and respects the limit."""
    text = decode_header(value, limit)
    assert len(text) == min(len(value), limit)
