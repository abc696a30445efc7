"""JWT access/refresh tokens on PyJWT's algorithms, hardened to RFC 8725.

What is refused, beyond PyJWT's defaults:

- at construction: ``none`` or any algorithm outside HS256/384/512, RS256, ES256, EdDSA, Ed25519; an
  HMAC secret shorter than the hash (32/48/64 bytes); an RSA key under 2048 bits; a leeway
  outside 0-300 s; a missing issuer or audience;
- at validation: a token longer than ``max_token_bytes`` (checked before any decoding); any
  ``alg`` other than the one bound to the selected key; ``jku``/``jwk``/``x5u``/``x5c``
  headers (never followed) and any ``crit`` entry; duplicate JSON members, non-UTF-8 JSON,
  ``NaN``; NumericDates that are not finite numbers; missing ``exp``/``iat``/``sub``/``jti``;
  a lifetime (``exp - iat``) over the maximum; an access token used as a refresh token or
  the other way round (``typ`` header and ``type`` claim).

Tokens are signed and verified on keys prepared once (HMAC with the standard library, the
asymmetric algorithms with PyJWT's algorithm objects), so the hot path does no PEM parsing. Revocation is keyed on ``jti`` (and the refresh family),
never on the token string, whose signature encoding is malleable.
"""

from __future__ import annotations

import json
import secrets
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from asgi_kit._asgi.options import check_choice, check_instance, check_int, check_str, check_strings
from asgi_kit.auth._jose import b64url_decode, is_numeric_date, split_compact, strict_json_object
from asgi_kit.auth.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
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
from asgi_kit.auth.jwks import MAX_KID_LENGTH, JWKSKeySet
from asgi_kit.auth.keys import (
    ASYMMETRIC_ALGORITHMS,
    HMAC_ALGORITHMS,
    SUPPORTED_ALGORITHMS,
    VerificationKey,
    algorithm_impl,
    make_kid,
    prepare_hmac_secret,
    prepare_private_key,
    prepare_public_key,
    sign,
)
from asgi_kit.auth.stores import InMemoryTokenRevocationStore, TokenRevocationStore

TokenType = Literal["access", "refresh"]
ACCESS: Final[TokenType] = "access"

