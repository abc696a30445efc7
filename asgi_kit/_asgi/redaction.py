"""What the kit never writes anywhere: secret query values and credential headers.

One list, one rule and one placeholder for every place a request's data is written: the
access log (:mod:`asgi_kit.logging`), server spans (:mod:`asgi_kit.tracing`), the HTTP client's
spans (:mod:`asgi_kit.httpclient`). The placeholder is OpenTelemetry's ``REDACTED``, which the
HTTP semantic conventions ask for in ``url.full`` and ``url.query``. Each layer's
``redact_query_params`` option adds names to :data:`SECRET_QUERY_PARAMS`; it never replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote_plus

from asgi_kit._asgi.options import check_strings

#: What replaces a secret wherever it would have been written.
REDACTED: Final = "REDACTED"

#: Query parameters (compared case-insensitively, after percent-decoding) whose value is a secret;
#: the semantic conventions' ``AWSAccessKeyId``, ``Signature``, ``sig`` and ``X-Goog-Signature`` included.
SECRET_QUERY_PARAMS: Final = frozenset(
    {
        "access_token",
        "awsaccesskeyid",
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
        "x-goog-signature",
    }
)

#: Request and response headers whose value is a credential.
SECRET_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-csrf-token",
        "x-xsrf-token",
        "x-amz-security-token",
    }
)

_QUERY_SEPARATORS: Final = re.compile(r"([&;])")
# scheme://user:password@host -> scheme://user:REDACTED@host (DSNs, proxy URLs), and
# scheme://token@host -> scheme://REDACTED@host (tokens passed as the user name). The password part
# runs to the *last* ``@`` of the authority, because real passwords contain unescaped ``@``.
_URL_CREDENTIALS: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^\s:/?#@]*)(:[^\s/?#]*)?@")
# ...?token=abc&page=2 inside a logged URL (an HTTP client logging its requests, say).
_SECRET_NAMES: Final = "|".join(re.escape(name) for name in sorted(SECRET_QUERY_PARAMS))
_URL_SECRET_PARAMS: Final = re.compile(rf"([?&;](?:{_SECRET_NAMES})=)[^&;#\s\"'<>]*", re.IGNORECASE)


def secret_names(option: str, extra: Iterable[str], defaults: frozenset[str]) -> frozenset[str]:
    """``defaults`` plus the ``extra`` names of a layer's ``option``, lower-cased.

    Raises:
        TypeError: ``extra`` is a single string (a common slip for a one-name list), or holds
            something other than strings.
        ValueError: a name is empty.
    """
    return defaults | {name.strip().lower() for name in check_strings(option, extra)}


def redact_query_values(query: str, secrets: frozenset[str], marker: str = REDACTED) -> str:
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


def redact_url_credentials(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL replaced, and the
    value of every secret query parameter (``?token=``, ``&api_key=`` ...) in it too."""
    if "://" not in text:
        return text
    text = _URL_CREDENTIALS.sub(_redact_userinfo, text)
    if "=" in text:
        text = _URL_SECRET_PARAMS.sub(rf"\1{REDACTED}", text)
    return text


def _redact_userinfo(match: re.Match[str]) -> str:
    scheme, user, password = match.group(1, 2, 3)
    if password is None:
        return f"{scheme}{REDACTED}@"
    return f"{scheme}{user}:{REDACTED}@"


__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMS",
    "redact_query_values",
    "redact_url_credentials",
    "secret_names",
]
