"""JWTManager: construction refusals, issuing, validation, rotation, revocation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.auth import (
    BadSignatureError,
    Claims,
    ExpiredTokenError,
    InMemoryTokenRevocationStore,
    InvalidClaimError,
    InvalidTokenError,
    JWTConfig,
    JWTManager,
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
from tests.auth.helpers import (
    AUDIENCE,
    DROP,
    ISSUER,
    SECRET,
    Clock,
    b64,
    ec_key,
    ed_key,
    forge_hs,
    good_claims,
    header_for,
    hs_manager,
    pem_private,
    pem_public,
    raw_segment,
    rsa_key,
)

BASE: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}


# -- construction --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"algorithm": "none", "secret": SECRET}, "algorithm"),
        ({"algorithm": "None", "secret": SECRET}, "algorithm"),
        ({"algorithm": "HS256", "secret": "x" * 31}, "at least 32 bytes"),
        ({"algorithm": "HS384", "secret": "x" * 47}, "at least 48 bytes"),
        ({"algorithm": "HS512", "secret": "x" * 63}, "at least 64 bytes"),
        ({"algorithm": "HS256"}, "secret is required"),
        ({"secret": SECRET, "leeway": 301}, "leeway"),
        ({"secret": SECRET, "leeway": -1}, "leeway"),
        ({"secret": SECRET, "issuer": None}, "issuer"),
        ({"secret": SECRET, "issuer": ""}, "issuer"),
        ({"secret": SECRET, "audience": None}, "audience"),
        ({"algorithm": "RS256", "secret": SECRET}, "secret is for HMAC"),
        ({"algorithm": "RS256"}, "needs private_key"),
        ({"secret": SECRET, "private_key": "x"}, "not HMAC"),
        ({"secret": SECRET, "access_ttl": 0}, "access_ttl"),
        ({"secret": SECRET, "max_token_bytes": 10}, "max_token_bytes"),
        ({"secret": SECRET, "key_id": ""}, "key_id"),
    ],
)
def test_config_refuses_weak_or_incomplete_settings(options: dict[str, Any], message: str) -> None:
    """Bad algorithm, short secret, bad leeway, missing issuer/audience fail at construction."""
    with pytest.raises(ValueError, match=message):
        JWTManager(JWTConfig(**{**BASE, **options}))


def test_config_type_errors_name_the_option() -> None:
    """Non-int numeric options raise TypeError naming the option."""
    with pytest.raises(TypeError, match="leeway"):
        JWTConfig(secret=SECRET, leeway=1.5, **BASE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config"):
        JWTManager(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="verification_keys"):
        JWTConfig(secret=SECRET, verification_keys=[("a", "b")], **BASE)  # type: ignore[arg-type]


def test_rsa_key_under_2048_bits_is_refused() -> None:
    """An RSA key of 1024 bits is refused as signing and as verification key."""
    small = rsa_key(1024)
    with pytest.raises(ValueError, match="2048"):
        JWTManager(JWTConfig(algorithm="RS256", private_key=pem_private(small), **BASE))
    with pytest.raises(ValueError, match="2048"):
        JWTManager(JWTConfig(algorithm="RS256", public_key=pem_public(small), **BASE))


def test_public_key_as_hmac_secret_is_refused() -> None:
    """A PEM public key configured as an HMAC secret (key-confusion setup) is refused."""
    with pytest.raises(ValueError, match="public key"):
        JWTManager(JWTConfig(secret=pem_public(rsa_key()), **BASE))


@pytest.mark.parametrize(
    "secret",
    [
        b"x" * 40 + b"\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        b"---- BEGIN SSH2 PUBLIC KEY ----\n" + b"A" * 64 + b"\n---- END SSH2 PUBLIC KEY ----",
        b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        b"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmK",
    ],
)
def test_pem_blocks_and_ssh_keys_as_hmac_secret_are_refused(secret: bytes) -> None:
    """Any PEM block or OpenSSH public key given as an HMAC secret is refused, without PyJWT."""
    with pytest.raises(ValueError, match="public key"):
        JWTManager(JWTConfig(secret=secret, **BASE))
    with pytest.raises(ValueError, match="public key"):
        JWTManager(JWTConfig(secret="y" * 32, verification_keys={"old": secret}, **BASE))


def test_hmac_keys_sign_as_pyjwt_does() -> None:
    """The standard-library HMAC path gives PyJWT's signatures, for every HMAC algorithm."""
    from jwt.algorithms import get_default_algorithms

    from asgi_kit.auth.keys import prepare_public_key, sign

    for name, size in (("HS256", 32), ("HS384", 48), ("HS512", 64)):
        key = b"k" * size
        assert sign(name, key, b"a.b") == get_default_algorithms()[name].sign(b"a.b", key)
    with pytest.raises(ValueError, match="not a valid HS256 key"):
        prepare_public_key("HS256", b"k" * 32, "public_key")


