"""Checks for configuration options, with one rule for every layer.

``TypeError`` when an option has the wrong type, ``ValueError`` when its type is right and its
value is not; the message names the option and says what it must be
(``"cache_ttl must be a number >= 0, got -1"``). A ``bool`` is never taken for a number: to
Python ``True`` is ``1``, to whoever wrote ``timeout=True`` it is not a number of seconds.

These run when a layer is built, never per request. Each returns the checked value
(numbers as ``int`` or ``float``, string sequences as a tuple) so a constructor can store
what it checked in one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
C = TypeVar("C", bound=Callable[..., Any])


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` within ``[minimum, maximum]`` (either bound optional)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an int {_bounds(minimum, None, maximum)}, got {value!r}")
    return value


def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """``value`` (an ``int`` or ``float``, finite) as a ``float`` within the bounds given."""
    if minimum is not None and exclusive_minimum is not None:
        raise TypeError("give minimum or exclusive_minimum, not both")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if (
        not math.isfinite(value)
        or (minimum is not None and value < minimum)
        or (exclusive_minimum is not None and value <= exclusive_minimum)
        or (maximum is not None and value > maximum)
    ):
        bounds = _bounds(minimum, exclusive_minimum, maximum)
        raise ValueError(f"{name} must be a finite number{' ' + bounds if bounds else ''}, got {value!r}")
    return float(value)


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False`` (not merely truthy)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_str(name: str, value: object, *, allow_empty: bool = False) -> str:
    """``value`` as a ``str``; blank (empty or whitespace) only with ``allow_empty``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} must be a non-blank str, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_strings(name: str, values: object) -> tuple[str, ...]:
    """A collection of non-blank strings, as a tuple; a bare ``str`` is refused, not split."""
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a collection of strings, not a single string")
    if not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a collection of strings, got {type(values).__name__}")
    items = tuple(values)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold strings, got {type(item).__name__}")
        if not item.strip():
            raise ValueError(f"{name} must hold non-blank strings, got {item!r}")
    return items


def check_callable(name: str, value: C) -> C:
    """``value`` if it can be called."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    return value


def check_instance(name: str, value: T, cls: type | tuple[type, ...], hint: str) -> T:
    """``value`` if it is a ``cls``; ``hint`` says what to pass instead (``"a JWTManager"``).

    ``cls`` may be abstract (``Mapping``) or a runtime-checkable protocol.
    """
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be {hint}, got {type(value).__name__}")
    return value


def _bounds(minimum: float | None, exclusive_minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {_show(minimum)} and {_show(maximum)}"
    parts = []
    if minimum is not None:
        parts.append(f">= {_show(minimum)}")
    if exclusive_minimum is not None:
        parts.append(f"> {_show(exclusive_minimum)}")
    if maximum is not None:
        parts.append(f"<= {_show(maximum)}")
    return " and ".join(parts)


def _show(bound: float) -> str:
    return str(int(bound)) if isinstance(bound, float) and bound.is_integer() else str(bound)


__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_instance",
    "check_int",
    "check_number",
    "check_str",
    "check_strings",
]
