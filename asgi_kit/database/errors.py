"""What the database layer raises. No DSN, password or driver message is ever in one.

::

    DatabaseError                       any database failure the kit reports (``sqlstate`` kept)
    ├── DatabaseUnavailableError        cannot reach the database or get a pooled connection in time;
    │                                   also a BudgetStoreUnavailableError and a
    │                                   CredentialStoreUnavailableError, so Budget/Auth middleware answer 503
    ├── UnknownOrganizationError        usage recorded for an organization that does not exist
    └── MigrationError                  a migration failed
        └── MigrationLockError          the migration lock is held (stale lock: the message names the fix)

The driver's exception is chained with ``from None``: it stays reachable as ``__context__`` for
a debugger but is not printed in tracebacks, because its text may name hosts and users.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgi_kit._asgi.exceptions import AsgiKitError
from asgi_kit.budget.store import BudgetStoreUnavailableError

if TYPE_CHECKING:
    from asgi_kit.auth.errors import CredentialStoreUnavailableError
else:
    try:
        from asgi_kit.auth.errors import CredentialStoreUnavailableError
    except ImportError:  # the jwt extra is missing, so no AuthMiddleware can be catching it

        class CredentialStoreUnavailableError(Exception):
            """Stand-in for ``asgi_kit.auth.errors.CredentialStoreUnavailableError``."""


class DatabaseError(AsgiKitError):
    """A database operation failed. ``sqlstate`` is the PostgreSQL error code when known."""

    def __init__(self, message: str = "database error", *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class DatabaseUnavailableError(DatabaseError, BudgetStoreUnavailableError, CredentialStoreUnavailableError):
    """The database could not be reached, or no pooled connection was free in time.

    ``retry_after`` is a hint in seconds for the 503 the middleware answers.
    """

    def __init__(
        self,
        message: str = "database unavailable",
        *,
        sqlstate: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        DatabaseError.__init__(self, message, sqlstate=sqlstate)
        self.retry_after = retry_after


class UnknownOrganizationError(DatabaseError, LookupError):
    """Usage or a budget change named an organization that does not exist."""


class MigrationError(DatabaseError):
    """A migration could not be applied."""


class MigrationLockError(MigrationError):
    """Another process holds the migration lock, or a crashed one left it behind."""


__all__ = [
    "DatabaseError",
    "DatabaseUnavailableError",
    "MigrationError",
    "MigrationLockError",
    "UnknownOrganizationError",
]
