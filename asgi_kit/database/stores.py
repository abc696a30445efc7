"""PostgreSQL implementations of the kit's store protocols.

* :class:`PostgresUsageStore` implements ``asgi_kit.budget.BudgetStore``: usage rows and the
  organization's monthly counter change in one statement, so concurrent workers never lose
  an update, and the counter rolls over when the month (UTC) changes.
* :class:`PostgresAPIKeyStore` implements ``asgi_kit.auth.stores.APIKeyStore``.
* :class:`PostgresTokenRevocationStore` implements ``asgi_kit.auth.stores.TokenRevocationStore``.

Every method borrows a pooled (autocommit) connection for one statement. Failures become
:class:`~asgi_kit.database.errors.DatabaseUnavailableError` (the middleware answers 503) or
:class:`~asgi_kit.database.errors.DatabaseError`, never the driver's exception or message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg_pool import PoolTimeout

from asgi_kit.budget.store import BudgetState, month_start
from asgi_kit.database.errors import DatabaseError, DatabaseUnavailableError, UnknownOrganizationError
from asgi_kit.database.postgres import PostgresPool
from asgi_kit.models import Usage

if TYPE_CHECKING:
    from asgi_kit.auth.stores import APIKeyRecord


def _utcnow() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def borrow(pool: PostgresPool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled autocommit connection for one statement, with driver errors mapped to the kit's."""
    try:
        async with pool.connection() as conn:
            yield conn
    except PoolTimeout:
        # Every connection is busy: a 503 that tells clients to come back shortly.
        raise DatabaseUnavailableError("no database connection available in time", retry_after=1) from None
    except psycopg.errors.ForeignKeyViolation:
        raise UnknownOrganizationError("unknown organization", sqlstate="23503") from None
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise DatabaseUnavailableError("database unavailable", sqlstate=exc.sqlstate) from None
    except psycopg.Error as exc:
        raise DatabaseError("database error", sqlstate=exc.sqlstate) from None
    except OSError:
        raise DatabaseUnavailableError("database unavailable") from None


_GET_BUDGET: Final = """
SELECT budget_tokens_monthly,
       CASE WHEN budget_period_start >= %(period)s THEN tokens_used_current_month ELSE 0 END,
       GREATEST(budget_period_start, %(period)s)
FROM organizations WHERE id = %(org_id)s
"""

# One statement: the usage row and the counter change together or not at all. The UPDATE
# takes the organization's row lock, so concurrent increments queue instead of racing; an
# older budget_period_start means a new month began, and the counter restarts from this usage.
_RECORD_USAGE: Final = """
WITH recorded AS (
    INSERT INTO usage (org_id, user_id, api_key_id, model, prompt_tokens, completion_tokens, created_at)
    VALUES (%(org_id)s, %(user_id)s, %(api_key_id)s, %(model)s, %(prompt)s, %(completion)s, %(created_at)s)
    RETURNING org_id
)
UPDATE organizations AS o SET
    tokens_used_current_month = CASE WHEN o.budget_period_start >= %(period)s
        THEN o.tokens_used_current_month + %(tokens)s ELSE %(tokens)s END,
    budget_period_start = GREATEST(o.budget_period_start, %(period)s),
    updated_at = now()
FROM recorded WHERE o.id = recorded.org_id
RETURNING o.budget_tokens_monthly, o.tokens_used_current_month, o.budget_period_start
"""


