"""Schema migrations with yoyo-migrations, safe when several processes run them at once.

Run it before the app serves (``asgi-kit migrate``, a deploy job, or a lifespan step when
``DatabaseSettings.migrate_on_start`` is set).

Concurrency: every run first takes a PostgreSQL advisory lock on a connection of its own, so
runs queue one behind the other (the lock dies with its session: a crashed process never leaves
it behind). Inside it, yoyo's own lock is taken and the pending list is computed *inside* that
lock, so a run that waited sees what the previous one applied and applies nothing twice.

yoyo maps ``postgresql://`` to psycopg2; this module hands it ``postgresql+psycopg://`` (psycopg
3) whatever scheme the caller used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import psycopg
from pydantic import SecretStr
from yoyo import get_backend, read_migrations
from yoyo.exceptions import LockTimeout

from asgi_kit._asgi.options import check_number
from asgi_kit.database.errors import DatabaseUnavailableError, MigrationError, MigrationLockError
from asgi_kit.database.url import postgres_conninfo

#: the kit's own schema: organizations, users, api_keys, usage, token revocation
DEFAULT_MIGRATIONS_PATH: Final = Path(__file__).parent / "migrations"
#: key of the session-level advisory lock that serialises runs ("asgi_kit" in ASCII, truncated)
ADVISORY_LOCK_KEY: Final = 0x61736769_6B6974
_FIX: Final = (
    "If no migration is running, the lock is stale (a migration process died): remove it with "
    "`asgi-kit migrate --break-lock` (or `yoyo break-lock`) and run the migrations again."
)


def yoyo_url(database_url: str | SecretStr) -> str:
    """``database_url`` with the ``postgresql+psycopg://`` scheme yoyo needs for psycopg 3."""
    conninfo = postgres_conninfo(database_url)
    if conninfo.startswith("postgres://"):
        return "postgresql+psycopg://" + conninfo[len("postgres://") :]
    return "postgresql+psycopg://" + conninfo[len("postgresql://") :]


def _migrations(migrations_path: str | Path | None) -> Any:
    path = Path(migrations_path) if migrations_path is not None else DEFAULT_MIGRATIONS_PATH
    if not path.is_dir():
        raise ValueError(f"migrations_path {str(path)!r} is not a directory")
    return read_migrations(str(path))


def _guard(database_url: str | SecretStr, lock_timeout: float) -> psycopg.Connection[Any]:
    """Connect and take the advisory lock that queues concurrent runs."""
    try:
        conn = psycopg.connect(postgres_conninfo(database_url), autocommit=True, connect_timeout=10)
    except psycopg.Error:
        raise DatabaseUnavailableError("could not connect to the database to migrate it") from None
    try:
        conn.execute(f"SET lock_timeout = {int(lock_timeout * 1000)}")
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    except psycopg.errors.LockNotAvailable:
        conn.close()
        raise MigrationLockError(
            f"another process has been migrating this database for more than {lock_timeout:g} s"
        ) from None
    except psycopg.Error:
        conn.close()
        raise DatabaseUnavailableError("could not lock the database to migrate it") from None
    return conn


def run_migrations(
    database_url: str | SecretStr, migrations_path: str | Path | None = None, *, lock_timeout: float = 60.0
) -> list[str]:
    """Apply the pending migrations and return their ids, in the order applied.

    Args:
        database_url: a ``postgresql://`` URL (``postgres://`` and ``postgresql+psycopg://`` too).
        migrations_path: a directory of yoyo migrations; the kit's own schema when ``None``.
        lock_timeout: seconds to wait for another run to finish before giving up.

    Raises:
        MigrationLockError: the lock was not free within ``lock_timeout`` (the message names the fix).
        MigrationError: a migration failed (it was rolled back).
        DatabaseUnavailableError: the database could not be reached.
        TypeError: an option of the wrong type.
        ValueError: a bad URL, ``lock_timeout`` or ``migrations_path``.
    """
    check_number("lock_timeout", lock_timeout, exclusive_minimum=0)
    migrations = _migrations(migrations_path)
    url = yoyo_url(database_url)
    guard = _guard(database_url, lock_timeout)
    try:
        try:
            backend = get_backend(url)
        except psycopg.Error:
            raise DatabaseUnavailableError("could not connect to the database to migrate it") from None
        try:
            with backend.lock(timeout=lock_timeout):
                pending = backend.to_apply(migrations)
                backend.apply_migrations(pending)
                return [str(m.id) for m in pending]
        except LockTimeout as exc:
            raise MigrationLockError(f"{exc}. {_FIX}") from None
        except psycopg.Error as exc:
            detail = exc.diag.message_primary or type(exc).__name__
            raise MigrationError(f"migration failed: {detail}", sqlstate=exc.sqlstate) from None
        finally:
            backend.connection.close()
    finally:
        guard.close()


def pending_migrations(database_url: str | SecretStr, migrations_path: str | Path | None = None) -> list[str]:
    """The ids of the migrations not applied yet (read without taking the lock)."""
    migrations = _migrations(migrations_path)
    try:
        backend = get_backend(yoyo_url(database_url))
    except psycopg.Error:
        raise DatabaseUnavailableError("could not connect to the database") from None
    try:
        return [str(m.id) for m in backend.to_apply(migrations)]
    finally:
        backend.connection.close()


def break_migration_lock(database_url: str | SecretStr) -> None:
    """Remove yoyo's lock row left behind by a crashed run. Only when no migration is running."""
    try:
        backend = get_backend(yoyo_url(database_url))
    except psycopg.Error:
        raise DatabaseUnavailableError("could not connect to the database") from None
    try:
        backend.break_lock()
    finally:
        backend.connection.close()


def rollback_migrations(
    database_url: str | SecretStr, migrations_path: str | Path | None = None, *, count: int | None = None
) -> list[str]:
    """Roll back the last ``count`` applied migrations (all when ``None``); returns their ids."""
    migrations = _migrations(migrations_path)
    guard = _guard(database_url, 60.0)
    try:
        backend = get_backend(yoyo_url(database_url))
        try:
            with backend.lock():
                applied = list(backend.to_rollback(migrations))
                chosen = applied if count is None else applied[:count]
                backend.rollback_migrations(migrations.__class__(chosen))
                return [str(m.id) for m in chosen]
        finally:
            backend.connection.close()
    finally:
        guard.close()


__all__ = [
    "ADVISORY_LOCK_KEY",
    "DEFAULT_MIGRATIONS_PATH",
    "break_migration_lock",
    "pending_migrations",
    "rollback_migrations",
    "run_migrations",
    "yoyo_url",
]
