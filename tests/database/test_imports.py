"""Imports: the database layer needs only the postgres extra; budget and health need none."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("blocked", ["psycopg", "psycopg_pool", "yoyo"])
def test_missing_postgres_extra_names_the_install(blocked: str) -> None:
    """Without a postgres dependency, importing asgi_kit.database names pip install 'asgi-kit[postgres]'."""
    proc = run(f"import sys; sys.modules[{blocked!r}] = None; import asgi_kit.database")
    assert proc.returncode != 0
    assert "pip install 'asgi-kit[postgres]'" in proc.stderr


def test_database_works_without_jwt_extra() -> None:
    """asgi_kit.database and its usage store import without the jwt extra."""
    proc = run(
        "import sys; sys.modules['jwt'] = None\n"
        "from asgi_kit.database import PostgresUsageStore, DatabaseUnavailableError\n"
        "from asgi_kit.budget import BudgetStoreUnavailableError\n"
        "assert issubclass(DatabaseUnavailableError, BudgetStoreUnavailableError)\n"
    )
    assert proc.returncode == 0, proc.stderr


def test_budget_and_health_need_no_optional_dependency() -> None:
    """asgi_kit.budget and asgi_kit.health import with every optional dependency missing."""
    blocked = [
        "psycopg",
        "psycopg_pool",
        "yoyo",
        "jwt",
        "pythonjsonlogger",
        "prometheus_client",
        "opentelemetry",
    ]
    proc = run(
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import asgi_kit.budget, asgi_kit.health\n"
    )
    assert proc.returncode == 0, proc.stderr


def test_database_error_is_a_credential_store_outage() -> None:
    """With the auth layer installed, DatabaseUnavailableError is what AuthMiddleware turns into 503."""
    from asgi_kit.auth.errors import CredentialStoreUnavailableError
    from asgi_kit.database import DatabaseUnavailableError

    assert issubclass(DatabaseUnavailableError, CredentialStoreUnavailableError)


def test_public_names() -> None:
    """asgi_kit.database exports exactly its public names."""
    import asgi_kit.database as database

    assert sorted(database.__all__) == sorted(
        [
            "API_KEY_EVENTS_CHANNEL",
            "APIKeyEventListener",
            "DatabaseError",
            "DatabaseUnavailableError",
            "MigrationError",
            "MigrationLockError",
            "PostgresAPIKeyStore",
            "PostgresLeaseStore",
            "PostgresPool",
            "PostgresTokenRevocationStore",
            "PostgresUsageSink",
            "PostgresUsageStore",
            "UnknownOrganizationError",
            "break_migration_lock",
            "check_database_health",
            "create_postgres_pool",
            "new_postgres_pool",
            "open_postgres_pool",
            "pending_migrations",
            "postgres_lifespan",
            "redact_url",
            "rollback_migrations",
            "run_migrations",
        ]
    )
