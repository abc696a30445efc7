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

from asgi_kit.database.errors import DatabaseUnavailableError
from asgi_kit.database.url import postgres_conninfo, redact_url
from asgi_kit.health import HealthStatus

PostgresPool: TypeAlias = "AsyncConnectionPool[psycopg.AsyncConnection[Any]]"


def _positive(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive number of seconds")
    return float(value)


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
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
        raise ValueError("min_size must be a non-negative int")
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < max(min_size, 1):
        raise ValueError("max_size must be an int >= max(min_size, 1)")
    if isinstance(max_waiting, bool) or not isinstance(max_waiting, int) or max_waiting < 0:
        raise ValueError("max_waiting must be a non-negative int")
    # Autocommit: every store method is one statement, so an implicit BEGIN and a COMMIT on
    # return would add two round trips to each (measured: 4 round trips per budget read, 2 with
    # autocommit). Multi-statement work uses ``async with conn.transaction():`` explicitly.
    kwargs: dict[str, Any] = {
        "connect_timeout": max(math.ceil(_positive("connect_timeout", connect_timeout)), 1),
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
        timeout=_positive("timeout", timeout),
        max_waiting=max_waiting,
        max_lifetime=_positive("max_lifetime", max_lifetime),
        max_idle=_positive("max_idle", max_idle),
    )


async def open_postgres_pool(pool: PostgresPool, *, timeout: float | None = None) -> None:
    """Open ``pool``, wait for ``min_size`` connections and run ``SELECT 1``.

    Raises:
        DatabaseUnavailableError: the database could not be reached in ``timeout`` seconds
            (default: the pool's checkout timeout); the pool is closed again.
    """
    wait = _positive("timeout", timeout) if timeout is not None else pool.timeout
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
    limit = _positive("timeout", timeout)
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
