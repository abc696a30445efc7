"""Adversarial tokens and headers through AuthMiddleware: always a 401 problem, never a 500.

After every attack the good token must still work (no state was poisoned).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit.auth import AuthMiddleware, InvalidTokenError, JWTConfig, JWTManager, ProviderProfile
from asgi_kit.auth._jose import b64url_decode, split_compact
from asgi_kit.testing import call_app, make_scope
from tests.auth.helpers import (
    AUDIENCE,
    DROP,
    ISSUER,
    Clock,
    b64,
    forge_hs,
    good_claims,
    header_for,
    hs_manager,
    pem_public,
    raw_segment,
    rsa_key,
    whoami_app,
)

CLOCK = Clock()
MANAGER = hs_manager(CLOCK)
GOOD = MANAGER.generate_token_pair("user-1", "org-1", "org_user").access_token
# The same keys read through the identity-provider profile: every attack must fail there too.
PROVIDER = JWTManager(
    JWTConfig(
        secret=MANAGER.config.secret,
        issuer=ISSUER,
        audience=AUDIENCE,
        provider=ProviderProfile(roles_claim="role"),
    ),
    clock=CLOCK,
)
MANAGERS = {"kit": MANAGER, "provider": PROVIDER}
APPS = {name: AuthMiddleware(whoami_app, jwt=manager) for name, manager in MANAGERS.items()}
PROFILES = pytest.mark.parametrize("profile", sorted(MANAGERS))


async def _status_for(value: bytes, profile: str = "kit") -> tuple[int | None, Any]:
    response = await call_app(APPS[profile], make_scope(headers=[(b"authorization", value)]))
    return response.status, response


async def assert_refused_then_good_still_works(value: bytes, profile: str = "kit") -> None:
    status, response = await _status_for(value, profile)
    assert status == 401, status
    assert response.header("content-type") == "application/problem+json"
    assert response.header("www-authenticate") == 'Bearer realm="api", error="invalid_token"'
    assert value[7:] not in response.body or len(value) <= 7
    good_status, _ = await _status_for(f"Bearer {GOOD}".encode(), profile)
    assert good_status == 200


def _token(header: Any, payload: Any, **kwargs: Any) -> bytes:
    return f"Bearer {forge_hs(header, payload, **kwargs)}".encode()


_H = header_for(MANAGER)
_P = good_claims(CLOCK)


def _none_token(alg: str) -> bytes:
    return f"Bearer {raw_segment({**_H, 'alg': alg})}.{raw_segment(_P)}.".encode()


def _rs_manager() -> tuple[JWTManager, bytes]:
    key = rsa_key()
    manager = JWTManager(
        JWTConfig(algorithm="RS256", public_key=pem_public(key), issuer=ISSUER, audience=AUDIENCE),
        clock=CLOCK,
    )
    return manager, pem_public(key)


ATTACKS: dict[str, bytes] = {
    **{f"alg-{alg}": _none_token(alg) for alg in ("none", "None", "NONE", "nOnE", "")},
    "alg-none-with-signature": _token({**_H, "alg": "none"}, _P),
    "stripped-signature": f"Bearer {GOOD.rsplit('.', 1)[0]}.".encode(),
    "two-segments": f"Bearer {GOOD.rsplit('.', 1)[0]}".encode(),
    "altered-payload": f"Bearer {GOOD.split('.')[0]}.{raw_segment({**_P, 'role': 'system_admin'})}.{GOOD.split('.')[2]}".encode(),
    "wrong-secret": _token(_H, _P, secret="w" * 40),
    "embedded-jwk": _token({**_H, "jwk": {"kty": "oct", "k": b64(b"k" * 32)}}, _P, secret=b"k" * 32),
    "jku": _token({**_H, "jku": "http://127.0.0.1:9/jwks.json"}, _P),
    "x5u": _token({**_H, "x5u": "http://127.0.0.1:9/cert.pem"}, _P),
    "x5c": _token({**_H, "x5c": ["MIIB"]}, _P),
    "crit": _token({**_H, "crit": ["b64"], "b64": False}, _P),
    "refresh-as-access": f"Bearer {MANAGER.generate_token_pair('u', 'o', 'r').refresh_token}".encode(),
    "typ-refresh": _token({**_H, "typ": "refresh+jwt"}, _P),
    "claim-type-refresh": _token(_H, {**_P, "type": "refresh"}),
    "duplicate-role": _token(json.dumps(_H), json.dumps(_P)[:-1] + ', "role": "system_admin"}', raw=True),
    "duplicate-alg": _token(json.dumps(_H)[:-1] + ', "alg": "none"}', json.dumps(_P), raw=True),
    "aud-substring": _token(_H, {**_P, "aud": AUDIENCE[:-1]}),
    "aud-superstring": _token(_H, {**_P, "aud": AUDIENCE + "s"}),
    "aud-list-other": _token(_H, {**_P, "aud": ["other"]}),
    "iss-substring": _token(_H, {**_P, "iss": ISSUER[:-1]}),
    "iss-list": _token(_H, {**_P, "iss": [ISSUER]}),
    "expired": _token(_H, good_claims(CLOCK, iat=int(CLOCK()) - 1000, nbf=DROP, exp=int(CLOCK()) - 100)),
    "exp-too-far": _token(_H, {**_P, "exp": int(CLOCK()) + 10**9}),
    "exp-1e999": _token(
        json.dumps(_H), json.dumps(_P).replace(f'"exp": {_P["exp"]}', '"exp": 1e999'), raw=True
    ),
    "exp-nan": _token(json.dumps(_H), json.dumps(_P).replace(f'"exp": {_P["exp"]}', '"exp": NaN'), raw=True),
    "exp-string": _token(_H, {**_P, "exp": str(_P["exp"])}),
    "exp-bool": _token(_H, {**_P, "exp": True}),
    "payload-array": _token(_H, [1, 2]),
    "header-array": _token([1], _P),
    "header-not-json": f"Bearer {b64(b'{')}.{raw_segment(_P)}.{b64(b'x')}".encode(),
    "non-utf8": f"Bearer {raw_segment(_H)}.{b64(bytes([0xC3, 0x28]))}.{b64(b'x')}".encode(),
    "deep-nesting": _token(
        json.dumps(_H),
        json.dumps({**_P, "x": 0})[:-1] + ', "deep": ' + "[" * 2500 + "]" * 2500 + "}",
        raw=True,
    ),
    "64KB": b"Bearer " + b"A" * 65536,
    "1MB": b"Bearer " + b"A" * (1 << 20),
    "64KB-dots": b"Bearer " + b"A." * 32768,
    "non-ascii": "Bearer ünïcode".encode(),
    "control-chars": b"Bearer abc\x00def",
    "only-dots": b"Bearer ..",
    "empty": b"",
}
for _kid in ("../../etc/passwd", "' OR '1'='1", "kid\u0000", "${jndi:ldap://x}", "k" * 200, "", "*"):
    ATTACKS[f"kid-{_kid[:12]!r}"] = _token({**_H, "kid": _kid}, _P)
for _claim in ("exp", "nbf", "iat", "iss", "aud", "sub", "jti"):
    for _raw in ("null", "true", '"x"', "NaN", "1e999"):
        if _raw == '"x"' and _claim in ("sub", "jti"):
            continue
        _payload = json.dumps({**_P, _claim: "__V__"}).replace('"__V__"', _raw)
        ATTACKS[f"{_claim}={_raw}"] = _token(json.dumps(_H), _payload, raw=True)


@PROFILES
@pytest.mark.parametrize("name", sorted(ATTACKS))
async def test_attack_is_refused_with_401_problem(name: str, profile: str) -> None:
    """Each attack gets a 401 problem+json with error="invalid_token" in both profiles; the good token still works."""
    await assert_refused_then_good_still_works(ATTACKS[name], profile)


async def test_rs256_to_hs256_confusion_through_the_middleware() -> None:
    """HS256 tokens keyed with the RS256 public key (PEM and JWK JSON) get 401."""
    from jwt.algorithms import RSAAlgorithm

    manager, public_pem = _rs_manager()
    app = AuthMiddleware(whoami_app, jwt=manager)
    jwk = RSAAlgorithm.to_jwk(rsa_key().public_key()).encode()
    for secret in (public_pem, jwk):
        header = {"alg": "HS256", "typ": "at+jwt", "kid": manager._kid}
        token = forge_hs(header, _P, secret=secret)
        response = await call_app(app, make_scope(headers=[("authorization", f"Bearer {token}")]))
        assert response.status == 401


def test_good_token_is_canonical_and_variants_are_not() -> None:
    """Non-canonical base64url (unused bits set) is refused: one token has one spelling."""
    signature = GOOD.rsplit(".", 1)[1]
    assert b64url_decode(signature)
    last = signature[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(InvalidTokenError):
        b64url_decode(signature[:-1] + sibling)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _decoded_by_reencoding(segment: str) -> bytes | None:
    """The reference reading: decode, then accept only if re-encoding gives the same text."""
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    ok = set(segment) <= set(_ALPHABET) and base64.urlsafe_b64encode(data).rstrip(b"=").decode() == segment
    return data if ok else None


@pytest.mark.parametrize("length", [2, 3, 6, 7])
def test_canonical_check_from_the_last_character_agrees_with_reencoding(length: int) -> None:
    """Every last character of a 2- or 3-(mod 4) segment is accepted exactly when re-encoding agrees."""
    for last in _ALPHABET:
        segment = "A" * (length - 1) + last
        try:
            got: bytes | None = b64url_decode(segment)
        except InvalidTokenError:
            got = None
        assert got == _decoded_by_reencoding(segment), segment


@pytest.mark.parametrize("segment", ["a=bc", "ab+/", "abc=", "ab\u00e9c", b"ab+/"])
def test_segment_outside_the_alphabet_is_refused_even_when_claimed_checked(segment: str | bytes) -> None:
    """Characters outside base64url are refused by the per-segment check, and padding by the decoder."""
    with pytest.raises(InvalidTokenError):
        b64url_decode(segment)
    if isinstance(segment, str) and "=" in segment[:-1]:
        with pytest.raises(InvalidTokenError):
            b64url_decode(segment, alphabet_checked=True)


@pytest.mark.parametrize(
    "token",
    [
        b"a.b",
        b"a.b.c.d",
        b"a+b.c.d",
        b"a.b/c.d",
        b"a.b.c=",
        b"a.b.c\n",
        b" a.b.c",
        b"a..b.c",
        b"\xc3\xa9.b.c",
    ],
)
def test_split_compact_refuses_anything_but_three_base64url_segments(token: bytes) -> None:
    """split_compact is the only alphabet check on the JWT path: it must refuse every other shape."""
    assert split_compact(token) is None


def test_split_compact_keeps_empty_segments_for_the_decoders_to_refuse() -> None:
    """Empty segments split (as str.split did) so that each is refused by the check it always met."""
    assert split_compact(b"..") == (b"", b"", b"")
    assert split_compact(b"ab.c-_.") == (b"ab", b"c-_", b"")


_B64_CHARS = st.sampled_from(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="))


@PROFILES
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(value=st.binary(max_size=400))
async def test_any_authorization_bytes_never_crash(value: bytes, profile: str) -> None:
    """Arbitrary Authorization bytes give 400/401 (or 200 only for the good token), never an exception."""
    status, _ = await _status_for(value, profile)
    assert status == 401


@PROFILES
@settings(max_examples=300)
@given(token=st.text(_B64_CHARS, max_size=300))
async def test_token_parser_only_raises_invalid_token(token: str, profile: str) -> None:
    """Any base64url-ish string is refused with an InvalidTokenError subclass and nothing else."""
    with pytest.raises(InvalidTokenError):
        await MANAGERS[profile].validate_jwt(token)


@PROFILES
@settings(max_examples=300)
@given(position=st.integers(min_value=0, max_value=len(GOOD) - 1), char=_B64_CHARS)
async def test_single_character_mutations_are_refused(position: int, char: str, profile: str) -> None:
    """Changing any one character of a good token makes it invalid (no malleable spelling)."""
    mutated = GOOD[:position] + char + GOOD[position + 1 :]
    if mutated == GOOD:
        return
    with pytest.raises(InvalidTokenError):
        await MANAGERS[profile].validate_jwt(mutated)


@PROFILES
@settings(max_examples=200)
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "typ", "kid", "crit", "jku", "x"]), st.none() | st.text(max_size=8)
    ),
    payload=st.dictionaries(
        st.sampled_from(["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "type", "role"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=8)
        | st.lists(st.text(max_size=4)),
    ),
)
async def test_random_signed_header_and_claims_never_crash(
    header: dict[str, Any], payload: dict[str, Any], profile: str
) -> None:
    """Correctly signed tokens with random headers/claims are refused cleanly (or are fully valid)."""
    try:
        text = json.dumps(payload, allow_nan=True)
    except ValueError:
        return
    token = forge_hs(json.dumps(header), text, raw=True)
    try:
        claims = await MANAGERS[profile].validate_jwt(token)
    except InvalidTokenError:
        return
    assert claims.iss == ISSUER  # pragma: no cover - random claims practically never all line up


@PROFILES
@settings(max_examples=100)
@given(
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"]),
    before=st.sampled_from([" ", "  ", " \t"]),
    after=st.sampled_from(["", " ", "\t"]),
)
async def test_well_formed_bearer_variants_are_accepted(
    scheme: str, before: str, after: str, profile: str
) -> None:
    """Any case of the scheme and surrounding blanks around the good token are accepted."""
    status, _ = await _status_for(f"{scheme}{before}{GOOD}{after}".encode(), profile)
    assert status == 200


def _reference_strict_object(raw: bytes) -> dict[str, Any] | None:
    """The strict reading without the fast path: the full decoder, or None when it refuses."""
    from asgi_kit.auth._jose import _DECODER

    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_JSON_OBJECTS = st.dictionaries(st.text(max_size=6), _JSON_SCALARS, max_size=5)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    body=_JSON_OBJECTS.map(lambda o: json.dumps(o, separators=(",", ":")))
    | st.text(alphabet='{}[]":,0123456789 aeNInfity\\', max_size=40),
    prefix=st.sampled_from(["", " ", "\n", "{", "}"]),
    suffix=st.sampled_from(["", " ", "}", "\t", ',"a":1}', "x"]),
    duplicate=st.booleans(),
)
def test_fast_json_path_reads_exactly_what_the_full_decoder_reads(
    body: str, prefix: str, suffix: str, duplicate: bool
) -> None:
    """Payload JSON: the scanner shortcut accepts and refuses exactly what the full decoder does."""
    from asgi_kit.auth._jose import strict_json_object
    from asgi_kit.auth.errors import MalformedTokenError

    if duplicate and body.startswith('{"'):
        body = '{"k":1,"k":2,' + body[1:] if body != "{}" else body
    raw = (prefix + body + suffix).encode()
    expected = _reference_strict_object(raw)
    if expected is None:
        with pytest.raises(MalformedTokenError):
            strict_json_object(raw, "payload")
    else:
        assert strict_json_object(raw, "payload") == expected


_REFERENCE_JWS = re.compile(rb"([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)")


@given(
    token=st.binary(max_size=80)
    | st.text(_B64_CHARS | st.sampled_from(list(".=+/ ")), max_size=80).map(str.encode)
)
def test_split_compact_agrees_with_the_grammar(token: bytes) -> None:
    """Three base64url segments separated by two dots, and nothing else, whatever the bytes."""
    match = _REFERENCE_JWS.fullmatch(token)
    assert split_compact(token) == (match.groups() if match else None)
