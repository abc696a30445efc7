"""Authentication: hardened JWTs (RFC 8725), API keys, and ``AuthMiddleware`` (RFC 6750).

Needs the ``jwt`` extra: ``pip install 'asgi-kit[jwt]'`` (aiohttp, part of it, is imported only
when a :class:`JWKSKeySet` is built).
"""

from asgi_kit._asgi.optional import require

require("jwt", "jwt")
require("cryptography", "jwt")

from asgi_kit._asgi.principal import Credentials, Principal, get_principal
from asgi_kit.auth.apikey import (
    APIKeyVerifier,
    ParsedAPIKey,
    generate_api_key,
    hash_api_key,
    parse_api_key,
    validate_api_key,
)
from asgi_kit.auth.cache import VerifiedTokenCache
from asgi_kit.auth.errors import (
    BadSignatureError,
    CredentialStoreUnavailableError,
    ExpiredTokenError,
    InvalidAPIKeyError,
    InvalidClaimError,
    InvalidTokenError,
    MalformedTokenError,
    NotYetValidError,
    RevokedTokenError,
    TokenReuseError,
    UnknownKeyError,
    UnsupportedAlgorithmError,
    WrongAudienceError,
    WrongIssuerError,
    WrongTokenTypeError,
)
from asgi_kit.auth.jwks import JWKSKeySet
from asgi_kit.auth.jwt import Claims, JWTConfig, JWTManager, TokenPair
from asgi_kit.auth.middleware import AuthMiddleware
from asgi_kit.auth.stores import (
    APIKeyRecord,
    APIKeyStore,
    InMemoryAPIKeyStore,
    InMemoryTokenRevocationStore,
    TokenRevocationStore,
)

__all__ = [
    "APIKeyRecord",
    "APIKeyStore",
    "APIKeyVerifier",
    "AuthMiddleware",
    "BadSignatureError",
    "Claims",
    "CredentialStoreUnavailableError",
    "Credentials",
    "ExpiredTokenError",
    "InMemoryAPIKeyStore",
    "InMemoryTokenRevocationStore",
    "InvalidAPIKeyError",
    "InvalidClaimError",
    "InvalidTokenError",
    "JWKSKeySet",
    "JWTConfig",
    "JWTManager",
    "MalformedTokenError",
    "NotYetValidError",
    "ParsedAPIKey",
    "Principal",
    "RevokedTokenError",
    "TokenPair",
    "TokenReuseError",
    "TokenRevocationStore",
    "UnknownKeyError",
    "UnsupportedAlgorithmError",
    "VerifiedTokenCache",
    "WrongAudienceError",
    "WrongIssuerError",
    "WrongTokenTypeError",
    "generate_api_key",
    "get_principal",
    "hash_api_key",
    "parse_api_key",
    "validate_api_key",
]