def test_asymmetric_key_verifies_through_pyjwt_even_without_a_bound_impl() -> None:
    """A VerificationKey built without PyJWT's algorithm object still verifies with it, and refuses."""
    from asgi_kit.auth.keys import VerificationKey, prepare_private_key, sign

    private = prepare_private_key("RS256", pem_private(rsa_key()), "private_key")
    key = VerificationKey("k", "RS256", None, private.public_key())
    signature = sign("RS256", private, b"a.b")
    assert key.verify(b"a.b", signature)
    assert not key.verify(b"a.c", signature)


def test_wrong_key_family_is_refused() -> None:
    """An EC key for RS256 and garbage PEM are refused with the option named."""
    with pytest.raises(ValueError, match="private_key"):
        JWTManager(JWTConfig(algorithm="RS256", private_key=pem_private(ec_key()), **BASE))
    with pytest.raises(ValueError, match="public_key"):
        JWTManager(JWTConfig(algorithm="EdDSA", public_key=b"not a key", **BASE))
    with pytest.raises(ValueError, match="verification_keys"):
        JWTManager(JWTConfig(secret=SECRET, verification_keys={"old": "short"}, **BASE))


def test_repr_hides_secrets() -> None:
    """Neither the config nor the manager nor a token pair shows secrets or tokens."""
    manager = hs_manager()
    pair = manager.generate_token_pair("u", "o", "org_user")
    for text in (repr(manager.config), repr(manager), repr(pair)):
        assert SECRET not in text
        assert pair.access_token not in text


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA", "Ed25519"])
async def test_every_algorithm_round_trips(algorithm: str) -> None:
    """A token pair signed under each algorithm validates as access and refresh."""
    if algorithm.startswith("HS"):
        options: dict[str, Any] = {"secret": "k" * 64}
    else:
        key = {"RS256": rsa_key, "ES256": ec_key, "EdDSA": ed_key, "Ed25519": ed_key}[algorithm]()
        options = {"private_key": pem_private(key)}
    clock = Clock()
    manager = JWTManager(JWTConfig(algorithm=algorithm, **options, **BASE), clock=clock)
    pair = manager.generate_token_pair("user-1", "org-1", "org_admin", scopes=["a", "b"])
    claims = await manager.validate_jwt(pair.access_token)
    assert isinstance(claims, Claims)
    assert (claims.sub, claims.org_id, claims.role, claims.type) == ("user-1", "org-1", "org_admin", "access")
    assert claims.scopes == ("a", "b")
    assert claims.exp - claims.iat == 900
    refresh = await manager.validate_jwt(pair.refresh_token, token_type="refresh")
    assert refresh.type == "refresh"
    assert refresh.fam == claims.fam
    assert pair.token_type == "Bearer"
    assert (pair.expires_in, pair.refresh_expires_in) == (900, 30 * 86_400)


async def test_ed25519_is_bound_to_its_name_and_curve() -> None:
    """Ed25519 (RFC 9864) takes only Ed25519 keys, and an EdDSA-labelled token is not an Ed25519 one."""
    from cryptography.hazmat.primitives.asymmetric import ed448

    with pytest.raises(ValueError, match="not an Ed25519 key"):
        JWTManager(
            JWTConfig(algorithm="Ed25519", private_key=pem_private(ed448.Ed448PrivateKey.generate()), **BASE)
        )
    key = pem_private(ed_key())
    clock = Clock()
    named = JWTManager(JWTConfig(algorithm="Ed25519", private_key=key, **BASE), clock=clock)
    polymorphic = JWTManager(JWTConfig(algorithm="EdDSA", private_key=key, **BASE), clock=clock)
    token = named.generate_token_pair("u", "o", "org_user").access_token
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "Ed25519"
    assert (await named.validate_jwt(token)).sub == "u"
    with pytest.raises(InvalidTokenError):
        await polymorphic.validate_jwt(token)
    with pytest.raises(InvalidTokenError):
        await named.validate_jwt(polymorphic.generate_token_pair("u", "o", "org_user").access_token)


