"""API-key change events: the trigger of migration 0005 and the listener that feeds the key caches."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from asgi_kit.auth import (
    APIKeyRecord,
    APIKeyVerifier,
    InvalidAPIKeyError,
    generate_api_key,
    hash_api_key,
    parse_api_key,
)
from asgi_kit.database import API_KEY_EVENTS_CHANNEL, APIKeyEventListener, PostgresAPIKeyStore, PostgresPool
from asgi_kit.database.postgres import postgres_conninfo
from tests.database.conftest import PASSWORD, admin_execute, database_name, new_org_id

pytestmark = pytest.mark.postgres


class Recorder:
    """An invalidator that remembers what it was told."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.flushes = 0
        self.changed = asyncio.Event()

    def invalidate(self, key_id: str) -> None:
        self.keys.append(key_id)
        self.changed.set()

    def invalidate_all(self) -> None:
        self.flushes += 1
        self.changed.set()


def sql(url: str, statement: str, params: Any = None) -> None:
    """Run one statement from another connection, as an admin tool would."""
    with psycopg.connect(postgres_conninfo(url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement, params)


def listener_pids(url: str, application_name: str) -> list[int]:
    rows = admin_execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        (database_name(url), application_name),
    )
    return [row[0] for row in rows]


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def org(pool: PostgresPool) -> str:
    org_id = new_org_id()
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO organizations (id, name, display_name) VALUES (%s, %s, %s)", (org_id, org_id, org_id)
        )
    return org_id


@pytest.fixture
async def listening(migrated_url: str) -> AsyncIterator[tuple[APIKeyEventListener, Recorder]]:
    recorder = Recorder()
    name = f"kt-{uuid.uuid4().hex[:8]}"
    listener = APIKeyEventListener(migrated_url, recorder, application_name=name, reconnect_delay=0.05)
    async with listener:
        assert await listener.wait_connected(5.0)
        yield listener, recorder


async def new_key(store: PostgresAPIKeyStore, org_id: str) -> str:
    key = generate_api_key()
    record = APIKeyRecord(
        key_id=parse_api_key(key).key_id,
        org_id=org_id,
        user_id=None,
        role="org_user",
        key_hash=hash_api_key(key),
    )
    await store.add(record)
    return key


async def test_the_trigger_notifies_changes_that_matter_and_not_last_used(
    pool: PostgresPool, org: str
) -> None:
    """INSERT, UPDATE of a cached column and DELETE notify the key id; last_used_at does not; TRUNCATE says '*'."""
    store = PostgresAPIKeyStore(pool)
    async with pool.connection() as listen:
        await listen.execute(f"LISTEN {API_KEY_EVENTS_CHANNEL}")
        key = await new_key(store, org)
        key_id = parse_api_key(key).key_id
        await store.touch_last_used(key_id, datetime.now(UTC))
        await store.revoke(key_id)
        async with pool.connection() as conn:
            await conn.execute(
                "UPDATE api_keys SET name = 'renamed', last_used_at = now() WHERE id = %s", (key_id,)
            )
            await conn.execute("UPDATE api_keys SET scopes = '{models:read}' WHERE id = %s", (key_id,))
            await conn.execute("DELETE FROM api_keys WHERE id = %s", (key_id,))
            async with conn.transaction():  # rolled back: nothing is announced
                await conn.execute("UPDATE api_keys SET revoked_at = now()")
                raise psycopg.Rollback()
        payloads = [n.payload async for n in listen.notifies(timeout=0.5)]
        assert payloads == [key_id, key_id, key_id, key_id]  # insert, revoke, scopes, delete
        async with pool.connection() as conn:
            await conn.execute("TRUNCATE api_keys CASCADE")
        assert [n.payload async for n in listen.notifies(timeout=0.5)] == ["*"]
        await listen.execute(f"UNLISTEN {API_KEY_EVENTS_CHANNEL}")


async def test_a_plain_sql_revocation_reaches_a_cached_verifier_within_a_second(
    migrated_url: str, pool: PostgresPool, org: str
) -> None:
    """A key cached by the verifier and revoked by plain SQL from another connection is refused in < 1 s."""
    store = PostgresAPIKeyStore(pool)
    verifier = APIKeyVerifier(store, last_used_interval=3600)
    key = await new_key(store, org)
    name = f"kt-{uuid.uuid4().hex[:8]}"
    async with APIKeyEventListener(migrated_url, verifier, application_name=name) as listener:
        assert await listener.wait_connected(5.0)
        for trial in range(5):
            assert await verifier.verify(key.encode())
            lookups = verifier.store_lookups
            assert await verifier.verify(key.encode())
            assert verifier.store_lookups == lookups  # cached
            await asyncio.to_thread(
                sql,
                migrated_url,
                "UPDATE api_keys SET revoked_at = now() WHERE id = %s",
                (parse_api_key(key).key_id,),
            )
            started = time.monotonic()
            while True:
                try:
                    await verifier.verify(key.encode())
                except InvalidAPIKeyError:
                    break
                assert time.monotonic() - started < 1.0, f"trial {trial}: still accepted after 1 s"
                await asyncio.sleep(0.005)
            await asyncio.to_thread(
                sql,
                migrated_url,
                "UPDATE api_keys SET revoked_at = NULL WHERE id = %s",
                (parse_api_key(key).key_id,),
            )
            await wait_for(lambda: verifier._cache.records.get(parse_api_key(key).key_id.encode()) is None)
    await verifier.drain()