class PostgresUsageStore:
    """Token budgets and usage in PostgreSQL: the ``BudgetStore`` shared by every worker and host.

    Args:
        pool: an open (or lifespan-opened) pool from ``create_postgres_pool``/``new_postgres_pool``.
        clock: the current time, UTC (tests inject one to cross a month boundary).
    """

    def __init__(self, pool: PostgresPool, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._pool = pool
        self._clock = clock

    async def get_budget(self, org_id: str) -> BudgetState | None:
        """The organization's budget this month, or ``None`` when it does not exist."""
        params = {"org_id": org_id, "period": month_start(self._clock())}
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(_GET_BUDGET, params)
            row = await cursor.fetchone()
        if row is None:
            return None
        return BudgetState(limit=row[0], used=int(row[1]), period_start=row[2])

    async def record_usage(self, usage: Usage) -> BudgetState:
        """Insert ``usage`` and add its tokens to this month's counter, atomically.

        Raises:
            UnknownOrganizationError: ``usage.org_id`` does not exist (nothing is recorded).
        """
        params = {
            "org_id": usage.org_id,
            "user_id": usage.user_id,
            "api_key_id": usage.api_key_id,
            "model": usage.model,
            "prompt": usage.prompt_tokens,
            "completion": usage.completion_tokens,
            "created_at": usage.created_at,
            "tokens": usage.prompt_tokens + usage.completion_tokens,
            "period": month_start(self._clock()),
        }
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(_RECORD_USAGE, params)
            row = await cursor.fetchone()
        if row is None:  # pragma: no cover - the foreign key refuses an unknown org first
            raise UnknownOrganizationError("unknown organization")
        return BudgetState(limit=row[0], used=int(row[1]), period_start=row[2])

    async def create_organization(
        self,
        org_id: str,
        name: str,
        *,
        display_name: str | None = None,
        budget_tokens_monthly: int | None = None,
    ) -> None:
        """Insert an organization (with its monthly budget; ``None``: unlimited)."""
        async with borrow(self._pool) as conn:
            await conn.execute(
                "INSERT INTO organizations (id, name, display_name, budget_tokens_monthly, budget_period_start)"
                " VALUES (%s, %s, %s, %s, %s)",
                (org_id, name, display_name or name, budget_tokens_monthly, month_start(self._clock())),
            )

    async def set_budget(self, org_id: str, budget_tokens_monthly: int | None) -> None:
        """Change an organization's monthly budget (``None``: unlimited)."""
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                "UPDATE organizations SET budget_tokens_monthly = %s, updated_at = now() WHERE id = %s",
                (budget_tokens_monthly, org_id),
            )
            if cursor.rowcount == 0:
                raise UnknownOrganizationError("unknown organization")

    async def usage_total(self, org_id: str, since: date | None = None) -> int:
        """Tokens in the usage rows of ``org_id`` since ``since`` (this month by default), to reconcile."""
        start = since or month_start(self._clock())
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage"
                " WHERE org_id = %s AND created_at >= %s",
                (org_id, datetime(start.year, start.month, start.day, tzinfo=UTC)),
            )
            row = await cursor.fetchone()
        return int(row[0]) if row else 0


_GET_API_KEY: Final = (
    "SELECT id, org_id, user_id, role, key_hash, scopes, pepper_version, expires_at, revoked_at"
    " FROM api_keys WHERE id = %s"
)


