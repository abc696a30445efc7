"""The pool: opened and checked, healed after backends die, health checked, no URL leaked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
import pytest
from pydantic import SecretStr

from asgi_kit.database import (
    DatabaseUnavailableError,
    check_database_health,
    create_postgres_pool,
    new_postgres_pool,
    postgres_lifespan,
    redact_url,
)
from asgi_kit.database.postgres import postgres_conninfo
from asgi_kit.health import health_app
from asgi_kit.testing import call_app
from tests.database.conftest import PASSWORD, terminate_backends, with_password

pytestmark = pytest.mark.postgres


async def test_new_pool_is_open_and_checked(migrated_url: str) -> None:
    """new_postgres_pool returns an open pool that checks connections on checkout."""
    pool = await new_postgres_pool(migrated_url, min_size=2, max_size=3)
    try:
        stats = pool.get_stats()
        assert stats["pool_min"] == 2 and stats["pool_max"] == 3
        assert pool._check is not None
        async with pool.connection() as conn:
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    finally:
        await pool.close()


async def test_pool_heals_after_backends_are_terminated(migrated_url: str) -> None:
    """After pg_terminate_backend of every connection, the next checkout still works."""
    pool = await new_postgres_pool(migrated_url, min_size=3, max_size=3)
    try:
        assert terminate_backends(migrated_url) >= 3
        for _ in range(6):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        assert pool.get_stats().get("connections_lost", 0) >= 1
    finally:
        await pool.close()


async def test_secret_str_and_psycopg_scheme_accepted(migrated_url: str) -> None:
    """A SecretStr URL and the postgresql+psycopg:// scheme both work."""
    url = migrated_url.replace("postgresql://", "postgresql+psycopg://", 1)
    pool = await new_postgres_pool(SecretStr(url), min_size=0, max_size=1)
    await pool.close()


async def test_unreachable_database_raises_clean_error(caplog: pytest.LogCaptureFixture) -> None:
    """An unreachable server gives DatabaseUnavailableError with no password in it or in any log."""
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/nowhere"
    with caplog.at_level(logging.DEBUG), pytest.raises(DatabaseUnavailableError) as info:
        await new_postgres_pool(url, min_size=1, max_size=1, timeout=0.5, connect_timeout=1)
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert PASSWORD not in caplog.text


async def test_missing_database_error_hides_password(
    caplog: pytest.LogCaptureFixture, migrated_url: str
) -> None:
    """A database that does not exist fails cleanly; the driver's message is not in the error."""
    url = migrated_url.rsplit("/", 1)[0] + "/asgi_kit_no_such_db"
    with caplog.at_level(logging.DEBUG), pytest.raises(DatabaseUnavailableError) as info:
        await new_postgres_pool(url, min_size=1, max_size=1, timeout=0.5)
    assert "does not exist" not in str(info.value)
    assert PASSWORD not in caplog.text


async def test_lifespan_opens_and_closes(migrated_url: str) -> None:
    """postgres_lifespan opens the pool on enter and closes it on exit."""
    pool = create_postgres_pool(migrated_url, min_size=1, max_size=2)
    async with postgres_lifespan(pool) as opened:
        assert opened is pool
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
    assert pool.closed


async def test_lifespan_can_migrate_first(fresh_database: Callable[[], str]) -> None:
    """postgres_lifespan(migrate=True) applies the schema before opening the pool."""
    url = fresh_database()
    pool = create_postgres_pool(url, min_size=1, max_size=1)
    async with postgres_lifespan(pool, migrate=True):
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT count(*) FROM organizations")
            assert await cursor.fetchone() == (0,)


async def test_health_check_pass_and_fail(migrated_url: str) -> None:
    """check_database_health passes on a live pool, fails (never raises) on a closed one."""
    pool = await new_postgres_pool(migrated_url, min_size=1, max_size=1)
    status = await check_database_health(pool, timeout=2)
    assert status.healthy and status.latency_ms is not None
    await pool.close()
    closed = await check_database_health(pool, timeout=1)
    assert not closed.healthy and closed.detail == "unavailable"


async def test_health_check_times_out_when_pool_is_exhausted(migrated_url: str) -> None:
    """With every connection busy the check fails as timed out within its timeout."""
    pool = await new_postgres_pool(migrated_url, min_size=1, max_size=1, timeout=5)
    try:
        async with pool.connection():
            status = await asyncio.wait_for(check_database_health(pool, timeout=0.3), 5)
        assert (status.healthy, status.detail) == (False, "timed out")
    finally:
        await pool.close()


async def test_readiness_with_database_check(migrated_url: str) -> None:
    """health_app readiness reports the database check, and 503 once the pool is closed."""
    pool = await new_postgres_pool(migrated_url, min_size=1, max_size=1)
    app = health_app({"database": lambda: check_database_health(pool, timeout=1)})
    ready = await call_app(app, path="/readyz")
    assert ready.status == 200 and ready.json()["checks"]["database"]["status"] == "pass"
    await pool.close()
    down = await call_app(app, path="/readyz")
    assert down.status == 503
    assert down.json()["checks"]["database"] == {
        "status": "fail",
        "duration_ms": down.json()["checks"]["database"]["duration_ms"],
        "detail": "unavailable",
    }
    assert (await call_app(app, path="/livez")).status == 200


def test_conninfo_and_redaction() -> None:
    """URLs are normalised for libpq and redacted for logs; bad URLs never echo themselves."""
    assert postgres_conninfo("postgresql+psycopg://u:p@h/d") == "postgresql://u:p@h/d"
    assert postgres_conninfo("postgres://u@h/d") == "postgres://u@h/d"
    assert (
        redact_url("postgresql://u:p4ss@h:5433/d?sslmode=require")
        == "postgresql://u:REDACTED@h:5433/d?sslmode=require"
    )
    assert redact_url(SecretStr("postgresql://u@h/d")) == "postgresql://u@h/d"
    with pytest.raises(ValueError, match="postgresql://") as info:
        postgres_conninfo("mysql://u:topsecret@h/d")
    assert "topsecret" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "option", "error"),
    [
        ({"min_size": -1}, "min_size", ValueError),
        ({"min_size": 1.0}, "min_size", TypeError),
        ({"max_size": 0}, "max_size", ValueError),
        ({"min_size": 3, "max_size": 2}, "max_size", ValueError),
        ({"max_waiting": -1}, "max_waiting", ValueError),
        ({"timeout": 0}, "timeout", ValueError),
        ({"max_lifetime": float("nan")}, "max_lifetime", ValueError),
        ({"max_idle": True}, "max_idle", TypeError),
        ({"connect_timeout": -1}, "connect_timeout", ValueError),
        ({"connect_timeout": "5"}, "connect_timeout", TypeError),
    ],
)
def test_pool_options_validated(kwargs: dict[str, object], option: str, error: type[Exception]) -> None:
    """A bad pool option raises TypeError (wrong type) or ValueError (wrong value) naming it."""
    with pytest.raises(error, match=option):
        create_postgres_pool("postgresql://u@h/d", **kwargs)  # type: ignore[arg-type]


def test_password_url_helper_is_accepted_by_server(migrated_url: str) -> None:
    """The test URLs really carry a password the trust server ignores."""
    assert PASSWORD in migrated_url
    with psycopg.connect(with_password(migrated_url), connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
