"""The API-key verifier's cache: hits without queries, TTLs, negative entries, single flight, outages."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_kit.auth import (
    APIKeyEventSource,
    APIKeyInvalidator,
    APIKeyRecord,
    APIKeyVerifier,
    AuthMiddleware,
    CredentialStoreUnavailableError,
    InMemoryAPIKeyStore,
    InvalidAPIKeyError,
    generate_api_key,
    hash_api_key,
    parse_api_key,
)
from asgi_kit.auth.apikey import _checksum
from asgi_kit.testing import call_app, make_scope
from tests.auth.helpers import NOW, Clock, whoami_app


def record_for(key: str, **changes: Any) -> APIKeyRecord:
    record = APIKeyRecord(
        key_id=parse_api_key(key).key_id,
        org_id="org-1",
        user_id="user-1",
        role="org_user",
        key_hash=hash_api_key(key),
    )
    return replace(record, **changes)


class CountingStore:
    """A store that counts queries, can be switched off (outage) and can hold a query open."""

    def __init__(self, records: tuple[APIKeyRecord, ...] | list[APIKeyRecord] = ()) -> None:
        self.records = {record.key_id: record for record in records}
        self.lookups = 0
        self.down = False
        self.gate: asyncio.Event | None = None

    async def get_api_key(self, key_id: str) -> APIKeyRecord | None:
        self.lookups += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise OSError("connection refused")
        return self.records.get(key_id)

    async def touch_last_used(self, key_id: str, when: datetime) -> None:
        return None


def same_id_other_secret(key: str) -> str:
    prefix, env, key_id, _, _ = key.split("_")
    body = f"{prefix}_{env}_{key_id}_{generate_api_key().split('_')[3]}_"
    return body + _checksum(body)


async def test_a_hit_costs_no_store_query() -> None:
    """The first verification queries the store; the next thousand do not."""
    key = generate_api_key()
    store = CountingStore([record_for(key)])
    verifier = APIKeyVerifier(store, clock=Clock())
    for _ in range(1000):
        assert (await verifier.verify(key.encode())).key_id == parse_api_key(key).key_id
    assert store.lookups == verifier.store_lookups == 1
    await verifier.drain()


async def test_cache_ttl_bounds_how_long_a_record_is_trusted() -> None:
    """After cache_ttl seconds the record is fetched again, so a change with no event still lands."""
    clock = Clock()
    key = generate_api_key()
    store = CountingStore([record_for(key)])
    verifier = APIKeyVerifier(store, clock=clock, cache_ttl=60)
    await verifier.verify(key.encode())
    store.records[parse_api_key(key).key_id] = record_for(key, revoked_at=datetime.fromtimestamp(NOW, tz=UTC))
    clock.advance(59)
    assert await verifier.verify(key.encode())  # still the cached record
    clock.advance(1)
    with pytest.raises(InvalidAPIKeyError):
        await verifier.verify(key.encode())
    assert store.lookups == 2
    await verifier.drain()


async def test_zero_ttl_or_size_disables_the_cache() -> None:
    """cache_ttl=0 or cache_size=0: every verification queries the store."""
    key = generate_api_key()
    for options in ({"cache_ttl": 0}, {"cache_size": 0}):
        store = CountingStore([record_for(key)])
        verifier = APIKeyVerifier(store, clock=Clock(), **options)
        for _ in range(3):
            await verifier.verify(key.encode())
        assert store.lookups == 3
        await verifier.drain()


async def test_expiry_is_checked_on_every_hit() -> None:
    """A cached key refuses from the second its expires_at passes, with no query."""
    clock = Clock()
    key = generate_api_key()
    store = CountingStore([record_for(key, expires_at=datetime.fromtimestamp(NOW + 10, tz=UTC))])
    verifier = APIKeyVerifier(store, clock=clock)
    assert await verifier.verify(key.encode())
    clock.advance(10)
    with pytest.raises(InvalidAPIKeyError):
        await verifier.verify(key.encode())
    assert store.lookups == 1
    await verifier.drain()


async def test_revocation_is_checked_on_every_hit() -> None:
    """A cached record revoked in the future refuses once that time is reached, with no query."""
    clock = Clock()
    key = generate_api_key()
    store = CountingStore([record_for(key, revoked_at=datetime.fromtimestamp(NOW + 5, tz=UTC))])
    verifier = APIKeyVerifier(store, clock=clock)
    assert await verifier.verify(key.encode())
    clock.advance(5)
    for _ in range(3):
        with pytest.raises(InvalidAPIKeyError):
            await verifier.verify(key.encode())
    assert store.lookups == 1
    await verifier.drain()


async def test_a_wrong_secret_for_a_cached_key_id_is_refused_without_a_query() -> None:
    """Adversarial: the right key id with another secret (valid checksum) is a 401, not a query."""
    key = generate_api_key()
    store = CountingStore([record_for(key)])
    verifier = APIKeyVerifier(store, clock=Clock())
    await verifier.verify(key.encode())
    forged = same_id_other_secret(key)
    for _ in range(50):
        with pytest.raises(InvalidAPIKeyError):
            await verifier.verify(forged.encode())
    assert store.lookups == 1
    assert await verifier.verify(key.encode())  # the real key is unaffected
    await verifier.drain()


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=43, max_size=43))
async def test_no_secret_but_the_real_one_passes_a_cached_key_id(noise: bytes) -> None:
    """Property: any other 43-character secret under a cached key id is refused."""
    key = generate_api_key()
    verifier = APIKeyVerifier(CountingStore([record_for(key)]), clock=Clock())
    await verifier.verify(key.encode())
    prefix, env, key_id, secret, _ = key.split("_")
    other = "".join("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[b % 62] for b in noise)
    body = f"{prefix}_{env}_{key_id}_{other}_"
    candidate = body + _checksum(body)
    if other != secret:
        with pytest.raises(InvalidAPIKeyError):
            await verifier.verify(candidate.encode())
    await verifier.drain()


async def test_unknown_key_ids_are_remembered_briefly() -> None:
    """A flood of one unknown key costs one query per negative_ttl; it is forgotten after it."""
    clock = Clock()
    store = CountingStore()
    verifier = APIKeyVerifier(store, clock=clock, negative_ttl=5)
    unknown = generate_api_key()
    for _ in range(100):
        with pytest.raises(InvalidAPIKeyError):
            await verifier.verify(unknown.encode())
    assert store.lookups == 1
    clock.advance(5)
    with pytest.raises(InvalidAPIKeyError):
        await verifier.verify(unknown.encode())
    assert store.lookups == 2


async def test_the_negative_cache_is_bounded() -> None:
    """At most negative_cache_size unknown ids are kept; the oldest is dropped first."""
    store = CountingStore()
    verifier = APIKeyVerifier(store, clock=Clock(), negative_cache_size=3)
    keys = [generate_api_key() for _ in range(4)]
    for key in keys:
        with pytest.raises(InvalidAPIKeyError):
            await verifier.verify(key.encode())
    assert len(verifier._cache.unknown) == 3
    for key in keys[1:]:  # still remembered
        with pytest.raises(InvalidAPIKeyError):
            await verifier.verify(key.encode())
    assert store.lookups == 4
    with pytest.raises(InvalidAPIKeyError):  # the first was dropped: asked again
        await verifier.verify(keys[0].encode())
    assert store.lookups == 5


async def test_the_record_cache_is_bounded() -> None:
    """At most cache_size records are kept."""
    keys = [generate_api_key() for _ in range(5)]
    verifier = APIKeyVerifier(CountingStore([record_for(k) for k in keys]), clock=Clock(), cache_size=2)
    for key in keys:
        await verifier.verify(key.encode())
    assert len(verifier._cache.records) == 2
    await verifier.drain()


async def test_concurrent_misses_share_one_query() -> None:
    """Single flight: 50 concurrent first requests of one key make one store query."""
    key = generate_api_key()
    store = CountingStore([record_for(key)])
    store.gate = asyncio.Event()
    verifier = APIKeyVerifier(store, clock=Clock())
    waiting = [asyncio.create_task(verifier.verify(key.encode())) for _ in range(50)]
    await asyncio.sleep(0)
    store.gate.set()
    records = await asyncio.gather(*waiting)
    assert {r.key_id for r in records} == {parse_api_key(key).key_id}
    assert store.lookups == 1
    await verifier.drain()


async def test_a_cancelled_waiter_does_not_cancel_the_shared_query() -> None:
    """The first caller's cancellation leaves the query running for the others."""
    key = generate_api_key()
    store = CountingStore([record_for(key)])
    store.gate = asyncio.Event()
    verifier = APIKeyVerifier(store, clock=Clock())
    first = asyncio.create_task(verifier.verify(key.encode()))
    second = asyncio.create_task(verifier.verify(key.encode()))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    store.gate.set()
    assert (await second).key_id == parse_api_key(key).key_id
    assert first.cancelled() and store.lookups == 1
    await verifier.drain()


