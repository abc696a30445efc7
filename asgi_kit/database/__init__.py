"""PostgreSQL for the kit: the pool, migrations, health check and the stores behind auth and budgets.

Needs the ``postgres`` extra (psycopg 3, psycopg_pool, yoyo-migrations).
"""

from asgi_kit._asgi.optional import require

require("psycopg", "postgres")
require("psycopg_pool", "postgres")
require("yoyo", "postgres")

from asgi_kit.database.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    MigrationError,
    MigrationLockError,
    UnknownOrganizationError,
)
from asgi_kit.database.key_events import API_KEY_EVENTS_CHANNEL, APIKeyEventListener
from asgi_kit.database.leases import PostgresLeaseStore
from asgi_kit.database.ledger import PostgresUsageSink
from asgi_kit.database.migrations import (
    break_migration_lock,
    pending_migrations,
    rollback_migrations,
    run_migrations,
)
from asgi_kit.database.postgres import (
    PostgresPool,
    check_database_health,
    create_postgres_pool,
    new_postgres_pool,
    open_postgres_pool,
    postgres_lifespan,
    redact_url,
)
from asgi_kit.database.stores import (
    PostgresAPIKeyStore,
    PostgresTokenRevocationStore,
    PostgresUsageStore,
)

__all__ = [
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
