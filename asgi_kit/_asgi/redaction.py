"""The query parameters whose values are secrets, and the one function that blanks them.

Shared below the concerns that redact URLs: the access log (:mod:`asgi_kit.logging`) writes
``***`` in their place, the HTTP client's spans write semantic conventions' ``REDACTED`` in
``url.full``. The list and the matching rule are the same for both; only the marker differs.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote_plus

#: Query parameters (compared case-insensitively, after percent-decoding) whose value is a secret.
SECRET_QUERY_PARAMS: Final = frozenset(
    {
        "access_token",
        "api-key",
        "api_key",
        "apikey",
        "auth",
        "authorization",
        "client_secret",
        "code",
        "credential",
        "credentials",
        "id_token",
        "jwt",
        "key",
        "passwd",
        "password",
        "private_token",
        "pwd",
        "refresh_token",
        "secret",
        "session",
        "sessionid",
        "sig",
        "signature",
        "token",
        "x-amz-credential",
        "x-amz-security-token",
        "x-amz-signature",
        "x-api-key",
    }
)

_QUERY_SEPARATORS: Final = re.compile(r"([&;])")


def redact_query_values(query: str, secrets: frozenset[str], marker: str) -> str:
    """``query`` with the value of every parameter named in ``secrets`` replaced by ``marker``.

    Names are matched after percent- and plus-decoding and case-folding, so ``Api%5FKey=`` is
    caught too; ``;`` separates parameters as ``&`` does (some servers and frameworks split on
    it). Everything else is kept as sent, still percent-encoded.
    """
    if "%" not in query and "+" not in query and not _names_secret(query, secrets):
        # Most queries name no secret: nothing to replace, so skip the regex split and the rejoin.
        return query
    # Even indexes hold parameters, odd ones the separators.
    parts = _QUERY_SEPARATORS.split(query)
    for index in range(0, len(parts), 2):
        name, sep, _ = parts[index].partition("=")
        key = unquote_plus(name) if ("%" in name or "+" in name) else name
        if sep and key.strip().lower() in secrets:
            parts[index] = f"{name}={marker}"
    return "".join(parts)


def _names_secret(query: str, secrets: frozenset[str]) -> bool:
    """Whether a parameter of ``query`` (neither percent- nor plus-encoded) is named in ``secrets``."""
    for part in query.replace(";", "&").split("&"):
        if part.partition("=")[0].strip().lower() in secrets:
            return True
    return False


__all__ = ["SECRET_QUERY_PARAMS", "redact_query_values"]
