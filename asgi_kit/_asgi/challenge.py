"""``WWW-Authenticate`` Bearer challenges (RFC 6750 §3), built once when a layer is made.

The realm and scope are sent as RFC 9110 §5.6.4 quoted-strings: a ``"`` or ``\\`` in a realm
is escaped, never able to end the parameter early and smuggle another one in.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from asgi_kit._asgi.options import check_str

BearerError = Literal["invalid_request", "invalid_token", "insufficient_scope"]

_ERRORS: Final = frozenset({"invalid_request", "invalid_token", "insufficient_scope"})
_REALM: Final = re.compile(r"[\x20-\x7e]{1,64}")  # printable ASCII: a client shows the realm to people
_SCOPE: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")  # RFC 6750 §3 scope
_QUOTED: Final = re.compile(r'(["\\])')


def quoted_string(text: str) -> str:
    """``text`` as an RFC 9110 §5.6.4 quoted-string: in double quotes, ``"`` and ``\\`` escaped."""
    return '"' + _QUOTED.sub(r"\\\1", text) + '"'


def _check_realm(realm: object) -> str:
    if _REALM.fullmatch(check_str("realm", realm)) is None:
        raise ValueError(f"realm must be 1-64 printable ASCII characters, got {realm!r}")
    return str(realm)


def bearer_challenge(realm: str, *, error: BearerError | None = None, scope: str | None = None) -> bytes:
    """The ``WWW-Authenticate`` value for a Bearer refusal: ``Bearer realm="api", error="..."``.

    Args:
        realm: the protection space (1-64 printable ASCII characters).
        error: the RFC 6750 §3.1 error code; ``None`` when the request had no credentials.
        scope: the space-separated scope the resource needs (with ``insufficient_scope``).

    Raises:
        TypeError: ``realm`` or ``scope`` is not a ``str``.
        ValueError: ``realm``, ``error`` or ``scope`` is not one RFC 6750 allows.
    """
    params = [f"realm={quoted_string(_check_realm(realm))}"]
    if error is not None:
        if error not in _ERRORS:
            raise ValueError(f"error must be one of {', '.join(sorted(_ERRORS))}, got {error!r}")
        params.append(f'error="{error}"')
    if scope is not None:
        if _SCOPE.fullmatch(check_str("scope", scope)) is None:
            raise ValueError(f"scope must be space-separated RFC 6750 scope tokens, got {scope!r}")
        params.append(f"scope={quoted_string(scope)}")
    return ("Bearer " + ", ".join(params)).encode("ascii")


__all__ = ["BearerError", "bearer_challenge", "quoted_string"]
