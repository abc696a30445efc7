"""API keys: format, checksum, hashing with peppers, the verifier and the store protocol."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.auth import (
    APIKeyRecord,
    APIKeyStore,
    APIKeyVerifier,
    AuthMiddleware,
    CredentialStoreUnavailableError,
    InMemoryAPIKeyStore,
    InvalidAPIKeyError,
    TokenRevocationStore,
    generate_api_key,
    hash_api_key,
    parse_api_key,
    validate_api_key,
)
from asgi_kit.auth.apikey import BASE62
from asgi_kit.auth.stores import InMemoryTokenRevocationStore
from asgi_kit.testing import call_app, make_scope
from tests.auth.helpers import NOW, Clock, whoami_app

PEPPER = b"p" * 32


def record_for(key: str, **changes: Any) -> APIKeyRecord:
    record = APIKeyRecord(
        key_id=parse_api_key(key).key_id,
        org_id="org-1",
        user_id="user-1",
        role="org_user",
        key_hash=hash_api_key(key),
    )
    return replace(record, **changes)


def test_generated_key_format() -> None:
    """A key is prefix_env_keyid_secret_checksum, base62, with >= 256 bits of secret."""
    key = generate_api_key("tk", environment="test")
    prefix, env, key_id, secret, checksum = key.split("_")
    assert (prefix, env) == ("tk", "test")
    assert (len(key_id), len(secret), len(checksum)) == (12, 43, 6)
    assert 62**43 >= 2**256
    assert set(key_id + secret + checksum) <= set(BASE62)
    parsed = parse_api_key(key)
    assert (parsed.prefix, parsed.environment, parsed.key_id, parsed.secret) == ("tk", "test", key_id, secret)
    assert secret not in repr(parsed)
    assert len({generate_api_key() for _ in range(50)}) == 50


@pytest.mark.parametrize("bad", ["", "Sk", "1sk", "s" * 17, "s-k", "sk_"])
def test_bad_prefix_or_environment_is_refused(bad: str) -> None:
    """Prefix and environment must be short lower-case labels."""
    with pytest.raises(ValueError, match="prefix"):
        generate_api_key(bad)
    with pytest.raises(ValueError, match="environment"):
        generate_api_key(environment=bad)


def test_checksum_catches_every_single_character_typo() -> None:
    """Changing any one character of a key makes parse fail."""
    key = generate_api_key()
    for i, ch in enumerate(key):
        for replacement in ("0", "z", "_"):
            if replacement == ch:
                continue
            with pytest.raises(InvalidAPIKeyError):
                parse_api_key(key[:i] + replacement + key[i + 1 :])


def test_parse_checks_expected_prefix_and_environment() -> None:
    """parse_api_key can insist on a prefix and environment; bytes input works."""
    key = generate_api_key("sk", environment="test")
    assert parse_api_key(key.encode(), prefix="sk", environment="test").key_id
    with pytest.raises(InvalidAPIKeyError, match="prefix"):
        parse_api_key(key, prefix="pk")
    with pytest.raises(InvalidAPIKeyError, match="environment"):
        parse_api_key(key, environment="live")
    with pytest.raises(InvalidAPIKeyError):
        parse_api_key("x" * 10_000)
    with pytest.raises(InvalidAPIKeyError):
        parse_api_key("sk_live_ünicode")


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_parser_never_raises_anything_else(value: bytes | str) -> None:
    """Arbitrary input is either a valid key or an InvalidAPIKeyError."""
    with contextlib.suppress(InvalidAPIKeyError):
        parse_api_key(value)


@given(st.sampled_from(["sk", "pk", "a1"]), st.sampled_from(["live", "test"]))
def test_generated_keys_always_parse(prefix: str, environment: str) -> None:
    """Every generated key round-trips through the parser."""
    assert parse_api_key(generate_api_key(prefix, environment=environment)).prefix == prefix


def test_hash_is_sha256_or_hmac_and_validation_is_constant_time_compare() -> None:
    """hash_api_key is SHA-256 hex, HMAC-SHA256 under a pepper; validate_api_key checks it."""
    key = generate_api_key()
    assert hash_api_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert hash_api_key(key, pepper=PEPPER) == hmac.new(PEPPER, key.encode(), hashlib.sha256).hexdigest()
    assert validate_api_key(key, hash_api_key(key))
    assert validate_api_key(key, hash_api_key(key, pepper=PEPPER), pepper=PEPPER)
    assert not validate_api_key(key, hash_api_key(key, pepper=PEPPER))
    assert not validate_api_key(key, "ünicode-garbage")
    assert not validate_api_key(generate_api_key(), hash_api_key(key))


def test_verifier_validates_options() -> None:
    """Bad stores, peppers, labels and intervals fail at construction."""
    with pytest.raises(TypeError, match="APIKeyStore"):
        APIKeyVerifier(object())  # type: ignore[arg-type]
    store = InMemoryAPIKeyStore()
    with pytest.raises(ValueError, match="versions"):
        APIKeyVerifier(store, peppers={0: PEPPER})
    with pytest.raises(ValueError, match="32 bytes"):
        APIKeyVerifier(store, peppers={1: b"short"})
    with pytest.raises(ValueError, match="prefix"):
        APIKeyVerifier(store, prefix="BAD")
    with pytest.raises(ValueError, match="last_used_interval"):
        APIKeyVerifier(store, last_used_interval=-1)
    assert "PEPPER" not in repr(APIKeyVerifier(store, peppers={1: PEPPER}))
    with pytest.raises(TypeError, match="APIKeyRecord"):
        store.add("x")  # type: ignore[arg-type]


def test_stores_satisfy_their_protocols() -> None:
    """The in-memory stores implement the runtime-checkable protocols."""
    assert isinstance(InMemoryAPIKeyStore(), APIKeyStore)
    assert isinstance(InMemoryTokenRevocationStore(), TokenRevocationStore)


async def test_verifier_accepts_plain_and_peppered_keys_of_any_version() -> None:
    """Records hashed without pepper, with pepper v1 and v2 all verify; an unknown version does not."""
    plain, v1, v2, v3 = (generate_api_key() for _ in range(4))
    store = InMemoryAPIKeyStore(
        [
            record_for(plain),
            record_for(v1, key_hash=hash_api_key(v1, pepper=PEPPER), pepper_version=1),
            record_for(v2, key_hash=hash_api_key(v2, pepper=b"q" * 32), pepper_version=2),
            record_for(v3, key_hash=hash_api_key(v3, pepper=b"r" * 32), pepper_version=3),
        ]
    )
    verifier = APIKeyVerifier(store, peppers={1: PEPPER, 2: b"q" * 32})
    for key in (plain, v1, v2):
        assert (await verifier.verify(key.encode())).role == "org_user"
    with pytest.raises(InvalidAPIKeyError):
        await verifier.verify(v3.encode())
    await verifier.drain()


async def test_expired_and_revoked_keys_are_refused() -> None:
    """A key past expires_at or with revoked_at set is refused."""
    clock = Clock()
    past = datetime.fromtimestamp(NOW - 1, tz=UTC)
    future = datetime.fromtimestamp(NOW + 3600, tz=UTC)
    live, expired, revoked = (generate_api_key() for _ in range(3))
    store = InMemoryAPIKeyStore(
        [record_for(live, expires_at=future), record_for(expired, expires_at=past), record_for(revoked)]
    )
    store.revoke(parse_api_key(revoked).key_id, past)
    store.revoke("unknown", past)
    verifier = APIKeyVerifier(store, clock=clock)
    assert await verifier.verify(live.encode())
    for key in (expired, revoked):
        with pytest.raises(InvalidAPIKeyError):
            await verifier.verify(key.encode())
    clock.advance(3600)
    with pytest.raises(InvalidAPIKeyError):
        await verifier.verify(live.encode())
    await verifier.drain()


async def test_malformed_keys_never_reach_the_store() -> None:
    """Malformed, wrong-prefix, wrong-environment and checksum-failing keys are counted, not looked up."""
    key = generate_api_key()
    store = InMemoryAPIKeyStore([record_for(key)])
    verifier = APIKeyVerifier(store, environment="live")
    bad = [
        b"",
        b"sk_live_short",
        key[:-1].encode() + (b"A" if key[-1] != "A" else b"B"),
        generate_api_key("pk").encode(),
        generate_api_key(environment="test").encode(),
        key.encode() + b"x",
    ]
    for value in bad:
        with pytest.raises(InvalidAPIKeyError):
            await verifier.verify(value)
    assert store.lookups == 0
    assert verifier.lookups_skipped == len(bad)


async def test_store_outage_raises_unavailable() -> None:
    """A store that raises becomes CredentialStoreUnavailableError."""

    class Down(InMemoryAPIKeyStore):
        async def get_api_key(self, key_id: str) -> APIKeyRecord | None:
            raise OSError("connection refused")

    with pytest.raises(CredentialStoreUnavailableError):
        await APIKeyVerifier(Down()).verify(generate_api_key().encode())


async def test_last_used_is_throttled_and_never_fails_a_request() -> None:
    """touch_last_used runs at most once per interval per key, and its failure is swallowed."""
    clock = Clock()
    key = generate_api_key()
    touches: list[datetime] = []

    class Flaky(InMemoryAPIKeyStore):
        async def touch_last_used(self, key_id: str, when: datetime) -> None:
            touches.append(when)
            raise OSError("write failed")

    verifier = APIKeyVerifier(Flaky([record_for(key)]), last_used_interval=60, clock=clock)
    for _ in range(5):
        assert await verifier.verify(key.encode())
    await verifier.drain()
    assert len(touches) == 1
    clock.advance(60)
    assert await verifier.verify(key.encode())
    await verifier.drain()
    assert touches == [datetime.fromtimestamp(NOW, tz=UTC), datetime.fromtimestamp(NOW + 60, tz=UTC)]


async def test_in_memory_store_records_last_used() -> None:
    """The in-memory store keeps the last-used time per key."""
    key = generate_api_key()
    store = InMemoryAPIKeyStore([record_for(key)])
    verifier = APIKeyVerifier(store, clock=Clock())
    await verifier.verify(key.encode())
    await verifier.drain()
    assert store.last_used[parse_api_key(key).key_id] == datetime.fromtimestamp(NOW, tz=UTC)


async def test_unknown_key_id_and_wrong_secret_get_byte_identical_responses() -> None:
    """An unknown key id and a known id with a wrong secret are indistinguishable."""
    key = generate_api_key()
    store = InMemoryAPIKeyStore([record_for(key)])
    app = AuthMiddleware(whoami_app, api_keys=store)
    unknown = generate_api_key()  # well-formed, valid checksum, id not in the store
    prefix, env, key_id, _, _ = key.split("_")
    body = f"{prefix}_{env}_{key_id}_{generate_api_key().split('_')[3]}_"
    from asgi_kit.auth.apikey import _checksum

    wrong_secret = body + _checksum(body)
    responses = []
    for value in (unknown, wrong_secret):
        responses.append(await call_app(app, make_scope(headers=[("x-api-key", value)])))
    assert store.lookups == 2
    assert responses[0].status == responses[1].status == 401
    assert responses[0].headers == responses[1].headers
    assert responses[0].body == responses[1].body


async def test_expired_key_through_middleware_is_401() -> None:
    """An expired key gets the same 401 as any bad key."""
    key = generate_api_key()
    store = InMemoryAPIKeyStore([record_for(key, expires_at=datetime.now(tz=UTC) - timedelta(seconds=1))])
    response = await call_app(
        AuthMiddleware(whoami_app, api_keys=store), make_scope(headers=[("x-api-key", key)])
    )
    assert response.status == 401
    assert response.header("www-authenticate") == 'Bearer realm="api", error="invalid_token"'


_KEY_FOR_PROPERTY = generate_api_key()
_PROPERTY_STORE = InMemoryAPIKeyStore([record_for(_KEY_FOR_PROPERTY)])
_PROPERTY_APP = AuthMiddleware(whoami_app, api_keys=_PROPERTY_STORE)


@given(st.binary(max_size=300))
async def test_any_api_key_header_bytes_give_401_never_a_crash(value: bytes) -> None:
    """Arbitrary X-API-Key bytes are refused with a 401 problem and never reach the store unless well-formed."""
    before = _PROPERTY_STORE.lookups
    response = await call_app(_PROPERTY_APP, make_scope(headers=[(b"x-api-key", value)]))
    assert response.status == 401
    if _PROPERTY_STORE.lookups != before:
        parse_api_key(value.strip(b" \t"))  # only well-formed keys with a valid checksum were looked up
