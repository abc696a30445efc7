"""Fixtures for the PostgreSQL tests: a migrated database per module, URLs with a password.

The local server trusts every connection, so a password in the URL is ignored by the server
but still travels through every code path that could leak it: tests look for it everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from asgi_kit.database import PostgresPool, new_postgres_pool, run_migrations
from tests.harness.postgres import server_url, with_database

PASSWORD = "pw-Zq8fXsecret"


def with_password(url: str, password: str = PASSWORD) -> str:
    """``url`` with ``password`` added (trust auth ignores it; code must never show it)."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(
        (parts.scheme, f"{user}:{password}@{host}{port}", parts.path, parts.query, parts.fragment)
    )


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def admin_execute(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(server_url(), autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def terminate_backends(url: str) -> int:
    """``pg_terminate_backend`` every connection to ``url``'s database; returns how many."""
    rows = admin_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (database_name(url),),
    )
    return len(rows)


@pytest.fixture
def fresh_database() -> Iterator[Callable[[], str]]:
    """A factory of empty databases (with a password in the URL), all dropped afterwards."""
    created: list[str] = []

    def make() -> str:
        name = f"asgi_kit_test_{uuid.uuid4().hex[:12]}"
        admin_execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return with_password(with_database(server_url(), name))

    yield make
    for name in created:
        admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def migrated_url(database_url: str) -> str:
    """This module's database with the kit's schema, as a URL holding a password."""
    url = with_password(database_url)
    run_migrations(url)
    return url


@pytest.fixture
async def pool(migrated_url: str) -> AsyncIterator[PostgresPool]:
    pool = await new_postgres_pool(migrated_url, min_size=1, max_size=5, timeout=5.0)
    try:
        yield pool
    finally:
        await pool.close()


def new_org_id() -> str:
    return f"org-{uuid.uuid4().hex[:10]}"
