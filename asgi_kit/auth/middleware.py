"""``AuthMiddleware``: who is calling, from a bearer JWT or an API key.

Place it after the request-id, logging and tracing layers (so they record the 401s) and
before RBAC, budgets and the app. It reads ``Authorization`` and the API-key header and
writes the :class:`~asgi_kit._asgi.principal.Principal` to ``scope["user"]`` and its
credentials to ``scope["auth"]`` (``request.user`` in Starlette, FastAPI and Litestar).

Answers it gives itself (``application/problem+json``, or OpenAI's error shape on the routes
marked as OpenAI-compatible, through :func:`~asgi_kit.errors.write_problem_details`):

- **401** no credentials (``WWW-Authenticate: Bearer realm="..."``) or bad ones (the same
  plus ``error="invalid_token"``, and OpenAI's code ``invalid_api_key``), with a body that is
  the same whatever the reason the credential was bad, so a failure is no oracle;
- **400** ``error="invalid_request"``: two ``Authorization`` headers, two API-key headers,
  or both an ``Authorization`` header and an API-key header (never "first wins");
- **503** the API-key store (or a never-loaded JWKS) could not be consulted.

Websocket handshakes are authenticated too: refused ones get the same response as a denial
(``websocket.http.response``) when the server supports it, else a close with code 1008
before accept. ``OPTIONS`` (CORS preflight) passes unauthenticated by default. Tokens and
keys are never logged or echoed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import Enum
from types import MappingProxyType
from typing import Final

from asgi_kit._asgi.challenge import bearer_challenge
from asgi_kit._asgi.headers import header_name
from asgi_kit._asgi.options import check_instance, check_int
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.principal import Credentials, Principal, credentials_of, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.auth.apikey import APIKeyVerifier
from asgi_kit.auth.cache import VerifiedTokenCache
from asgi_kit.auth.errors import CredentialStoreUnavailableError, InvalidAPIKeyError, InvalidTokenError
from asgi_kit.auth.jwt import JWTManager
from asgi_kit.auth.stores import APIKeyStore
from asgi_kit.errors import (
    BAD_REQUEST,
    SERVICE_UNAVAILABLE,
    UNAUTHORIZED,
    ProblemDetails,
    deny_websocket,
    write_problem_details,
)

logger = logging.getLogger("asgi_kit.auth")


class _Refusal(Enum):
    """Why authentication gave no principal; each has its own answer."""

    NO_CREDENTIALS = "no credentials"
    INVALID = "invalid credentials"
    BAD_REQUEST = "ambiguous credentials"
    UNAVAILABLE = "credential store unavailable"


_NO_CREDENTIALS: Final = _Refusal.NO_CREDENTIALS
_INVALID: Final = _Refusal.INVALID
_BAD_REQUEST: Final = _Refusal.BAD_REQUEST
_UNAVAILABLE: Final = _Refusal.UNAVAILABLE

_AUTHORIZATION: Final = b"authorization"
_BAD_CREDENTIALS: Final = BAD_REQUEST.with_detail("Send exactly one credential, in one header")
# OpenAI's code for a wrong key, so its clients say why; the same body for every bad credential.
_INVALID_CREDENTIALS: Final = UNAUTHORIZED.with_detail(
    "The credentials are invalid or expired"
).with_extensions(code="invalid_api_key")

# Who is calling, and the scope["auth"] that goes with it: both immutable, so a cached
# token's pair is shared by all its requests (building Credentials was 7% of a cache hit).
_Identity = tuple[Principal, Credentials]
# A verified JWT: its identity, jti and refresh family (revocation is checked per request).
_CachedToken = tuple[_Identity, "str | None", "str | None"]


class AuthMiddleware:
    """Authenticate HTTP requests and websocket handshakes by bearer JWT or API key.

    Args:
        app: the ASGI app to protect.
        jwt: validates ``Authorization: Bearer <jwt>``; ``None`` disables JWTs.
        api_keys: an :class:`APIKeyStore` (wrapped in a default :class:`APIKeyVerifier`) or a
            configured verifier; keys are read from ``api_key_header`` and from
            ``Authorization: Bearer <key>`` (what OpenAI clients send). ``None`` disables them.
        api_key_header: the API-key header (default ``X-API-Key``).
        exclude_paths: exact paths (or ``/subtree/*``) that skip authentication.
        allow_anonymous: let requests *without* credentials through with no principal
            (bad credentials are still refused).
        allow_options: let ``OPTIONS`` requests (CORS preflights) through unauthenticated.
        realm: the ``realm`` of the ``WWW-Authenticate`` challenge.
        token_cache_size: verified JWTs kept in memory (0 disables); revocation is still
            checked for every request.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        jwt: JWTManager | None = None,
        api_keys: APIKeyStore | APIKeyVerifier | None = None,
        api_key_header: str = "X-API-Key",
        exclude_paths: Sequence[str] = (),
        allow_anonymous: bool = False,
        allow_options: bool = True,
        realm: str = "api",
        token_cache_size: int = 10_000,
    ) -> None:
        if jwt is not None:
            check_instance("jwt", jwt, JWTManager, "a JWTManager or None")
        if api_keys is not None and not isinstance(api_keys, APIKeyVerifier):
            check_instance("api_keys", api_keys, APIKeyStore, "an APIKeyStore, an APIKeyVerifier or None")
            api_keys = APIKeyVerifier(api_keys)
        if jwt is None and api_keys is None:
            raise ValueError("AuthMiddleware needs jwt=, api_keys= or both")
        self.app = app
        self._jwt = jwt
        self._api_keys = api_keys
        self._key_header = (
            header_name(api_key_header, option="api_key_header") if api_keys is not None else None
        )
        # An excluded request (a health check) should cost one set lookup: exact paths are tested
        # inline when there is no root_path; the filter decides the rest (subtrees, mounts).
        self._exclude = PathFilter(exclude_paths)
        self._allow_anonymous = bool(allow_anonymous)
        self._allow_options = bool(allow_options)
        self._cache: VerifiedTokenCache[_CachedToken] | None = None
        if check_int("token_cache_size", token_cache_size, minimum=0) and jwt is not None:
            self._cache = VerifiedTokenCache(token_cache_size, clock=jwt.clock)
        self._max_credential = max(jwt.config.max_token_bytes if jwt else 0, 256) + 16
        self._answers: dict[_Refusal, tuple[ProblemDetails, list[tuple[bytes, bytes]]]] = {
            _NO_CREDENTIALS: (UNAUTHORIZED, [(b"www-authenticate", bearer_challenge(realm))]),
            _INVALID: (
                _INVALID_CREDENTIALS,
                [(b"www-authenticate", bearer_challenge(realm, error="invalid_token"))],
            ),
            _BAD_REQUEST: (
                _BAD_CREDENTIALS,
                [(b"www-authenticate", bearer_challenge(realm, error="invalid_request"))],
            ),
            _UNAVAILABLE: (SERVICE_UNAVAILABLE, [(b"retry-after", b"5")]),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or self._exclude.matches(scope):
            await self.app(scope, receive, send)
            return
        if self._allow_options and kind == "http" and scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        outcome = await self._authenticate(scope)
        if isinstance(outcome, tuple):
            set_principal(scope, *outcome)
        elif not (outcome == _NO_CREDENTIALS and self._allow_anonymous):
            await self._refuse(scope, send, outcome)
            return
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> _Identity | _Refusal:
        authorization: bytes | None = None
        api_key: bytes | None = None
        seen_authorization = seen_key = 0
        key_header = self._key_header
        for name, value in scope.get("headers") or ():
            if name == _AUTHORIZATION:
                authorization, seen_authorization = value, seen_authorization + 1
            elif name == key_header:
                api_key, seen_key = value, seen_key + 1
        if seen_authorization > 1 or seen_key > 1 or (seen_authorization and seen_key):
            return _BAD_REQUEST
        if authorization is not None:
            # A hit means these exact header bytes were verified as a JWT before: skip parsing them.
            cached = self._cache.get(authorization) if self._cache is not None else None
            if cached is not None:
                return await self._unless_revoked(*cached)
            token = self._bearer(authorization)
            if token is None:
                return _INVALID
            if self._api_keys is not None and (self._jwt is None or self._api_keys.looks_like_key(token)):
                return await self._from_api_key(token)
            return await self._from_jwt(token, authorization)
        if api_key is not None:
            if len(api_key) > self._max_credential:
                return _INVALID
            return await self._from_api_key(api_key.strip(b" \t"))
        return _NO_CREDENTIALS

    def _bearer(self, value: bytes) -> bytes | None:
        if len(value) > self._max_credential or value[:7].lower() != b"bearer ":
            return None
        token = value[7:].strip(b" \t")
        # No RFC 6750 b64token match here: both readers of the token are stricter and scan it
        # anyway (a JWT must match the compact JWS alphabet, an API key its own format), so a
        # third pass over ~300 bytes was only cost (a scan per cold request).
        return token or None

    async def _from_jwt(self, token: bytes, authorization: bytes) -> _Identity | _Refusal:
        jwt = self._jwt
        if jwt is None:  # only called when a JWT manager is configured; no assert (python -O)
            return _INVALID
        try:
            # Keys all in memory: verify without creating and awaiting a coroutine.
            payload = jwt.verify_sync(token) if jwt.jwks is None else await jwt.verify(token)
            role, org_id, scopes = jwt.identity(payload)
        except InvalidTokenError as exc:
            logger.debug("JWT refused: %s", type(exc).__name__)
            return _INVALID
        except CredentialStoreUnavailableError:
            return _UNAVAILABLE
        principal = Principal(
            user_id=payload["sub"],
            org_id=org_id,
            role=role,
            auth_method="jwt",
            claims=MappingProxyType(payload),
            scopes=scopes,
        )
        identity = (principal, credentials_of(principal))
        jti, family = payload.get("jti"), payload.get("fam")
        if self._cache is not None:
            self._cache.put(authorization, (identity, jti, family), float(payload["exp"]))
        return await self._unless_revoked(identity, jti, family)

    async def _unless_revoked(
        self, identity: _Identity, jti: str | None, family: str | None
    ) -> _Identity | _Refusal:
        jwt = self._jwt
        if jwt is None or jti is None:  # a provider's token without a jti is revoked by its provider
            return identity
        try:
            revoked = await jwt.revocation_store.is_revoked(jti, family)
        except Exception as exc:
            logger.warning("token revocation store unavailable (%s)", type(exc).__name__)
            return _UNAVAILABLE
        if revoked:
            logger.debug("JWT refused: revoked")
            return _INVALID
        return identity

    async def _from_api_key(self, key: bytes) -> _Identity | _Refusal:
        verifier = self._api_keys
        if verifier is None:
            return _INVALID
        try:
            record = await verifier.verify(key)
        except InvalidAPIKeyError as exc:
            logger.debug("API key refused: %s", exc)
            return _INVALID
        except CredentialStoreUnavailableError:
            return _UNAVAILABLE
        principal = Principal(
            user_id=record.user_id,
            org_id=record.org_id,
            role=record.role,
            auth_method="api_key",
            key_id=record.key_id,
            scopes=tuple(record.scopes),
        )
        return principal, credentials_of(principal)

    async def _refuse(self, scope: Scope, send: Send, outcome: _Refusal) -> None:
        problem, headers = self._answers[outcome]
        if scope["type"] == "http":
            await write_problem_details(send, problem, headers, scope=scope)
            return
        await deny_websocket(scope, send, problem, headers)


__all__ = ["AuthMiddleware", "deny_websocket"]
