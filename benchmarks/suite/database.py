"""The PostgreSQL behind the ``*.postgres`` variants: migrated, seeded and pooled once per run.

The URL comes from ``asgi-kit bench --database-url`` or ``ASGI_KIT_BENCH_DATABASE_URL``, else
:data:`DEFAULT_DATABASE_URL`. A database named :data:`SCRATCH_DATABASE` is the bench's own: it
is created when missing and never dropped, so runs reuse it. Any other URL must name an
existing database the bench may write to: it runs the kit's migrations there and adds the
organization ``org-0`` and one API key per run. An unreachable server skips the variants with
a note, as a missing peer library does. psycopg is imported only here, and only when a
PostgreSQL variant runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from benchmarks.suite._apps import ORG, SkipVariant, api_key_record, load

if TYPE_CHECKING:
    import psycopg

    from asgi_kit.database import PostgresAPIKeyStore, PostgresPool, PostgresUsageStore

DATABASE_URL_ENV: Final = "ASGI_KIT_BENCH_DATABASE_URL"
SCRATCH_DATABASE: Final = "asgi_kit_bench"
DEFAULT_DATABASE_URL: Final = f"postgresql://postgres@127.0.0.1:5432/{SCRATCH_DATABASE}"
ORG_ID: Final = ORG  # the organization of the principal the budget variants pre-set
ORG_BUDGET: Final = 10**12  # never reached: the bench records no usage
_HOW: Final = f"pass --database-url or set {DATABASE_URL_ENV}"


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """The open pool and the kit's stores over it, shared by every PostgreSQL variant of a run."""

    url: str  # redacted: safe to print and to keep in the result document
    server_version: str
    pool: PostgresPool
    usage: PostgresUsageStore
    api_keys: PostgresAPIKeyStore


async def open_bench_database(url: str | None, api_key: str) -> BenchDatabase:
    """Create (scratch only) and migrate the database, open the pool and seed ``org-0`` and ``api_key``.

    Call it on the event loop the requests will run on: the pool's connections belong to it.

    Raises:
        SkipVariant: no URL, psycopg not installed, or the server not reachable.
    """
    if not url:
        raise SkipVariant(f"no PostgreSQL database given: {_HOW}")
    new_pool, usage_cls, keys_cls, redact_url, unavailable = load(
        "asgi_kit.database",
        "new_postgres_pool",
        "PostgresUsageStore",
        "PostgresAPIKeyStore",
        "redact_url",
        "DatabaseUnavailableError",
    )
    shown = redact_url(url)
    await asyncio.to_thread(_prepare, url, shown)
    try:
        pool = await new_pool(url, min_size=4, max_size=10, timeout=5.0)
    except unavailable:
        raise SkipVariant(f"PostgreSQL not reachable at {shown}: {_HOW}") from None
    try:
        usage = usage_cls(pool)
        if await usage.get_budget(ORG_ID) is None:
            await usage.create_organization(ORG_ID, ORG_ID, budget_tokens_monthly=ORG_BUDGET)
        else:  # a scratch database kept from an earlier run
            await usage.set_budget(ORG_ID, ORG_BUDGET)
        api_keys = keys_cls(pool)
        await api_keys.add(api_key_record(api_key), name="asgi-kit bench")
        async with pool.connection() as conn:
            version = conn.info.server_version
    except BaseException:
        await pool.close()
        raise
    return BenchDatabase(shown, f"{version // 10000}.{version % 10000}", pool, usage, api_keys)


def _prepare(url: str, shown: str) -> None:
    """Check the server answers (for a clear skip note), create the scratch database, migrate."""
    # Importable here: open_bench_database loaded asgi_kit.database, which needs psycopg.
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from asgi_kit.database import run_migrations
    from asgi_kit.database.postgres import postgres_conninfo

    conninfo = postgres_conninfo(url)
    scratch = conninfo_to_dict(conninfo).get("dbname") == SCRATCH_DATABASE
    # The scratch database may not exist yet: connect to the server's maintenance database.
    target = make_conninfo(conninfo, dbname="postgres") if scratch else conninfo
    try:
        with psycopg.connect(target, autocommit=True, connect_timeout=5) as conn:
            if scratch:
                _create_if_missing(conn)
    except psycopg.OperationalError as exc:
        # libpq's first line says why ("Connection refused", "role ... does not exist"); it
        # names the host and port, never the password.
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SkipVariant(f"PostgreSQL not reachable at {shown} ({reason}): {_HOW}") from None
    run_migrations(url)


def _create_if_missing(conn: psycopg.Connection[Any]) -> None:
    import psycopg

    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SCRATCH_DATABASE,)).fetchone()
    if exists:
        return
    with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # another run created it meanwhile
        conn.execute(f'CREATE DATABASE "{SCRATCH_DATABASE}"')


__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "ORG_ID",
    "SCRATCH_DATABASE",
    "BenchDatabase",
    "open_bench_database",
]