async def test_an_invalidation_during_a_query_is_not_overwritten() -> None:
    """A query that raced an invalidation is answered but not remembered; the next asks again."""
    key = generate_api_key()
    store = CountingStore([record_for(key)])
    store.gate = asyncio.Event()
    verifier = APIKeyVerifier(store, clock=Clock())
    pending = asyncio.create_task(verifier.verify(key.encode()))
    await asyncio.sleep(0)
    verifier.invalidate(parse_api_key(key).key_id)
    store.gate.set()
    await pending
    assert len(verifier._cache.records) == 0
    await verifier.verify(key.encode())
    assert store.lookups == 2
    await verifier.drain()


async def test_outage_cached_keys_work_unknown_keys_get_503() -> None:
    """Store down: a cached key still verifies until its TTL; an uncached one is unavailable."""
    clock = Clock()
    cached, other = generate_api_key(), generate_api_key()
    store = CountingStore([record_for(cached), record_for(other)])
    verifier = APIKeyVerifier(store, clock=clock, cache_ttl=60)
    await verifier.verify(cached.encode())
    store.down = True
    assert await verifier.verify(cached.encode())
    with pytest.raises(CredentialStoreUnavailableError):
        await verifier.verify(other.encode())
    clock.advance(60)
    with pytest.raises(CredentialStoreUnavailableError):
        await verifier.verify(cached.encode())
    app = AuthMiddleware(whoami_app, api_keys=verifier)
    response = await call_app(app, make_scope(headers=[(b"x-api-key", other.encode())]))
    assert response.status == 503
    await verifier.drain()