async def test_verify_only_manager_validates_but_cannot_sign() -> None:
    """A manager with only the public key verifies tokens from the signer and refuses to sign."""
    key = rsa_key()
    signer = JWTManager(JWTConfig(algorithm="RS256", private_key=pem_private(key), **BASE))
    verifier = JWTManager(JWTConfig(algorithm="RS256", public_key=pem_public(key), **BASE))
    token = signer.generate_token_pair("u", None, "org_user").access_token
    assert (await verifier.validate_jwt(token)).sub == "u"
    assert not verifier.can_sign
    with pytest.raises(RuntimeError, match="verify-only"):
        verifier.generate_token_pair("u", None, "org_user")


async def test_rotation_old_key_still_verifies_by_kid() -> None:
    """After rotation, tokens signed with the previous key verify through verification_keys."""
    old = hs_manager(key_id="old")
    new = hs_manager(secret="n" * 40, key_id="new", verification_keys={"old": SECRET})
    old_token = old.generate_token_pair("u", "o", "org_user").access_token
    new_token = new.generate_token_pair("u", "o", "org_user").access_token
    assert (await new.validate_jwt(old_token)).sub == "u"
    assert (await new.validate_jwt(new_token)).sub == "u"
    with pytest.raises(UnknownKeyError):
        await old.validate_jwt(new_token)


async def test_missing_kid_uses_the_only_key_but_not_one_of_many() -> None:
    """A token without kid verifies when one key is configured, not when several are."""
    clock = Clock()
    single = hs_manager(clock)
    token = forge_hs(header_for(single, kid=DROP), good_claims(clock))
    assert (await single.validate_jwt(token)).sub == "user-1"
    several = hs_manager(clock, verification_keys={"other": "o" * 40})
    with pytest.raises(UnknownKeyError):
        await several.validate_jwt(token)


def test_verify_sync_uses_known_keys_only() -> None:
    """verify_sync checks signature and claims without awaiting anything."""
    manager = hs_manager()
    token = manager.generate_token_pair("u", "o", "org_user").access_token
    assert manager.verify_sync(token)["sub"] == "u"
    with pytest.raises(UnknownKeyError):
        manager.verify_sync(forge_hs(header_for(manager, kid="nope"), good_claims(Clock())))


def test_generate_refuses_bad_identity() -> None:
    """Empty user id or role, or a non-string org, are programming errors."""
    manager = hs_manager()
    with pytest.raises(ValueError, match="user_id"):
        manager.generate_token_pair("", "o", "r")
    with pytest.raises(ValueError, match="role"):
        manager.generate_token_pair("u", "o", "")
    with pytest.raises(TypeError, match="org_id"):
        manager.generate_token_pair("u", 5, "r")  # type: ignore[arg-type]


# -- time boundaries on an injected clock ---------------------------------------------------------


@pytest.mark.parametrize("leeway", [0, 30])
async def test_exp_boundary_with_leeway(leeway: int) -> None:
    """Valid one second before exp+leeway, expired at exp+leeway."""
    clock = Clock()
    manager = hs_manager(clock, leeway=leeway)
    token = manager.generate_token_pair("u", "o", "org_user").access_token
    clock.advance(900 + leeway - 1)
    assert (await manager.validate_jwt(token)).sub == "u"
    clock.advance(1)
    with pytest.raises(ExpiredTokenError):
        await manager.validate_jwt(token)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize("leeway", [0, 30])
async def test_future_nbf_and_iat_boundary_with_leeway(claim: str, leeway: int) -> None:
    """nbf/iat up to leeway in the future is accepted; one second more is not."""
    clock = Clock()
    manager = hs_manager(clock, leeway=leeway)
    now = int(clock())
    ok = good_claims(clock, **{claim: now + leeway}, exp=now + 600)
    assert (await manager.validate_jwt(forge_hs(header_for(manager), ok))).sub == "user-1"
    bad = good_claims(clock, **{claim: now + leeway + 1}, exp=now + 600)
    with pytest.raises(NotYetValidError):
        await manager.validate_jwt(forge_hs(header_for(manager), bad))


