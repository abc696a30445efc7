"""OpenAI's duration format for ``x-ratelimit-reset-*``: ``20ms``, ``1s``, ``1.5s``, ``6m0s``, ``1h0m0s``.

It is Go's ``time.Duration`` notation, which OpenAI's API sends and SDKs and proxies parse. The
kit writes whole milliseconds: below a second as ``<n>ms``, from a second on as hours, minutes
and seconds with the leading zero units left out and the fraction of a second trimmed
(``1m0.25s``). :func:`parse_duration` reads every form Go writes (``h``, ``m``, ``s``, ``ms``,
``us``/``µs``, ``ns``, decimals, several units in a row) and rejects anything else.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

# Decimal, so "1.001s" is exactly 1001 ms (a float product would be 1000.9999...).
_UNITS_MS: Final = {
    "h": Decimal(3_600_000),
    "m": Decimal(60_000),
    "s": Decimal(1000),
    "ms": Decimal(1),
    "us": Decimal("0.001"),
    "µs": Decimal("0.001"),
    "ns": Decimal("0.000001"),
}
# ASCII digits only: \d would accept other scripts' digits
_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|us|µs|ns|h|m|s)")
_MAX_TEXT: Final = 64  # a header value longer than this is not a duration anyone sends


def format_duration(milliseconds: int) -> str:
    """``milliseconds`` in OpenAI's (Go's) notation: ``0s``, ``20ms``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, int):
        raise TypeError("milliseconds must be an int")
    if milliseconds < 0:
        raise ValueError("milliseconds must not be negative")
    if milliseconds == 0:
        return "0s"
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = f"{seconds}.{millis:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def parse_duration(text: str) -> float:
    """The milliseconds a Go-style duration stands for (``"6m0s"`` -> ``360000.0``).

    Raises:
        ValueError: ``text`` is not a non-negative Go duration.
    """
    if not isinstance(text, str):
        raise TypeError("duration must be a str")
    value = text.strip()
    if value == "0":
        return 0.0
    if not value or len(value) > _MAX_TEXT:
        raise ValueError(f"not a duration: {text!r}")
    total = Decimal(0)
    position = 0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += Decimal(match.group(1)) * _UNITS_MS[match.group(2)]
        position = match.end()
    if position != len(value):
        raise ValueError(f"not a duration: {text!r}")
    return float(total)


__all__ = ["format_duration", "parse_duration"]
