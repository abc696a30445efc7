"""Helpers on the raw ASGI header list.

ASGI servers give header names lower-cased as bytes and keep duplicates; these helpers keep
that shape (never a ``dict``, which would drop duplicates) and never decode, so non-UTF-8
bytes from a hostile client cannot raise.
"""

from __future__ import annotations

from collections.abc import Iterable

from asgi_kit._asgi.options import check_str
from asgi_kit._asgi.types import Scope

HeaderList = Iterable[tuple[bytes, bytes]]


def header_name(name: str, *, option: str = "header name") -> bytes:
    """Normalise a configured header name to the lower-case bytes servers send.

    ``option`` names the setting in error messages (``api_key_header``, ``redact_headers``).
    """
    try:
        encoded = check_str(option, name).strip().lower().encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{option} {name!r} must be ASCII") from None
    if any(c <= 0x20 or c >= 0x7F or c in b'()<>@,;:\\"/[]?={}' for c in encoded):
        raise ValueError(f"{option} {name!r} is not a valid header name token")
    return encoded


def get_header(headers: HeaderList, name: bytes) -> bytes | None:
    """The first value of ``name`` (lower-case bytes), or ``None``."""
    for key, value in headers:
        if key == name:
            return value
    return None


def get_header_values(headers: HeaderList, name: bytes) -> list[bytes]:
    """Every value of ``name`` in order, duplicates kept."""
    return [value for key, value in headers if key == name]


def get_single_header(headers: HeaderList, name: bytes) -> tuple[bytes | None, int]:
    """The value of ``name`` and how many times it occurred (so callers can refuse duplicates)."""
    found: bytes | None = None
    count = 0
    for key, value in headers:
        if key == name:
            if count == 0:
                found = value
            count += 1
    return found, count


def scope_header(scope: Scope, name: bytes) -> bytes | None:
    """Shortcut for :func:`get_header` on ``scope["headers"]``."""
    return get_header(scope.get("headers") or (), name)


def has_header(headers: HeaderList, name: bytes) -> bool:
    return any(key == name for key, _ in headers)


def decode_header(value: bytes, limit: int | None = None) -> str:
    """Decode header bytes for display: latin-1 never fails, and ``limit`` bounds the size."""
    if limit is not None and len(value) > limit:
        value = value[:limit]
    return value.decode("latin-1")


__all__ = [
    "decode_header",
    "get_header",
    "get_header_values",
    "get_single_header",
    "has_header",
    "header_name",
    "scope_header",
]