async def test_lifetime_beyond_maximum_is_refused() -> None:
    """exp - iat over max_lifetime (default access_ttl) is refused, and exp <= iat too."""
    clock = Clock()
    manager = hs_manager(clock)
    now = int(clock())
    too_long = good_claims(clock, exp=now + 901)
    with pytest.raises(InvalidClaimError, match="lifetime"):
        await manager.validate_jwt(forge_hs(header_for(manager), too_long))
    backwards = good_claims(clock, exp=now - 1, iat=now)
    with pytest.raises(InvalidClaimError):
        await manager.validate_jwt(forge_hs(header_for(manager), backwards))
    longer = hs_manager(clock, max_lifetime=3600)
    assert (await longer.validate_jwt(forge_hs(header_for(longer), too_long))).sub == "user-1"


# -- claim and header checks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"aud": "asgi-kit"}, WrongAudienceError),
        ({"aud": AUDIENCE + "-x"}, WrongAudienceError),
        ({"aud": "x" + AUDIENCE}, WrongAudienceError),
        ({"aud": [AUDIENCE + "x"]}, WrongAudienceError),
        ({"aud": []}, WrongAudienceError),
        ({"aud": [AUDIENCE, 5]}, WrongAudienceError),
        ({"aud": {"a": AUDIENCE}}, WrongAudienceError),
        ({"aud": DROP}, WrongAudienceError),
        ({"iss": ISSUER + "/"}, WrongIssuerError),
        ({"iss": ISSUER[:-1]}, WrongIssuerError),
        ({"iss": [ISSUER]}, WrongIssuerError),
        ({"iss": DROP}, WrongIssuerError),
        ({"sub": DROP}, InvalidClaimError),
        ({"sub": ""}, InvalidClaimError),
        ({"jti": DROP}, InvalidClaimError),
        ({"exp": DROP}, InvalidClaimError),
        ({"iat": DROP}, InvalidClaimError),
        ({"role": DROP}, InvalidClaimError),
        ({"org_id": 5}, InvalidClaimError),
        ({"type": "refresh"}, WrongTokenTypeError),
        ({"type": DROP}, WrongTokenTypeError),
    ],
)
async def test_claim_mismatches_are_refused(changes: dict[str, Any], error: type[Exception]) -> None:
    """Audience/issuer mismatches (substring, list, type) and missing claims are refused."""
    clock = Clock()
    manager = hs_manager(clock)
    with pytest.raises(error):
        await manager.validate_jwt(forge_hs(header_for(manager), good_claims(clock, **changes)))


async def test_audience_list_containing_ours_is_accepted() -> None:
    """aud as a list that contains our audience exactly is accepted."""
    clock = Clock()
    manager = hs_manager(clock)
    token = forge_hs(header_for(manager), good_claims(clock, aud=["other", AUDIENCE]))
    assert (await manager.validate_jwt(token)).aud == ["other", AUDIENCE]


_BAD_CLAIM_CASES = [
    (claim, value)
    for claim in ("exp", "iat", "nbf", "iss", "aud", "sub", "jti", "type", "role")
    for value in (None, True, "x", "nan", "1e999")
    # "x" is a fine subject, token id or role: only its other forms are bad there.
    if not (value == "x" and claim in ("sub", "jti", "role"))
]


@pytest.mark.parametrize(("claim", "value"), _BAD_CLAIM_CASES)
async def test_registered_claim_with_bad_value_is_refused(claim: str, value: Any) -> None:
    """Every registered claim set to null, true, "x", NaN or 1e999 is refused, never crashes."""
    clock = Clock()
    manager = hs_manager(clock)
    claims = good_claims(clock)
    claims[claim] = "__VALUE__"
    raw_value = {None: "null", True: "true", "x": '"x"', "nan": "NaN", "1e999": "1e999"}[value]

    payload = json.dumps(claims, separators=(",", ":")).replace('"__VALUE__"', raw_value)
    header = json.dumps(header_for(manager))
    token = forge_hs(header, payload, raw=True)
    with pytest.raises(InvalidTokenError):
        await manager.validate_jwt(token)


def test_nan_and_overflow_are_not_numeric_dates() -> None:
    """The NumericDate check refuses NaN, infinities and booleans."""
    from asgi_kit.auth._jose import is_numeric_date

    assert is_numeric_date(1) and is_numeric_date(1.5)
    assert not any(is_numeric_date(v) for v in (math.nan, math.inf, -math.inf, True, "1", None))


