"""The PostgreSQL connection pool (psycopg 3 + psycopg_pool), its lifespan and its health check.

The pool is created closed (``AsyncConnectionPool(open=False)``: opening in a constructor is
deprecated and binds the pool to whatever loop runs) and opened explicitly, inside the app's
lifespan. Every connection is checked on checkout (``check=AsyncConnectionPool.check_connection``,
one empty round trip), so after a database restart the broken connections are dropped and
replaced and the process heals without a restart.

Nothing here logs or raises the URL: errors become :class:`DatabaseUnavailableError` with a
fixed message.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import SecretStr

from asgi_kit._asgi.options import check_int, check_number
from asgi_kit.database.errors import DatabaseUnavailableError
from asgi_kit.database.url import postgres_conninfo, redact_url
from asgi_kit.health import HealthStatus

PostgresPool: TypeAlias = "AsyncConnectionPool[psycopg.AsyncConnection[Any]]"


def create_postgres_pool(
    database_url: str | SecretStr,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 5.0,
    max_lifetime: float = 3600.0,
    max_idle: float = 600.0,
    max_waiting: int = 0,
    connect_timeout: float = 5.0,
    name: str = "asgi_kit",
    connection_kwargs: Mapping[str, Any] | None = None,
) -> PostgresPool:
    """A closed pool, configured and ready for :func:`open_postgres_pool` (in the lifespan).

    Use this when stores must be built before the event loop runs (at import or app
    construction); :func:`new_postgres_pool` creates and opens in one step.

    Args:
        database_url: ``postgresql://`` (or ``postgres://``, ``postgresql+psycopg://``) URL.
        min_size: connections kept open.
        max_size: connections at most.
        timeout: seconds a checkout waits for a free connection before ``DatabaseUnavailableError``.
        max_lifetime: seconds after which a connection is replaced.
        max_idle: seconds an idle connection above ``min_size`` is kept.
        max_waiting: requests allowed to queue for a connection (0: unbounded).
        connect_timeout: seconds a new connection may take (libpq ``connect_timeout``).
        name: the pool's name in psycopg_pool's log records.
        connection_kwargs: extra ``psycopg.AsyncConnection.connect`` keyword arguments.
    """
    conninfo = postgres_conninfo(database_url)
    check_int("min_size", min_size, minimum=0)
    check_int("max_size", max_size, minimum=max(min_size, 1))
    check_int("max_waiting", max_waiting, minimum=0)
    # Autocommit: every store method is one statement, so an implicit BEGIN and a COMMIT on
    # return would add two round trips to each (measured: 4 round trips per budget read, 2 with
    # autocommit). Multi-statement work uses ``async with conn.transaction():`` explicitly.
    kwargs: dict[str, Any] = {
        "connect_timeout": max(
            math.ceil(check_number("connect_timeout", connect_timeout, exclusive_minimum=0)), 1
        ),
        "autocommit": True,
    }
    kwargs.update(connection_kwargs or {})
    return AsyncConnectionPool(
        conninfo,
        kwargs=kwargs,
        min_size=min_size,
        max_size=max_size,
        open=False,
        check=AsyncConnectionPool.check_connection,
        name=name,
        timeout=check_number("timeout", timeout, exclusive_minimum=0),
        max_waiting=max_waiting,
        max_lifetime=check_number("max_lifetime", max_lifetime, exclusive_minimum=0),
        max_idle=check_number("max_idle", max_idle, exclusive_minimum=0),
    )


async def open_postgres_pool(pool: PostgresPool, *, timeout: float | None = None) -> None:
    """Open ``pool``, wait for ``min_size`` connections and run ``SELECT 1``.

    Raises:
        DatabaseUnavailableError: the database could not be reached in ``timeout`` seconds
            (default: the pool's checkout timeout); the pool is closed again.
    """
    wait = check_number("timeout", timeout, exclusive_minimum=0) if timeout is not None else pool.timeout
    try:
        await pool.open(wait=True, timeout=wait)
        async with pool.connection(timeout=wait) as conn:
            await conn.execute("SELECT 1")
    except (psycopg.Error, OSError):
        await pool.close()
        raise DatabaseUnavailableError("could not open the database pool") from None


async def new_postgres_pool(database_url: str | SecretStr, **options: Any) -> PostgresPool:
    """Create, open and check a pool: :func:`create_postgres_pool` then :func:`open_postgres_pool`.

    ``options`` are :func:`create_postgres_pool`'s; ``DatabaseSettings`` fields map one to one:
    ``new_postgres_pool(s.url, **s.model_dump(include={"min_size", "max_size", "timeout",
    "max_lifetime", "max_idle"}))``.
    """
    pool = create_postgres_pool(database_url, **options)
    await open_postgres_pool(pool)
    return pool


@asynccontextmanager
async def postgres_lifespan(
    pool: PostgresPool, *, timeout: float | None = None, migrate: bool = False
) -> AsyncIterator[PostgresPool]:
    """Open ``pool`` on startup and close it on shutdown: an async context manager for lifespans.

    Starlette/FastAPI: ``lifespan=lambda app: postgres_lifespan(pool)``; Litestar:
    ``lifespan=[lambda app: postgres_lifespan(pool)]``. With ``migrate=True``
    (``DatabaseSettings.migrate_on_start``) the kit's migrations run first, in a worker thread;
    concurrent replicas queue safely (see :func:`~asgi_kit.database.migrations.run_migrations`).
    """
    if migrate:
        from asgi_kit.database.migrations import run_migrations  # yoyo is loaded only when asked to migrate

        await asyncio.to_thread(run_migrations, str(pool.conninfo))
    await open_postgres_pool(pool, timeout=timeout)
    try:
        yield pool
    finally:
        await pool.close()


async def check_database_health(pool: PostgresPool, *, timeout: float = 2.0) -> HealthStatus:
    """Run ``SELECT 1`` through ``pool`` within ``timeout`` seconds; never raises.

    For ``health_app(checks={"database": lambda: check_database_health(pool)})``. The detail of
    a failure is a fixed phrase, never the driver's message.
    """
    limit = check_number("timeout", timeout, exclusive_minimum=0)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            async with pool.connection(timeout=limit) as conn:
                await conn.execute("SELECT 1")
    except (TimeoutError, PoolTimeout):
        return HealthStatus.failed("timed out", (time.perf_counter() - started) * 1000.0)
    except (psycopg.Error, OSError):
        return HealthStatus.failed("unavailable", (time.perf_counter() - started) * 1000.0)
    return HealthStatus.ok((time.perf_counter() - started) * 1000.0)


__all__ = [
    "PostgresPool",
    "check_database_health",
    "create_postgres_pool",
    "new_postgres_pool",
    "open_postgres_pool",
    "postgres_conninfo",
    "postgres_lifespan",
    "redact_url",
]