class PostgresAPIKeyStore:
    """API keys in PostgreSQL, looked up by public key id (never by secret): an ``APIKeyStore``.

    Needs the auth layer (the ``jwt`` extra), whose ``APIKeyRecord`` it returns.
    """

    def __init__(self, pool: PostgresPool) -> None:
        # Imported here, not at module level, so the usage store works without the jwt extra.
        from asgi_kit.auth.stores import APIKeyRecord

        self._pool = pool
        self._record = APIKeyRecord

    async def get_api_key(self, key_id: str) -> APIKeyRecord | None:
        """The record of ``key_id``, or ``None``. Raises ``DatabaseUnavailableError`` on an outage."""
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(_GET_API_KEY, (key_id,))
            row = await cursor.fetchone()
        if row is None:
            return None
        return self._record(
            key_id=row[0],
            org_id=row[1],
            user_id=row[2],
            role=row[3],
            key_hash=row[4],
            scopes=tuple(row[5]),
            pepper_version=row[6],
            expires_at=row[7],
            revoked_at=row[8],
        )

    async def touch_last_used(self, key_id: str, when: datetime) -> None:
        """Move ``last_used_at`` forward to ``when`` (never back)."""
        async with borrow(self._pool) as conn:
            await conn.execute(
                "UPDATE api_keys SET last_used_at = GREATEST(last_used_at, %s) WHERE id = %s", (when, key_id)
            )

    async def add(self, record: APIKeyRecord, *, name: str = "") -> None:
        """Insert a key record (the hash only; the secret is never stored)."""
        async with borrow(self._pool) as conn:
            await conn.execute(
                "INSERT INTO api_keys (id, org_id, user_id, role, key_hash, scopes, pepper_version,"
                " expires_at, revoked_at, name) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    record.key_id,
                    record.org_id,
                    record.user_id,
                    record.role,
                    record.key_hash,
                    list(record.scopes),
                    record.pepper_version,
                    record.expires_at,
                    record.revoked_at,
                    name,
                ),
            )

    async def revoke(self, key_id: str, when: datetime | None = None) -> bool:
        """Revoke ``key_id`` (at ``when``, now by default); ``False`` when there is no such key."""
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, %s) WHERE id = %s",
                (when or _utcnow(), key_id),
            )
            return cursor.rowcount > 0

    async def list_for_org(self, org_id: str) -> Sequence[APIKeyRecord]:
        """Every key of ``org_id``, newest first."""
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                "SELECT id FROM api_keys WHERE org_id = %s ORDER BY created_at DESC, id", (org_id,)
            )
            ids = [row[0] for row in await cursor.fetchall()]
        records = [await self.get_api_key(key_id) for key_id in ids]
        return [record for record in records if record is not None]


class PostgresTokenRevocationStore:
    """Revoked JWT ids, revoked refresh families and used refresh tokens: a ``TokenRevocationStore``.

    Keyed on ``jti`` and family id, never on the token string. :meth:`purge_expired` deletes rows
    whose token would be refused as expired anyway; run it from a periodic job.
    """

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool

    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = %(jti)s)"
                " OR EXISTS (SELECT 1 FROM refresh_token_families"
                " WHERE family_id = %(family)s AND revoked_at IS NOT NULL)",
                {"jti": jti, "family": family_id},
            )
            row = await cursor.fetchone()
        return bool(row and row[0])

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        async with borrow(self._pool) as conn:
            await conn.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (%s, %s) ON CONFLICT (jti)"
                " DO UPDATE SET expires_at = GREATEST(revoked_tokens.expires_at, EXCLUDED.expires_at)",
                (jti, expires_at),
            )

    async def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        async with borrow(self._pool) as conn:
            await conn.execute(
                "INSERT INTO refresh_token_families (family_id, revoked_at, expires_at) VALUES (%s, now(), %s)"
                " ON CONFLICT (family_id) DO UPDATE SET"
                " revoked_at = COALESCE(refresh_token_families.revoked_at, now()),"
                " expires_at = GREATEST(refresh_token_families.expires_at, EXCLUDED.expires_at)",
                (family_id, expires_at),
            )

    async def mark_refresh_used(self, jti: str, family_id: str, expires_at: datetime) -> bool:
        """``True`` the first time ``jti`` is marked, ``False`` on every later call (any process)."""
        async with borrow(self._pool) as conn:
            cursor = await conn.execute(
                "INSERT INTO used_refresh_tokens (jti, family_id, expires_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (jti) DO NOTHING RETURNING jti",
                (jti, family_id, expires_at),
            )
            return await cursor.fetchone() is not None

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete entries whose ``expires_at`` has passed; returns how many rows went."""
        when = now or _utcnow()
        deleted = 0
        async with borrow(self._pool) as conn:
            for table in ("revoked_tokens", "used_refresh_tokens", "refresh_token_families"):
                cursor = await conn.execute(f"DELETE FROM {table} WHERE expires_at < %s", (when,))  # noqa: S608
                deleted += cursor.rowcount
        return deleted


__all__ = ["PostgresAPIKeyStore", "PostgresTokenRevocationStore", "PostgresUsageStore", "borrow"]