@pytest.mark.parametrize(
    "changes",
    [
        {"typ": "refresh+jwt"},
        {"typ": "JWT"},
        {"typ": "application/refresh+jwt"},
        {"typ": "application/jwt"},
        {"typ": "application/"},
        {"typ": "xapplication/at+jwt"},
        {"typ": "application/at+jwt "},
        {"typ": DROP},
        {"typ": 1},
        {"crit": ["exp"]},
        {"crit": []},
        {"jku": "http://127.0.0.1:1/jwks"},
        {"jwk": {"kty": "oct", "k": "AAAA"}},
        {"x5u": "http://127.0.0.1:1/cert"},
        {"x5c": ["AAAA"]},
        {"kid": 5},
        {"kid": "k" * 300},
        {"alg": "none"},
        {"alg": "HS384"},
        {"alg": DROP},
    ],
)
async def test_header_checks(changes: dict[str, Any]) -> None:
    """Wrong typ, crit, key-bearing headers, bad kid and foreign alg are refused."""
    clock = Clock()
    manager = hs_manager(clock)
    with pytest.raises(InvalidTokenError):
        await manager.validate_jwt(forge_hs(header_for(manager, **changes), good_claims(clock)))


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
async def test_typ_is_a_media_type(typ: str) -> None:
    """typ is a media type: case-insensitive, and application/at+jwt is at+jwt (RFC 9068 §4)."""
    clock = Clock()
    manager = hs_manager(clock)
    token = forge_hs(header_for(manager, typ=typ), good_claims(clock))
    assert (await manager.validate_jwt(token)).sub == "user-1"


async def test_duplicate_members_are_refused() -> None:
    """Duplicate names in header or payload are refused (no last-one-wins)."""
    clock = Clock()
    manager = hs_manager(clock)

    payload = json.dumps(good_claims(clock), separators=(",", ":"))
    header = json.dumps(header_for(manager), separators=(",", ":"))
    dup_payload = payload[:-1] + ',"role":"system_admin"}'
    dup_header = header[:-1] + ',"alg":"HS256"}'
    with pytest.raises(MalformedTokenError):
        await manager.validate_jwt(forge_hs(header, dup_payload, raw=True))
    with pytest.raises(MalformedTokenError):
        await manager.validate_jwt(forge_hs(dup_header, payload, raw=True))