#: ``typ`` header per token type (RFC 9068 for access tokens; RFC 8725 §3.11 explicit typing).
TYP_HEADERS: Final[dict[str, str]] = {"access": "at+jwt", "refresh": "refresh+jwt"}
_FORBIDDEN_HEADERS: Final = frozenset({"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "zip", "enc"})
_MAX_CLAIM_LENGTH: Final = 1024
_HEADER_CACHE_SIZE: Final = 256


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    """How to read access tokens that an identity provider mints (Keycloak, Auth0, Okta, Entra ID, Cognito).

    The kit's own tokens are strict by design (``typ`` ``at+jwt``, a ``type`` claim, a string
    ``role``, lifetime ``access_ttl``); a provider's tokens are shaped by the provider. With a
    profile, access tokens are still signature-, issuer-, audience- and time-checked exactly as
    before, and everything else is read as configured here. Refresh tokens stay the kit's own.

    Attributes:
        typ: the accepted ``typ`` headers, compared as media types (case-insensitive, and
            ``application/`` implied): RFC 9068's ``at+jwt`` and the plain ``JWT`` most
            providers send.
        require_typ: refuse tokens without a ``typ`` header (absent is accepted by default).
        roles_claim: where the roles are: a claim name, or a dotted path into nested objects
            (``realm_access.roles``); a name that exists as a whole wins over a path, so
            namespaced claims such as ``https://example.com/roles`` work. A string or a list
            of strings.
        role_map: provider role -> principal role. The first entry (in mapping order) whose
            provider role the token carries gives the principal's role; without a map, the
            token's first role is used as it is.
        default_role: the role of a token that carries no (mapped) role; ``None`` refuses it.
        org_claim: the organization's claim name or dotted path; ``None`` for no organization.
        scope_claims: where the scopes are, first present wins: a space-separated string
            (``scope``, Entra ID's ``scp``) or a list of strings (Okta's ``scp``).
        max_lifetime: the longest ``exp - iat`` accepted (providers issue 5 minutes to a day).
    """

    typ: tuple[str, ...] = ("at+jwt", "JWT")
    require_typ: bool = False
    roles_claim: str = "roles"
    role_map: Mapping[str, str] = field(default_factory=dict)
    default_role: str | None = None
    org_claim: str | None = "org_id"
    scope_claims: tuple[str, ...] = ("scope", "scp")
    max_lifetime: int = 86_400

    def __post_init__(self) -> None:
        check_instance("typ", self.typ, tuple, "a tuple of strings")
        check_strings("typ", self.typ)
        if not self.typ and self.require_typ:
            raise ValueError("typ must not be empty when require_typ is set")
        check_str("roles_claim", self.roles_claim)
        if self.org_claim is not None:
            check_str("org_claim", self.org_claim)
        check_instance("role_map", self.role_map, Mapping, "a mapping of provider role to role")
        check_strings("role_map keys", self.role_map.keys())
        check_strings("role_map values", self.role_map.values())
        if self.default_role is not None:
            check_str("default_role", self.default_role)
        check_instance("scope_claims", self.scope_claims, tuple, "a tuple of strings")
        check_strings("scope_claims", self.scope_claims)
        check_int("max_lifetime", self.max_lifetime, minimum=1, maximum=366 * 86_400)

    def accepted_typ(self) -> frozenset[str]:
        """Every accepted ``typ``, lower-cased, with and without ``application/``."""
        lowered = {t.lower().removeprefix("application/") for t in self.typ}
        return frozenset(lowered | {"application/" + t for t in lowered})

    def identity(self, payload: Mapping[str, Any]) -> tuple[str, str | None, tuple[str, ...]]:
        """``(role, org_id, scopes)`` read from a verified payload.

        Raises:
            InvalidClaimError: no role and no ``default_role``, or a claim of the wrong shape.
        """
        roles = _strings(_claim(payload, self.roles_claim), self.roles_claim)
        role = None
        if self.role_map:
            role = next((mapped for theirs, mapped in self.role_map.items() if theirs in roles), None)
        elif roles:
            role = roles[0]
        role = role or self.default_role
        if role is None:
            raise InvalidClaimError("token carries no accepted role")
        org_id = None
        if self.org_claim is not None:
            org = _claim(payload, self.org_claim)
            if org is not None and (not isinstance(org, str) or not org or len(org) > _MAX_CLAIM_LENGTH):
                raise InvalidClaimError("organization claim must be a string")
            org_id = org
        scopes: tuple[str, ...] = ()
        for name in self.scope_claims:
            value = payload.get(name)
            if value is not None:
                scopes = tuple(value.split()) if isinstance(value, str) else _strings(value, name)
                break
        return role, org_id, scopes


_MISSING: Final = object()


def _claim(payload: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects when no claim has the whole name."""
    if path in payload:
        return payload[path]
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return None
    return value


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and len(value) <= 256 and all(isinstance(v, str) for v in value):
        return tuple(v for v in value if v)
    raise InvalidClaimError(f"{name} must be a string or a list of strings")


@dataclass(frozen=True, slots=True)
class JWTConfig:
    """How tokens are signed and checked. Secrets are hidden from ``repr``.

    Field names match :class:`asgi_kit.config.JWTSettings`, so
    ``JWTConfig(**settings.jwt.options())`` works.

    Attributes:
        algorithm: ``HS256``/``HS384``/``HS512`` (with ``secret``), ``RS256``/``ES256``/``EdDSA``/``Ed25519`` (RFC 9864)
            (with ``private_key`` to sign and/or ``public_key`` to verify, PEM).
        secret: the HMAC secret, at least as long as the hash (32 bytes for HS256).
        private_key: PEM private key that signs (its public half also verifies).
        public_key: PEM public key that verifies (verify-only without ``private_key``).
        key_id: the ``kid`` put on signed tokens; by default a digest of the public key/secret.
        verification_keys: more keys by ``kid`` (same algorithm) that verify but never sign:
            the previous key during a rotation.
        jwks_url: a JWKS document of more verification keys (RS256/ES256/EdDSA/Ed25519 only).
        issuer: required ``iss``, compared exactly.
        audience: required ``aud`` (this service), compared exactly.
        access_ttl, refresh_ttl: token lifetimes in seconds.
        leeway: clock-skew allowance in seconds, 0-300.
        max_lifetime: longest ``exp - iat`` accepted for access tokens (default ``access_ttl``);
            refresh tokens are bounded by ``refresh_ttl``.
        max_token_bytes: longer tokens are refused before any decoding.
        jwks_cache_ttl, jwks_cooldown, jwks_timeout: see :class:`JWKSKeySet`.
        provider: read access tokens as an identity provider mints them (see
            :class:`ProviderProfile`); ``None`` (the default) accepts only the kit's own shape.
    """

    algorithm: str = "HS256"
    secret: str | bytes | None = field(default=None, repr=False)
    private_key: str | bytes | None = field(default=None, repr=False)
    public_key: str | bytes | None = field(default=None, repr=False)
    key_id: str | None = None
    verification_keys: Mapping[str, str | bytes] = field(default_factory=dict, repr=False)
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    access_ttl: int = 900
    refresh_ttl: int = 30 * 86_400
    leeway: int = 0
    max_lifetime: int | None = None
    max_token_bytes: int = 8192
    jwks_cache_ttl: float = 300.0
    jwks_cooldown: float = 30.0
    jwks_timeout: float = 5.0
    provider: ProviderProfile | None = None

    def __post_init__(self) -> None:
        check_choice("algorithm", self.algorithm, sorted(SUPPORTED_ALGORITHMS))
        if self.issuer is None or self.issuer == "":
            raise ValueError("issuer is required (RFC 8725 §3.8)")
        check_str("issuer", self.issuer)
        if self.audience is None or self.audience == "":
            raise ValueError("audience is required (RFC 8725 §3.9)")
        check_str("audience", self.audience)
        check_int("leeway", self.leeway, minimum=0, maximum=300)
        check_int("access_ttl", self.access_ttl, minimum=1, maximum=7 * 86_400)
        check_int("refresh_ttl", self.refresh_ttl, minimum=1, maximum=366 * 86_400)
        check_int("max_token_bytes", self.max_token_bytes, minimum=256, maximum=1 << 20)
        if self.max_lifetime is not None:
            check_int("max_lifetime", self.max_lifetime, minimum=1, maximum=366 * 86_400)
        if self.algorithm in HMAC_ALGORITHMS:
            if self.secret is None:
                raise ValueError(f"secret is required for {self.algorithm}")
            if self.private_key is not None or self.public_key is not None:
                raise ValueError("private_key/public_key are for RS256, ES256, EdDSA and Ed25519, not HMAC")
        else:
            if self.secret is not None:
                raise ValueError(
                    f"secret is for HMAC algorithms; {self.algorithm} needs private_key/public_key"
                )
            if self.private_key is None and self.public_key is None and self.jwks_url is None:
                raise ValueError(f"{self.algorithm} needs private_key, public_key or jwks_url")
        if self.key_id is not None and len(check_str("key_id", self.key_id)) > 128:
            raise ValueError("key_id must be a non-empty string of at most 128 characters")
        check_instance("verification_keys", self.verification_keys, Mapping, "a mapping of kid -> key")
        if self.provider is not None:
            check_instance("provider", self.provider, ProviderProfile, "a ProviderProfile or None")


class Claims(BaseModel):
    """The verified claims of a token."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sub: str
    org_id: str | None = None
    role: str
    type: TokenType
    jti: str | None = None
    iat: int
    nbf: int | None = None
    exp: int
    iss: str
    aud: str | list[str]
    fam: str | None = None
    scope: str | None = None

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.scope.split()) if self.scope else ()


class TokenPair(BaseModel):
    """An access token and its refresh token (both hidden from ``repr``)."""

    model_config = ConfigDict(frozen=True)

    access_token: str = Field(repr=False)
    refresh_token: str = Field(repr=False)
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_expires_in: int


def _b64(data: bytes) -> bytes:
    return urlsafe_b64encode(data).rstrip(b"=")


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


class JWTManager:
    """Issue, validate and rotate JWTs.

    Args:
        config: the :class:`JWTConfig`.
        revocation_store: where revoked ``jti``/families live; in-memory by default.
        clock: seconds since the epoch (injectable, so tests never sleep).
        jwks: a ready :class:`JWKSKeySet` (to share a session); built from ``jwks_url`` otherwise.
    """

    def __init__(
        self,
        config: JWTConfig,
        *,
        revocation_store: TokenRevocationStore | None = None,
        clock: Callable[[], float] = time.time,
        jwks: JWKSKeySet | None = None,
    ) -> None:
        self.config = check_instance("config", config, JWTConfig, "a JWTConfig")
        self.revocation_store: TokenRevocationStore = revocation_store or InMemoryTokenRevocationStore()
        self.clock = clock
        self._leeway = config.leeway
        self._max_bytes = config.max_token_bytes
        self._provider = config.provider
        provider_lifetime = None if config.provider is None else config.provider.max_lifetime
        self._max_lifetime = {
            "access": config.max_lifetime or provider_lifetime or config.access_ttl,
            "refresh": config.refresh_ttl,
        }
        alg = config.algorithm
        self._signing_key: Any = None
        signing_public: Any = None
        if alg in HMAC_ALGORITHMS:
            if config.secret is None:  # JWTConfig refuses this already; kept explicit under python -O
                raise ValueError(f"{alg} needs a secret")
            self._signing_key = signing_public = prepare_hmac_secret(alg, config.secret, "secret")
        else:
            if config.private_key is not None:
                self._signing_key = prepare_private_key(alg, config.private_key, "private_key")
                signing_public = self._signing_key.public_key()
            if config.public_key is not None:
                signing_public = prepare_public_key(alg, config.public_key, "public_key")
        self._keys: dict[str, VerificationKey] = {}
        self._kid: str | None = None
        impl = algorithm_impl(alg)
        if signing_public is not None:
            self._kid = config.key_id or make_kid(alg, signing_public)
            self._keys[self._kid] = VerificationKey(self._kid, alg, impl, signing_public)
        for kid, material in config.verification_keys.items():
            if len(check_str("verification_keys kids", kid)) > MAX_KID_LENGTH:
                raise ValueError(f"verification_keys kids must be at most {MAX_KID_LENGTH} characters")
            option = f"verification_keys[{kid!r}]"
            prepared = (
                prepare_hmac_secret(alg, material, option)
                if alg in HMAC_ALGORITHMS
                else prepare_public_key(alg, material, option)
            )
            self._keys.setdefault(kid, VerificationKey(kid, alg, impl, prepared))
        self._only_key = next(iter(self._keys.values())) if len(self._keys) == 1 else None
        self.jwks = jwks
        if self.jwks is None and config.jwks_url is not None:
            jwks_algorithms = {alg} if alg in ASYMMETRIC_ALGORITHMS else ASYMMETRIC_ALGORITHMS
            self.jwks = JWKSKeySet(
                config.jwks_url,
                algorithms=jwks_algorithms,
                default_algorithm=alg if alg in ASYMMETRIC_ALGORITHMS else None,
                cache_ttl=config.jwks_cache_ttl,
                cooldown=config.jwks_cooldown,
                timeout=config.jwks_timeout,
            )
        self._algorithms = frozenset({k.algorithm for k in self._keys.values()}) | (
            self.jwks.algorithms if self.jwks is not None else frozenset()
        )
        # RFC 9068 §4 and RFC 7515 §4.1.9: "at+jwt" and "application/at+jwt" are the same type.
        self._typ = {t: frozenset({v.lower(), "application/" + v.lower()}) for t, v in TYP_HEADERS.items()}
        if config.provider is not None:
            self._typ["access"] = self._typ["access"] | config.provider.accepted_typ()
        self._header_cache: dict[tuple[str, bytes], dict[str, Any]] = {}

    def __repr__(self) -> str:
        cfg = self.config
        return f"JWTManager(algorithm={cfg.algorithm!r}, issuer={cfg.issuer!r}, kids={sorted(self._keys)!r})"

    @property
    def can_sign(self) -> bool:
        return self._signing_key is not None

    # -- issuing ------------------------------------------------------------------------------

    def generate_token_pair(
        self,
        user_id: str,
        org_id: str | None,
        role: str,
        *,
        scopes: tuple[str, ...] | list[str] = (),
        family_id: str | None = None,
    ) -> TokenPair:
        """A fresh access token and refresh token for a user (a new refresh family by default)."""
        if not isinstance(user_id, str) or not user_id:
            raise ValueError("user_id must be a non-empty string")
        if not isinstance(role, str) or not role:
            raise ValueError("role must be a non-empty string")
        if org_id is not None and not isinstance(org_id, str):
            raise TypeError("org_id must be a string or None")
        family = family_id or secrets.token_urlsafe(16)
        now = int(self.clock())
        base: dict[str, Any] = {"sub": user_id, "org_id": org_id, "role": role, "fam": family}
        if scopes:
            base["scope"] = " ".join(scopes)
        access = self.encode({**base, "type": "access"}, token_type="access", now=now)
        refresh = self.encode({**base, "type": "refresh"}, token_type="refresh", now=now)
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=self.config.access_ttl,
            refresh_expires_in=self.config.refresh_ttl,
        )

    def encode(
        self, claims: Mapping[str, Any], *, token_type: TokenType = ACCESS, now: int | None = None
    ) -> str:
        """Sign ``claims`` with ``iss``, ``aud``, ``iat``, ``nbf``, ``exp`` and ``jti`` filled in."""
        if self._signing_key is None:
            raise RuntimeError("this JWTManager is verify-only: configure secret or private_key to sign")
        issued = int(self.clock()) if now is None else now
        ttl = self.config.access_ttl if token_type == "access" else self.config.refresh_ttl
        payload = {
            "iss": self.config.issuer,
            "aud": self.config.audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "jti": secrets.token_urlsafe(16),
            "type": token_type,
            **claims,
        }
        header = {"alg": self.config.algorithm, "typ": TYP_HEADERS[token_type], "kid": self._kid}
        signing_input = _b64(_json(header)) + b"." + _b64(_json(payload))
        signature = sign(self.config.algorithm, self._signing_key, signing_input)
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    # -- validating ---------------------------------------------------------------------------

    async def validate_jwt(self, token: str | bytes, *, token_type: TokenType = ACCESS) -> Claims:
        """Verify signature, header and claims, then check revocation.

        Raises:
            InvalidTokenError: (a subclass naming the reason) for every refused token.
            CredentialStoreUnavailableError: the JWKS was never loaded and cannot be fetched.
        """
        payload = await self.verify(token, token_type=token_type)
        claims = self.claims(payload, token_type=token_type)
        # A provider's token without a jti cannot be revoked here: its provider revokes it.
        if claims.jti is not None and await self.revocation_store.is_revoked(claims.jti, claims.fam):
            raise RevokedTokenError("token revoked")
        return claims

    async def verify(self, token: str | bytes, *, token_type: TokenType = ACCESS) -> dict[str, Any]:
        """Verify signature, header and claims (no revocation check); returns the raw payload."""
        header, signing_input, signature, payload_segment = self._split(token, token_type)
        key = self._static_key(header)
        if key is None:
            kid = header.get("kid")
            if self.jwks is None or not isinstance(kid, str):
                raise UnknownKeyError("no key for this kid")
            key = await self.jwks.get_key(kid)
            if key is None:
                raise UnknownKeyError("no key for this kid")
        return self._finish(header, key, signing_input, signature, payload_segment, token_type)

    def verify_sync(self, token: str | bytes, *, token_type: TokenType = ACCESS) -> dict[str, Any]:
        """:meth:`verify` with the keys already in memory (no JWKS fetch, no revocation check)."""
        header, signing_input, signature, payload_segment = self._split(token, token_type)
        key = self._static_key(header)
        if key is None:
            kid = header.get("kid")
            key = self.jwks.cached(kid) if self.jwks is not None and isinstance(kid, str) else None
            if key is None:
                raise UnknownKeyError("no key for this kid")
        return self._finish(header, key, signing_input, signature, payload_segment, token_type)

    def _split(self, token: str | bytes, token_type: TokenType) -> tuple[dict[str, Any], bytes, bytes, bytes]:
        if isinstance(token, str):
            if len(token) > self._max_bytes:  # before any decoding
                raise MalformedTokenError("token too long")
            if not token.isascii():
                raise MalformedTokenError("token is not ASCII")
            token = token.encode("ascii")
        elif not isinstance(token, bytes):
            raise MalformedTokenError("token must be str or bytes")
        if len(token) > self._max_bytes:
            raise MalformedTokenError("token too long")
        # Bytes throughout, and one match over the whole token for every segment's alphabet:
        # a match per segment, and str decoding, were a fifth of a cold verification.
        parts = split_compact(token)
        if parts is None:
            raise MalformedTokenError("not a compact JWS")
        header_segment, payload_segment, signature_segment = parts
        # Decoding and checking a header is a pure function of its segment, and one issuer's
        # headers repeat: remember the outcome (bounded; refused headers are never stored).
        cache_key = (token_type, header_segment)
        header = self._header_cache.get(cache_key)
        if header is None:
            header = self._check_header(header_segment, token_type)
            if len(self._header_cache) >= _HEADER_CACHE_SIZE:
                self._header_cache.clear()
            self._header_cache[cache_key] = header
        signature = b64url_decode(signature_segment, alphabet_checked=True)
        signing_input = token[: len(token) - len(signature_segment) - 1]
        return header, signing_input, signature, payload_segment

    def _check_header(self, header_segment: bytes, token_type: TokenType) -> dict[str, Any]:
        header = strict_json_object(b64url_decode(header_segment, alphabet_checked=True), "header")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise UnsupportedAlgorithmError("algorithm not allowed")
        if _FORBIDDEN_HEADERS.intersection(header):
            raise MalformedTokenError("key-bearing or encryption headers are not accepted")
        if "crit" in header:
            raise MalformedTokenError("unsupported critical header parameters")
        typ = header.get("typ")
        if typ is None and token_type == "access" and self._provider and not self._provider.require_typ:
            pass  # providers may leave typ out; the claims decide
        elif not isinstance(typ, str) or typ.lower() not in self._typ[token_type]:
            raise WrongTokenTypeError(f"expected a {token_type} token")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_KID_LENGTH):
            raise MalformedTokenError("bad kid")
        return header

    def _static_key(self, header: Mapping[str, Any]) -> VerificationKey | None:
        kid = header.get("kid")
        if kid is None:
            return self._only_key
        return self._keys.get(kid)

    def _finish(
        self,
        header: Mapping[str, Any],
        key: VerificationKey,
        signing_input: bytes,
        signature: bytes,
        payload_segment: bytes,
        token_type: TokenType,
    ) -> dict[str, Any]:
        if header["alg"] != key.algorithm:  # one algorithm per key: no RS256 -> HS256 confusion
            raise UnsupportedAlgorithmError("algorithm does not match the key")
        if not signature or not key.verify(signing_input, signature):
            raise BadSignatureError("signature does not verify")
        payload = strict_json_object(b64url_decode(payload_segment, alphabet_checked=True), "payload")
        self._check_claims(payload, token_type)
        return payload

    def _check_claims(self, payload: Mapping[str, Any], token_type: TokenType) -> None:
        for name in ("exp", "iat"):
            if name not in payload:
                raise InvalidClaimError(f"{name} is required")
        for name in ("exp", "iat", "nbf"):
            if name in payload and not is_numeric_date(payload[name]):
                raise InvalidClaimError(f"{name} must be a NumericDate")
        now = self.clock()
        exp, iat = payload["exp"], payload["iat"]
        if exp <= iat:
            raise InvalidClaimError("exp must be after iat")
        if exp - iat > self._max_lifetime[token_type]:
            raise InvalidClaimError("token lifetime exceeds the maximum")
        if now >= exp + self._leeway:
            raise ExpiredTokenError("token expired")
        if iat > now + self._leeway:
            raise NotYetValidError("token issued in the future")
        nbf = payload.get("nbf")
        if nbf is not None and nbf > now + self._leeway:
            raise NotYetValidError("token not yet valid")
        if payload.get("iss") != self.config.issuer:
            raise WrongIssuerError("wrong issuer")
        aud = payload.get("aud")
        if isinstance(aud, list):
            if not aud or not all(isinstance(a, str) for a in aud) or self.config.audience not in aud:
                raise WrongAudienceError("wrong audience")
        elif aud != self.config.audience:
            raise WrongAudienceError("wrong audience")
        provider = self._provider if token_type == "access" else None
        if provider is None:
            if payload.get("type") != token_type:
                raise WrongTokenTypeError(f"expected a {token_type} token")
            required: tuple[str, ...] = ("sub", "jti", "role")
        else:
            # No type claim is required of a provider's token, but one that says otherwise is refused.
            if "type" in payload and payload["type"] != token_type:
                raise WrongTokenTypeError(f"expected a {token_type} token")
            required = ("sub", "jti") if "jti" in payload else ("sub",)
            provider.identity(payload)
        for name in required:
            value = payload.get(name)
            if not isinstance(value, str) or not value or len(value) > _MAX_CLAIM_LENGTH:
                raise InvalidClaimError(f"{name} must be a non-empty string")
        for name in ("org_id", "fam", "scope") if provider is None else ("fam",):
            value = payload.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > _MAX_CLAIM_LENGTH):
                raise InvalidClaimError(f"{name} must be a string")
        if token_type == "refresh" and not payload.get("fam"):
            raise InvalidClaimError("refresh tokens need a family")

    def claims(self, payload: Mapping[str, Any], *, token_type: TokenType = ACCESS) -> Claims:
        """:class:`Claims` of a payload that :meth:`verify` accepted, read through the provider profile."""
        if self._provider is None or token_type != "access":
            return self.claims_from_payload(payload)
        role, org_id, scopes = self._provider.identity(payload)
        return self.claims_from_payload(
            {**payload, "role": role, "org_id": org_id, "type": "access", "scope": " ".join(scopes) or None}
        )

    def identity(self, payload: Mapping[str, Any]) -> tuple[str, str | None, tuple[str, ...]]:
        """``(role, org_id, scopes)`` of an accepted access-token payload, as a principal needs them."""
        if self._provider is not None:
            return self._provider.identity(payload)
        scope = payload.get("scope")
        return payload["role"], payload.get("org_id"), tuple(scope.split()) if scope else ()

    @staticmethod
    def claims_from_payload(payload: Mapping[str, Any]) -> Claims:
        """Build :class:`Claims` from a payload of the kit's own shape (no re-validation)."""
        nbf = payload.get("nbf")
        return Claims.model_construct(
            sub=payload["sub"],
            org_id=payload.get("org_id"),
            role=payload["role"],
            type=payload["type"],
            jti=payload.get("jti"),
            iat=int(payload["iat"]),
            nbf=None if nbf is None else int(nbf),
            exp=int(payload["exp"]),
            iss=payload["iss"],
            aud=payload["aud"],
            fam=payload.get("fam"),
            scope=payload.get("scope"),
        )

    # -- rotation and revocation ----------------------------------------------------------------

    async def refresh_token_pair(self, refresh_token: str | bytes) -> TokenPair:
        """Exchange a refresh token for a new pair in the same family (rotation).

        Raises:
            TokenReuseError: the refresh token was already used; its whole family is now revoked.
            InvalidTokenError: any other reason the refresh token is refused.
        """
        claims = await self.validate_jwt(refresh_token, token_type="refresh")
        if (
            claims.fam is None or claims.jti is None
        ):  # validation requires a family on refresh tokens; never trust -O
            raise InvalidClaimError("refresh token without a family")
        expires = self._expiry(claims.exp)
        if not await self.revocation_store.mark_refresh_used(claims.jti, claims.fam, expires):
            family_expires = self._expiry(int(self.clock()) + self.config.refresh_ttl)
            await self.revocation_store.revoke_family(claims.fam, family_expires)
            raise TokenReuseError("refresh token reused; its family is revoked")
        scopes = tuple(claims.scope.split()) if claims.scope else ()
        return self.generate_token_pair(
            claims.sub, claims.org_id, claims.role, scopes=scopes, family_id=claims.fam
        )

    async def revoke(self, claims: Claims) -> None:
        """Revoke one token (logout of one session); it needs a ``jti``."""
        if claims.jti is None:
            raise ValueError("a token without a jti cannot be revoked here")
        await self.revocation_store.revoke(claims.jti, self._expiry(claims.exp))

    async def revoke_family(self, family_id: str) -> None:
        """Revoke every access and refresh token of a family."""
        await self.revocation_store.revoke_family(
            family_id, self._expiry(int(self.clock()) + self.config.refresh_ttl)
        )

    def _expiry(self, exp: int) -> datetime:
        return datetime.fromtimestamp(exp + self._leeway, tz=UTC)

    async def aclose(self) -> None:
        """Close the JWKS session, if any."""
        if self.jwks is not None:
            await self.jwks.aclose()


__all__ = ["Claims", "JWTConfig", "JWTManager", "ProviderProfile", "TokenPair", "TokenType"]