async def test_an_insert_ends_a_negative_entry_at_once(
    migrated_url: str, pool: PostgresPool, org: str
) -> None:
    """A key refused as unknown (and remembered) is accepted as soon as its row is inserted."""
    store = PostgresAPIKeyStore(pool)
    verifier = APIKeyVerifier(store, negative_ttl=60, last_used_interval=3600)
    key = generate_api_key()
    async with APIKeyEventListener(
        migrated_url, verifier, application_name=f"kt-{uuid.uuid4().hex[:8]}"
    ) as listener:
        assert await listener.wait_connected(5.0)
        with pytest.raises(InvalidAPIKeyError):
            await verifier.verify(key.encode())
        with pytest.raises(InvalidAPIKeyError):
            await verifier.verify(key.encode())
        assert verifier.store_lookups == 1  # remembered as unknown
        await asyncio.to_thread(
            sql,
            migrated_url,
            "INSERT INTO api_keys (id, org_id, key_hash) VALUES (%s, %s, %s)",
            (parse_api_key(key).key_id, org, hash_api_key(key)),
        )
        started = time.monotonic()
        while True:
            try:
                assert await verifier.verify(key.encode())
                break
            except InvalidAPIKeyError:
                assert time.monotonic() - started < 1.0
                await asyncio.sleep(0.005)
    await verifier.drain()


async def test_the_listener_flushes_on_connect_and_reconnects_after_termination(
    migrated_url: str, listening: tuple[APIKeyEventListener, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    """pg_terminate_backend of the listener: it reconnects by itself, flushes again, logs without secrets."""
    listener, recorder = listening
    assert recorder.flushes == 1 and listener.connections == 1
    pids = listener_pids(migrated_url, listener.application_name)
    assert len(pids) == 1
    caplog.set_level(logging.INFO, logger="asgi_kit.database")
    admin_execute("SELECT pg_terminate_backend(%s)", (pids[0],))
    await wait_for(lambda: listener.connections == 2)
    assert listener.connected and recorder.flushes == 2
    new_pids = listener_pids(migrated_url, listener.application_name)
    assert len(new_pids) == 1 and new_pids != pids
    text = caplog.text
    assert "connection lost" in text and "listening again" in text
    assert PASSWORD not in text and "postgresql://" not in text
    sql(migrated_url, "DELETE FROM api_keys WHERE id = 'nobody'")  # no row: nothing announced
    sql(migrated_url, "SELECT pg_notify(%s, %s)", (API_KEY_EVENTS_CHANNEL, "k-after"))
    await wait_for(lambda: "k-after" in recorder.keys)


async def test_a_truncate_flushes_everything(
    migrated_url: str, listening: tuple[APIKeyEventListener, Recorder]
) -> None:
    """The '*' payload (TRUNCATE) flushes every cache instead of naming a key."""
    _, recorder = listening
    before = recorder.flushes
    sql(migrated_url, "SELECT pg_notify(%s, '*')", (API_KEY_EVENTS_CHANNEL,))
    await wait_for(lambda: recorder.flushes == before + 1)
    assert "*" not in recorder.keys


async def test_a_quiet_connection_is_pinged_and_a_dead_one_replaced(migrated_url: str) -> None:
    """With no events the listener pings; a ping that fails (backend gone) leads to a reconnection."""
    recorder = Recorder()
    name = f"kt-{uuid.uuid4().hex[:8]}"
    async with APIKeyEventListener(
        migrated_url, recorder, application_name=name, ping_interval=0.05, reconnect_delay=0.01
    ) as listener:
        assert await listener.wait_connected(5.0)
        await asyncio.sleep(0.2)  # a few pings on a healthy connection
        assert listener.connections == 1
        admin_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
        )
        await wait_for(lambda: listener.connections == 2)
    assert not listener.connected
    await wait_for(lambda: not listener_pids(migrated_url, name))  # closed on exit


async def test_an_unreachable_server_is_retried_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """No server: the listener keeps trying with backoff, logs the outage once, never the URL."""
    caplog.set_level(logging.WARNING, logger="asgi_kit.database")
    listener = APIKeyEventListener(
        f"postgresql://u:{PASSWORD}@127.0.0.1:1/x", Recorder(), reconnect_delay=0.01, max_reconnect_delay=0.02
    )
    await listener.start()
    await listener.start()  # already running: no second task
    assert not await listener.wait_connected(0.3)
    await listener.aclose()
    await listener.aclose()  # idempotent
    assert caplog.text.count("cannot connect") == 1
    assert PASSWORD not in caplog.text and "127.0.0.1" not in caplog.text
    assert "connected=False" in repr(listener)


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"ping_interval": 0}, ValueError, "ping_interval"),
        ({"reconnect_delay": "1"}, TypeError, "reconnect_delay"),
        ({"max_reconnect_delay": float("inf")}, ValueError, "max_reconnect_delay"),
        ({"reconnect_delay": 2.0, "max_reconnect_delay": 1.0}, ValueError, "max_reconnect_delay"),
        ({"connect_timeout": -1}, ValueError, "connect_timeout"),
        ({"application_name": "x" * 64}, ValueError, "application_name"),
        ({"application_name": "bad\nname"}, ValueError, "application_name"),
    ],
)
def test_listener_options_are_checked_at_construction(
    options: dict[str, Any], error: type[Exception], name: str
) -> None:
    """A bad listener option raises TypeError or ValueError naming it."""
    with pytest.raises(error, match=name):
        APIKeyEventListener("postgresql://127.0.0.1/x", Recorder(), **options)


def test_listener_needs_invalidators() -> None:
    """Something without invalidate()/invalidate_all() (or an empty list) is refused."""
    for value in (object(), [], [Recorder(), object()]):
        with pytest.raises(TypeError, match="invalidators"):
            APIKeyEventListener("postgresql://127.0.0.1/x", value)  # type: ignore[arg-type]
    assert APIKeyEventListener("postgresql://127.0.0.1/x", [Recorder(), Recorder()])