async def test_non_utf8_payload_is_refused() -> None:
    """A payload that is not UTF-8 is refused."""
    clock = Clock()
    manager = hs_manager(clock)
    h = raw_segment(header_for(manager))
    p = b64(b'{"sub":"\xff"}')
    sig = b64(hmac.new(SECRET.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest())
    with pytest.raises(MalformedTokenError):
        await manager.validate_jwt(f"{h}.{p}.{sig}")


async def test_signature_tampering_is_refused() -> None:
    """Stripped, altered or foreign signatures and a changed payload are refused."""
    clock = Clock()
    manager = hs_manager(clock)
    token = manager.generate_token_pair("u", "o", "org_user").access_token
    head, payload, sig = token.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    for bad in (f"{head}.{payload}.", f"{head}.{payload}.{flipped}", f"{head}.{payload}"):
        with pytest.raises(InvalidTokenError):
            await manager.validate_jwt(bad)
    other = forge_hs(header_for(manager), good_claims(clock), secret="z" * 40)
    with pytest.raises(BadSignatureError):
        await manager.validate_jwt(other)


async def test_token_length_is_capped_before_decoding() -> None:
    """A token over max_token_bytes is refused as too long (str and bytes)."""
    manager = hs_manager(max_token_bytes=1024)
    with pytest.raises(MalformedTokenError, match="too long"):
        await manager.validate_jwt("a" * 1025)
    with pytest.raises(MalformedTokenError, match="too long"):
        await manager.validate_jwt(b"a" * 1025)
    with pytest.raises(MalformedTokenError):
        await manager.validate_jwt(b"\xff.\xff.\xff")
    with pytest.raises(MalformedTokenError, match="not ASCII"):
        await manager.validate_jwt("\u00e9.\u00e9.\u00e9")
    with pytest.raises(MalformedTokenError):
        await manager.validate_jwt(12345)  # type: ignore[arg-type]


async def test_rs256_to_hs256_key_confusion_is_refused() -> None:
    """An HS256 token keyed with the RS256 public key (PEM or JWK JSON) is refused."""
    from jwt.algorithms import RSAAlgorithm

    clock = Clock()
    key = rsa_key()
    manager = JWTManager(JWTConfig(algorithm="RS256", public_key=pem_public(key), **BASE), clock=clock)
    jwk_json = RSAAlgorithm.to_jwk(key.public_key())
    for secret in (pem_public(key), jwk_json.encode(), json.dumps(json.loads(jwk_json)).encode()):
        header = {"alg": "HS256", "typ": "at+jwt", "kid": manager._kid}
        with pytest.raises(UnsupportedAlgorithmError):
            await manager.validate_jwt(forge_hs(header, good_claims(clock), secret=secret))


# -- refresh rotation and revocation ------------------------------------------------------------


async def test_refresh_rotation_and_reuse_revokes_the_family() -> None:
    """A refresh token works once; reusing it revokes every token of its family."""
    clock = Clock()
    manager = hs_manager(clock)
    first = manager.generate_token_pair("u", "o", "org_admin", scopes=["x"])
    second = await manager.refresh_token_pair(first.refresh_token)
    assert (await manager.validate_jwt(second.access_token)).scopes == ("x",)
    with pytest.raises(TokenReuseError):
        await manager.refresh_token_pair(first.refresh_token)
    for token, kind in ((second.access_token, "access"), (second.refresh_token, "refresh")):
        with pytest.raises(RevokedTokenError):
            await manager.validate_jwt(token, token_type=kind)  # type: ignore[arg-type]
    with pytest.raises(RevokedTokenError):
        await manager.refresh_token_pair(second.refresh_token)


async def test_access_token_cannot_refresh_and_refresh_cannot_access() -> None:
    """Access/refresh swap is refused both ways."""
    manager = hs_manager()
    pair = manager.generate_token_pair("u", "o", "org_user")
    with pytest.raises(WrongTokenTypeError):
        await manager.refresh_token_pair(pair.access_token)
    with pytest.raises(WrongTokenTypeError):
        await manager.validate_jwt(pair.refresh_token)


async def test_revoke_one_token_and_a_family() -> None:
    """revoke() kills one jti; revoke_family() kills a whole family."""
    store = InMemoryTokenRevocationStore(purge_threshold=1)
    clock = Clock()
    manager = JWTManager(JWTConfig(secret=SECRET, **BASE), clock=clock, revocation_store=store)
    a = manager.generate_token_pair("u", "o", "org_user")
    b = manager.generate_token_pair("u", "o", "org_user")
    await manager.revoke(await manager.validate_jwt(a.access_token))
    with pytest.raises(RevokedTokenError):
        await manager.validate_jwt(a.access_token)
    claims_b = await manager.validate_jwt(b.access_token)
    assert claims_b.fam is not None
    await manager.revoke_family(claims_b.fam)
    with pytest.raises(RevokedTokenError):
        await manager.validate_jwt(b.refresh_token, token_type="refresh")
    await manager.aclose()


def test_revocation_store_validates_options() -> None:
    """purge_threshold must be a positive int."""
    with pytest.raises(ValueError, match="purge_threshold"):
        InMemoryTokenRevocationStore(purge_threshold=0)


async def test_header_cache_is_bounded_and_per_token_type() -> None:
    """Remembered headers never let an access header pass as refresh, and the memory stays bounded."""
    clock = Clock()
    manager = hs_manager(clock)
    pair = manager.generate_token_pair("u", "o", "org_user")
    assert await manager.validate_jwt(pair.access_token)
    with pytest.raises(WrongTokenTypeError):
        await manager.validate_jwt(pair.access_token, token_type="refresh")
    for i in range(600):
        with pytest.raises(UnknownKeyError):
            await manager.validate_jwt(forge_hs(header_for(manager, kid=f"k{i}"), good_claims(clock)))
    assert len(manager._header_cache) <= 256
    assert (await manager.validate_jwt(pair.access_token)).sub == "u"


@given(
    key=st.binary(max_size=200),
    message=st.binary(max_size=600),
    algorithm=st.sampled_from(["HS256", "HS384", "HS512"]),
)
def test_prepared_hmac_states_match_the_standard_library(key: bytes, message: bytes, algorithm: str) -> None:
    """HMAC from precomputed inner/outer states equals hmac.digest for any key length and message."""
    from asgi_kit.auth.keys import VerificationKey

    hash_name = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}[algorithm]
    prepared = VerificationKey("k", algorithm, None, key)
    expected = hmac.digest(key, message, hash_name)
    assert prepared.verify(message, expected)
    assert not prepared.verify(message + b"x", expected)
    assert not prepared.verify(message, expected[:-1] + bytes([expected[-1] ^ 1]))
