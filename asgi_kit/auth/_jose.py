"""Strict decoding of compact JWS segments, done before (and instead of) PyJWT's lenient parse.

PyJWT accepts duplicate JSON members (the last one wins), ``NaN``/``Infinity`` and
non-numeric dates in places; RFC 8725 asks for one unambiguous reading of every token, so
the header and payload are decoded here: base64url without padding from a fixed alphabet,
strict UTF-8, JSON objects only, duplicate member names and non-finite constants refused.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from typing import Any, Final

from asgi_kit.auth.errors import MalformedTokenError

_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_TO_STANDARD: Final = str.maketrans("-_", "+/")


class _DuplicateMemberError(ValueError):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateMemberError("duplicate member")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def b64url_decode(segment: str) -> bytes:
    """Decode one unpadded base64url segment, refusing any character outside the alphabet."""
    if len(segment) % 4 == 1 or _B64URL.fullmatch(segment) is None:
        raise MalformedTokenError("segment is not base64url")
    standard = segment.translate(_TO_STANDARD) + "=" * (-len(segment) % 4)
    try:
        data = binascii.a2b_base64(standard, strict_mode=True)
    except (binascii.Error, ValueError):
        raise MalformedTokenError("segment is not base64url") from None
    # Refuse non-canonical encodings (unused trailing bits set): one token, one spelling.
    if binascii.b2a_base64(data, newline=False).decode("ascii") != standard:
        raise MalformedTokenError("segment is not canonical base64url")
    return data


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def strict_json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse ``raw`` as a UTF-8 JSON object with unique member names and no NaN/Infinity."""
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedTokenError(f"{what} is not a strict JSON object") from None
    if not isinstance(value, dict):
        raise MalformedTokenError(f"{what} is not a JSON object")
    return value


def is_numeric_date(value: object) -> bool:
    """A NumericDate is a finite JSON number: never a string, a boolean, NaN or an overflow."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


__all__ = ["b64url_decode", "is_numeric_date", "strict_json_object"]
