"""Authentication: hardened JWTs (RFC 8725), API keys, and ``AuthMiddleware`` (RFC 6750).

Needs the ``jwt`` extra: ``pip install 'asgi-kit[jwt]'``. Of it, PyJWT and cryptography are
imported on the first asymmetric key and aiohttp on the first :class:`JWKSKeySet`.
"""

from importlib.util import find_spec as _find_spec

from asgi_kit._asgi.optional import require

# Checked, not imported: PyJWT and cryptography (10 MiB) load on the first asymmetric key, and
# aiohttp on the first JWKS key set, so an HMAC-only service never pays for them. A missing one
# still fails here, on import, with the pip install to run.
for _module in ("jwt", "cryptography"):
    if _find_spec(_module) is None:
        require(_module, "jwt")

from asgi_kit._asgi.principal import Credentials, Principal, get_principal, set_principal
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
from asgi_kit.auth.jwt import Claims, JWTConfig, JWTManager, ProviderProfile, TokenPair
from asgi_kit.auth.middleware import AuthMiddleware
from asgi_kit.auth.stores import (
    APIKeyEventSource,
    APIKeyInvalidator,
    APIKeyRecord,
    APIKeyStore,
    InMemoryAPIKeyStore,
    InMemoryTokenRevocationStore,
    TokenRevocationStore,
)

__all__ = [
    "APIKeyEventSource",
    "APIKeyInvalidator",
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
    "ProviderProfile",
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
    "set_principal",
    "validate_api_key",
]
