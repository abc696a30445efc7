"""A fresh PostgreSQL database per test module, dropped afterwards.

The server URL comes from ``ASGI_KIT_TEST_DATABASE_URL`` (default: the local server). When it
cannot be reached the tests skip with the reason, unless ``ASGI_KIT_REQUIRE_POSTGRES=1`` (CI),
where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    return os.environ.get("ASGI_KIT_TEST_DATABASE_URL", DEFAULT_URL)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _unreachable(reason: str) -> None:
    if os.environ.get("ASGI_KIT_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (ASGI_KIT_REQUIRE_POSTGRES=1) but unreachable: {reason}")
    pytest.skip(f"PostgreSQL not reachable at ASGI_KIT_TEST_DATABASE_URL: {reason}")


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """URL of a database created for this test module and dropped after it."""
    try:
        import psycopg
    except ImportError:
        _unreachable("psycopg is not installed (pip install 'asgi-kit[postgres]')")
        raise
    admin_url = server_url()
    name = f"asgi_kit_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unreachable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
