"""Make untrusted request data safe to write into a log line.

Everything a client sends (path, query, headers, ``X-Forwarded-For``) may hold secrets, CR/LF
meant to forge a second log line, terminal escape sequences, or megabytes of junk. These
helpers redact the secrets, escape control characters and bound the length of every value.
They never raise on hostile input: bytes are decoded as latin-1, which cannot fail.

JSON encoding alone already escapes CR and LF; escaping them here as well keeps a line safe
when the same fields reach a plain-text formatter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from asgi_kit._asgi.redaction import (
    REDACTED,
    SECRET_HEADERS,
    SECRET_QUERY_PARAMS,
    redact_query_values,
    redact_url_credentials,
)

TRUNCATED: Final = "...[truncated]"

#: The kit's one list of credential headers (:mod:`asgi_kit._asgi.redaction`).
DEFAULT_REDACT_HEADERS: Final = SECRET_HEADERS

#: The kit's one list of secret query parameters (:mod:`asgi_kit._asgi.redaction`).
DEFAULT_REDACT_QUERY_PARAMS: Final = SECRET_QUERY_PARAMS

# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators: anything a
# terminal or a line-oriented log shipper could treat as a line break or an escape sequence.
_CONTROL_ESCAPES: Final = {
    **{c: f"\\x{c:02x}" for c in range(0x20)},
    0x7F: "\\x7f",
    **{c: f"\\x{c:02x}" for c in range(0x80, 0xA0)},
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def escape_control(text: str) -> str:
    """``text`` with every control character written as a visible escape (``\\x0a``)."""
    # isprintable() is a C-speed scan that is True for nearly every real value.
    if text.isprintable():
        return text
    return text.translate(_CONTROL_ESCAPES)


def bound(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(TRUNCATED), 0)] + TRUNCATED


def safe_text(value: str | bytes, limit: int) -> str:
    """A value from the request, decoded, cut to ``limit`` and with control characters escaped.

    Cutting happens before escaping (so a hostile value costs at most ``limit`` work) and again
    after it, because each escape is four characters long.
    """
    if type(value) is str:
        # Nearly every real value is short and printable: two C calls instead of four Python ones.
        if len(value) <= limit and value.isprintable():
            return value
    elif isinstance(value, bytes | bytearray):
        value = bytes(value[: limit + 1]).decode("latin-1")
    return bound(escape_control(bound(value, limit)), limit)


def redact_header(
    name: str | bytes, value: str | bytes, limit: int = 1024, *, redact: Iterable[str] = ()
) -> str:
    """The loggable form of one header value: :data:`REDACTED` for credentials, else safe text."""
    if isinstance(name, bytes | bytearray):
        name = bytes(name).decode("latin-1")
    lowered = name.strip().lower()
    if lowered in DEFAULT_REDACT_HEADERS or lowered in redact:
        return REDACTED
    return safe_text(value, limit)


def redact_query(
    query: str | bytes, limit: int = 1024, *, secrets: frozenset[str] = DEFAULT_REDACT_QUERY_PARAMS
) -> str:
    """A query string with the value of every secret parameter replaced by :data:`REDACTED`.

    Parameter names are matched after percent-decoding and case-folding, so ``Api%5FKey=`` is
    caught too. Non-secret values are kept as sent (still percent-encoded), then the whole string
    is bounded and control characters escaped.
    """
    if isinstance(query, bytes | bytearray):
        # Bound the work before parsing: a secret cut in half is still cut by the redaction below
        # only if its name survived; anything past the limit is dropped, never logged.
        query = bytes(query[: limit * 2]).decode("latin-1")
    elif len(query) > limit * 2:
        query = query[: limit * 2]
    if not query:
        return ""
    return safe_text(redact_query_values(query, secrets, REDACTED), limit)


__all__ = [
    "DEFAULT_REDACT_HEADERS",
    "DEFAULT_REDACT_QUERY_PARAMS",
    "REDACTED",
    "TRUNCATED",
    "bound",
    "escape_control",
    "redact_header",
    "redact_query",
    "redact_url_credentials",
    "safe_text",
]
