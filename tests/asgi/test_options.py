"""Option checks: TypeError for a wrong type, ValueError for a right type with a wrong value."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from asgi_kit._asgi.options import (
    check_bool,
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_number,
    check_str,
    check_strings,
)

not_a_number = st.one_of(
    st.booleans(), st.none(), st.text(), st.binary(), st.lists(st.integers()), st.complex_numbers()
)
not_an_int = st.one_of(not_a_number, st.floats(), st.decimals(allow_nan=False))


@given(value=not_an_int)
def test_property_anything_but_an_int_is_a_type_error(value: object) -> None:
    """Floats, bools, strings, None: never an int option, and the message names the option."""
    with pytest.raises(TypeError, match=r"^max_keys must be an int, got "):
        check_int("max_keys", value, minimum=1)


@given(value=st.integers(), minimum=st.integers(-100, 100), span=st.integers(0, 100))
def test_property_an_int_is_accepted_exactly_within_its_bounds(value: int, minimum: int, span: int) -> None:
    """Inside [minimum, maximum] the int comes back; outside, a ValueError quoting it."""
    maximum = minimum + span
    if minimum <= value <= maximum:
        assert check_int("n", value, minimum=minimum, maximum=maximum) == value
    else:
        with pytest.raises(
            ValueError, match=rf"^n must be an int between {minimum} and {maximum}, got {value}$"
        ):
            check_int("n", value, minimum=minimum, maximum=maximum)


@given(value=st.integers(max_value=-1))
def test_property_an_int_below_its_minimum_is_a_value_error(value: int) -> None:
    """A one-sided bound reads as one: ``>= 0``."""
    with pytest.raises(ValueError, match=rf"^cache_size must be an int >= 0, got {value}$"):
        check_int("cache_size", value, minimum=0)


@given(value=not_a_number)
def test_property_anything_but_a_number_is_a_type_error(value: object) -> None:
    """Booleans are not numbers of seconds, nor are strings, None or complex numbers."""
    with pytest.raises(TypeError, match=r"^timeout must be a number, got "):
        check_number("timeout", value, exclusive_minimum=0)


@given(value=st.floats(allow_nan=False, allow_infinity=False) | st.integers())
def test_property_a_number_is_checked_against_its_bounds(value: float) -> None:
    """In range: the value as a float; out of range: ValueError naming the option and the bound."""
    if 0 <= value <= 60:
        result = check_number("cache_ttl", value, minimum=0, maximum=60)
        assert result == value
        assert type(result) is float
    else:
        with pytest.raises(ValueError, match=r"^cache_ttl must be a finite number between 0 and 60, got "):
            check_number("cache_ttl", value, minimum=0, maximum=60)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_number_must_be_finite(value: float) -> None:
    """NaN and infinities are refused even without bounds (NaN would pass every comparison)."""
    with pytest.raises(ValueError, match="delay must be a finite number"):
        check_number("delay", value)


def test_number_messages_read_like_the_bounds() -> None:
    """The message says what the value must be, as the example in the module's docstring."""
    with pytest.raises(ValueError, match=r"^cache_ttl must be a finite number >= 0, got -1$"):
        check_number("cache_ttl", -1, minimum=0)
    with pytest.raises(ValueError, match=r"^timeout must be a finite number > 0, got 0$"):
        check_number("timeout", 0, exclusive_minimum=0)
    with pytest.raises(ValueError, match=r"^window must be a finite number > 0 and <= 86400, got 86401$"):
        check_number("window", 86_401, exclusive_minimum=0, maximum=86_400.0)
    with pytest.raises(TypeError, match="not both"):
        check_number("x", 1, minimum=0, exclusive_minimum=0)


def test_bool_str_and_choice() -> None:
    """Bools must be bools; strings non-blank unless allowed; choices one of a list."""
    assert check_bool("debug", False) is False
    with pytest.raises(TypeError, match=r"^debug must be a bool, got int$"):
        check_bool("debug", 1)
    assert check_str("message", "", allow_empty=True) == ""
    with pytest.raises(ValueError, match=r"^service_name must be a non-blank str, got ' '$"):
        check_str("service_name", " ")
    with pytest.raises(TypeError, match=r"^service_name must be a str, got bytes$"):
        check_str("service_name", b"api")
    assert check_choice("mode", "deny", ("allow", "deny")) == "deny"
    with pytest.raises(ValueError, match=r"^mode must be one of 'allow', 'deny', got 'maybe'$"):
        check_choice("mode", "maybe", ("allow", "deny"))
    with pytest.raises(TypeError, match="mode must be a str"):
        check_choice("mode", None, ("allow", "deny"))


@given(st.lists(st.text(min_size=1).filter(str.strip), max_size=5))
def test_property_strings_come_back_as_a_tuple(values: list[str]) -> None:
    """Any collection of non-blank strings is accepted and returned in order."""
    assert check_strings("names", values) == tuple(values)
    assert check_strings("names", iter(values)) == tuple(values)


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ("/health", TypeError),
        (b"/health", TypeError),
        (5, TypeError),
        (["/a", 5], TypeError),
        (["/a", None], TypeError),
        (["/a", ""], ValueError),
        (["/a", "  "], ValueError),
    ],
)
def test_strings_refuse_a_bare_string_and_odd_entries(values: object, error: type[Exception]) -> None:
    """A bare string is refused rather than split into characters; entries must be non-blank."""
    with pytest.raises(error, match=r"^exclude_paths must"):
        check_strings("exclude_paths", values)


def test_callable_and_instance() -> None:
    """Callables and instances come back unchanged; anything else is a TypeError with a hint."""
    hook: Callable[[], int] = lambda: 1  # noqa: E731
    assert check_callable("clock", hook) is hook
    with pytest.raises(TypeError, match=r"^clock must be callable, got float$"):
        check_callable("clock", 1.5)
    marker: Any = object()
    with pytest.raises(TypeError, match=r"^policy must be a Policy, got object$"):
        check_instance("policy", marker, dict, "a Policy")
    mapping = {"a": 1}
    assert check_instance("grants", mapping, dict, "a dict") is mapping


@given(value=st.integers() | st.floats() | st.booleans() | st.text())
def test_property_the_two_errors_never_swap(value: object) -> None:
    """One rule, both ways: a wrong type is never a ValueError and a wrong int never a TypeError."""
    assume(not (isinstance(value, int) and not isinstance(value, bool) and value >= 1))
    expected = ValueError if isinstance(value, int) and not isinstance(value, bool) else TypeError
    with pytest.raises(expected):
        check_int("n", value, minimum=1)
