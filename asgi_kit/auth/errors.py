"""Why a token or key was refused.

The hierarchy, so callers can catch as broadly as they need::

    InvalidTokenError                 every refused JWT (the middleware answers 401 for all of them)
    ├── MalformedTokenError           not three base64url segments, bad JSON, duplicate members, too long
    ├── UnsupportedAlgorithmError     ``none``, an algorithm outside the allowlist, or not the key's own
    ├── UnknownKeyError               no verification key for the ``kid``
    ├── BadSignatureError             the signature does not verify
    ├── ExpiredTokenError             ``exp`` (plus leeway) has passed
    ├── NotYetValidError              ``nbf`` or ``iat`` in the future (beyond leeway)
    ├── InvalidClaimError             a missing or ill-typed claim, a lifetime over the maximum
    │   ├── WrongAudienceError
    │   └── WrongIssuerError
    ├── WrongTokenTypeError           an access token where a refresh token is expected, or back
    └── RevokedTokenError             the ``jti`` or its family was revoked
        └── TokenReuseError           a refresh token presented twice (its family is now revoked)
    InvalidAPIKeyError                a malformed, unknown, wrong, expired or revoked API key
    CredentialStoreUnavailableError   a key store or key set could not be reached (503, not 401)

Messages never contain the token or key.
"""

from __future__ import annotations

from asgi_kit._asgi.exceptions import AsgiKitError, StoreUnavailableError


class InvalidTokenError(AsgiKitError):
    """A JWT was refused. The message names the reason, never the token."""


class MalformedTokenError(InvalidTokenError):
    """The token is not a well-formed compact JWS with strict JSON."""


class UnsupportedAlgorithmError(InvalidTokenError):
    """The header's ``alg`` is not allowed for the selected key."""


class UnknownKeyError(InvalidTokenError):
    """No verification key matches the header's ``kid``."""


class BadSignatureError(InvalidTokenError):
    """The signature does not verify under the selected key."""


class ExpiredTokenError(InvalidTokenError):
    """The token's ``exp`` has passed (leeway included)."""


class NotYetValidError(InvalidTokenError):
    """The token's ``nbf`` or ``iat`` lies in the future (leeway included)."""


class InvalidClaimError(InvalidTokenError):
    """A required claim is missing, has the wrong type, or is out of range."""


class WrongAudienceError(InvalidClaimError):
    """``aud`` does not name this service."""


class WrongIssuerError(InvalidClaimError):
    """``iss`` is not the configured issuer."""


class WrongTokenTypeError(InvalidTokenError):
    """An access token where a refresh token is expected, or the other way round."""


class RevokedTokenError(InvalidTokenError):
    """The token's ``jti`` or its refresh family has been revoked."""


class TokenReuseError(RevokedTokenError):
    """A refresh token was presented a second time; its whole family is now revoked."""


class InvalidAPIKeyError(AsgiKitError):
    """An API key was refused (malformed, bad checksum, unknown, wrong secret, expired, revoked)."""


class CredentialStoreUnavailableError(StoreUnavailableError):
    """The API-key store or the JWKS key set could not be consulted; answer 503, not 401."""


__all__ = [
    "BadSignatureError",
    "CredentialStoreUnavailableError",
    "ExpiredTokenError",
    "InvalidAPIKeyError",
    "InvalidClaimError",
    "InvalidTokenError",
    "MalformedTokenError",
    "NotYetValidError",
    "RevokedTokenError",
    "TokenReuseError",
    "UnknownKeyError",
    "UnsupportedAlgorithmError",
    "WrongAudienceError",
    "WrongIssuerError",
    "WrongTokenTypeError",
]
