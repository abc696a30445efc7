"""Read the server's retry hints: ``Retry-After``, ``retry-after-ms`` and ``x-should-retry``.

Pure functions with the current time passed in, so they are property-tested on any clock.
``Retry-After`` (RFC 9110 section 10.2.3) is delta-seconds or an HTTP-date; ``retry-after-ms``
and ``x-should-retry`` are the millisecond and yes/no hints that OpenAI-compatible servers send
(the official SDKs honour them too). Malformed values are ignored (``None``), never raised:
a hint is advice, and a bad one must not turn a retryable failure into a crash.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final

_DELTA: Final = re.compile(r"\d+(?:\.\d+)?", re.ASCII)


def parse_retry_after(value: str, *, now: float) -> float | None:
    """Seconds to wait from one ``Retry-After`` value.

    Args:
        value: the header value: delta-seconds (``"120"``, decimals accepted as the SDKs do)
            or an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``).
        now: the current wall-clock time in seconds since the epoch (for HTTP-dates).

    Returns:
        The wait in seconds (``0.0`` for a date in the past, ``math.inf`` for a number too big
        for a float), or ``None`` when the value is empty, negative or unparseable.
    """
    value = value.strip()
    if not value:
        return None
    if _DELTA.fullmatch(value):
        return float(value)  # "9" * 400 overflows to inf: a wait the caller will refuse
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are always GMT; a missing zone means UTC
        when = when.replace(tzinfo=UTC)
    try:
        wait = when.timestamp() - now
    except (OverflowError, OSError, ValueError):  # pragma: no cover - platform-dependent range
        return None
    return max(0.0, wait) if math.isfinite(wait) else None


def parse_retry_after_ms(value: str) -> float | None:
    """Seconds to wait from a ``retry-after-ms`` value (a non-negative number of milliseconds)."""
    value = value.strip()
    if not _DELTA.fullmatch(value):
        return None
    return float(value) / 1000.0


def retry_after_seconds(headers: Mapping[str, str], *, now: float) -> float | None:
    """The wait the server asked for, or ``None`` when it gave no usable hint.

    ``retry-after-ms`` wins over ``Retry-After`` (it is the more precise of the two).

    Args:
        headers: response headers, looked up case-insensitively (a ``multidict`` as aiohttp
            gives, or any mapping with lower-case keys).
        now: the current wall-clock time in seconds since the epoch.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        wait = parse_retry_after_ms(raw_ms)
        if wait is not None:
            return wait
    raw = headers.get("retry-after")
    return None if raw is None else parse_retry_after(raw, now=now)


def should_retry_hint(headers: Mapping[str, str]) -> bool | None:
    """The server's ``x-should-retry`` verdict: ``True``, ``False`` or ``None`` (no opinion)."""
    raw = headers.get("x-should-retry")
    if raw is None:
        return None
    raw = raw.strip().lower()
    if raw == "true":
        return True
    if raw == "false":
        return False
    return None


__all__ = ["parse_retry_after", "parse_retry_after_ms", "retry_after_seconds", "should_retry_hint"]