async def test_invalidate_and_invalidate_all_make_the_next_request_ask_the_store() -> None:
    """invalidate(key_id) drops one record (and a negative entry); invalidate_all drops all."""
    one, two = generate_api_key(), generate_api_key()
    unknown = generate_api_key()
    store = CountingStore([record_for(one), record_for(two)])
    verifier = APIKeyVerifier(store, clock=Clock())
    assert isinstance(verifier, APIKeyInvalidator)
    for key in (one, two):
        await verifier.verify(key.encode())
    with pytest.raises(InvalidAPIKeyError):
        await verifier.verify(unknown.encode())
    assert store.lookups == 3
    verifier.invalidate(parse_api_key(one).key_id)
    await verifier.verify(one.encode())
    await verifier.verify(two.encode())
    assert store.lookups == 4
    store.records[parse_api_key(unknown).key_id] = record_for(unknown)
    verifier.invalidate(parse_api_key(unknown).key_id)  # inserted: the negative entry goes
    assert await verifier.verify(unknown.encode())
    assert store.lookups == 5
    verifier.invalidate_all()
    for key in (one, two, unknown):
        await verifier.verify(key.encode())
    assert store.lookups == 8
    await verifier.drain()


async def test_the_in_memory_store_tells_its_verifiers_about_changes() -> None:
    """Revoking, removing or replacing a key in the in-memory store reaches a verifier's cache at once."""
    key = generate_api_key()
    store = InMemoryAPIKeyStore([record_for(key)])
    assert isinstance(store, APIKeyEventSource)
    verifier = APIKeyVerifier(store, clock=Clock())
    await verifier.verify(key.encode())
    store.revoke(parse_api_key(key).key_id, datetime.fromtimestamp(NOW - 1, tz=UTC))
    with pytest.raises(InvalidAPIKeyError):
        await verifier.verify(key.encode())
    store.add(record_for(key))
    assert await verifier.verify(key.encode())
    store.remove(parse_api_key(key).key_id)
    store.remove("absent")
    with pytest.raises(InvalidAPIKeyError):
        await verifier.verify(key.encode())
    await verifier.drain()


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("cache_size", -1, ValueError),
        ("cache_size", 1.5, TypeError),
        ("cache_size", True, TypeError),
        ("cache_ttl", -1, ValueError),
        ("cache_ttl", float("inf"), ValueError),
        ("cache_ttl", "300", TypeError),
        ("negative_cache_size", -5, ValueError),
        ("negative_cache_size", "10", TypeError),
        ("negative_ttl", float("nan"), ValueError),
        ("negative_ttl", None, TypeError),
        ("clock", 3.0, TypeError),
    ],
)
def test_cache_options_are_checked_at_construction(option: str, value: Any, error: type[Exception]) -> None:
    """A bad cache option raises TypeError (wrong type) or ValueError (wrong value) naming it."""
    with pytest.raises(error, match=option):
        APIKeyVerifier(InMemoryAPIKeyStore(), **{option: value})
