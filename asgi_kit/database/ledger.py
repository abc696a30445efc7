"""``PostgresUsageSink``: the usage ledger's batches in PostgreSQL, one statement per batch.

It implements ``asgi_kit.budget.UsageSink``. A batch is inserted in one statement (arrays
unnested): rows whose ``request_id`` is already stored are skipped (``ON CONFLICT DO
NOTHING``), and only the rows really inserted add their tokens, summed per organization, to
``organizations.tokens_used_current_month``, with the same month rollover as
:class:`~asgi_kit.database.PostgresUsageStore`. So a batch replayed from the spool, or a write
that succeeded after the ledger stopped waiting for it, never counts twice.

Records of an organization that does not exist (deleted since the call) are dropped by the
statement itself, so they cannot fail the batch again on every retry: ``dropped`` counts them
and a warning names how many. Needs migration ``0006_usage_request_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

from asgi_kit.budget.record import UsageRecord
from asgi_kit.budget.store import month_start
from asgi_kit.database.postgres import PostgresPool
from asgi_kit.database.stores import borrow

logger = logging.getLogger("asgi_kit.database")

# One statement per batch. `known` drops rows of unknown organizations (the foreign key would
# otherwise fail the whole batch, forever); `inserted` keeps only rows whose request id is new;
# the counter update adds their sums per organization, restarting it when a new month began.
# Two processes updating the same organizations in another order may deadlock: PostgreSQL
# aborts one statement, and the ledger retries its batch.
_WRITE_BATCH: Final = """
WITH batch AS (
    SELECT * FROM unnest(
        %(request_ids)s::text[], %(org_ids)s::text[], %(user_ids)s::text[], %(api_key_ids)s::text[],
        %(models)s::text[], %(prompts)s::bigint[], %(completions)s::bigint[], %(created)s::timestamptz[]
    ) AS b(request_id, org_id, user_id, api_key_id, model, prompt_tokens, completion_tokens, created_at)
),
known AS (
    SELECT b.* FROM batch AS b WHERE EXISTS (SELECT 1 FROM organizations AS o WHERE o.id = b.org_id)
),
inserted AS (
    INSERT INTO usage (request_id, org_id, user_id, api_key_id, model, prompt_tokens, completion_tokens, created_at)
    SELECT request_id, org_id, user_id, api_key_id, model, prompt_tokens, completion_tokens, created_at
    FROM known
    ON CONFLICT (request_id) DO NOTHING
    RETURNING org_id, prompt_tokens + completion_tokens AS tokens
),
sums AS (
    SELECT org_id, sum(tokens)::bigint AS tokens FROM inserted GROUP BY org_id
),
updated AS (
    UPDATE organizations AS o SET
        tokens_used_current_month = CASE WHEN o.budget_period_start >= %(period)s
            THEN o.tokens_used_current_month + s.tokens ELSE s.tokens END,
        budget_period_start = GREATEST(o.budget_period_start, %(period)s),
        updated_at = now()
    FROM sums AS s WHERE o.id = s.org_id
    RETURNING o.id
)
SELECT (SELECT count(*) FROM known), (SELECT count(*) FROM inserted), (SELECT count(*) FROM updated)
"""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PostgresUsageSink:
    """The usage ledger's sink in PostgreSQL: one statement per batch, idempotent by request id.

    Args:
        pool: the app's pool (opened in the lifespan).
        clock: the current time, UTC, for the month rollover (tests inject one).

    Counters: ``statements`` (statements sent), ``inserted`` (new rows), ``duplicates``
    (records already stored), ``dropped`` (records of unknown organizations).
    """

    def __init__(self, pool: PostgresPool, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._pool = pool
        self._clock = clock
        self.statements = 0
        self.inserted = 0
        self.duplicates = 0
        self.dropped = 0

    def __repr__(self) -> str:
        return f"PostgresUsageSink(statements={self.statements}, inserted={self.inserted})"

    async def write_batch(self, records: Sequence[UsageRecord]) -> None:
        """Store ``records`` (skipping request ids already stored) and bump the counters, atomically.

        Raises:
            DatabaseUnavailableError: the database could not be reached (nothing was written).
            DatabaseError: the statement failed (nothing was written).
        """
        if not records:
            return
        params = {
            "request_ids": [r.request_id for r in records],
            "org_ids": [r.org_id for r in records],
            "user_ids": [r.user_id for r in records],
            "api_key_ids": [r.api_key_id for r in records],
            "models": [r.model for r in records],
            "prompts": [r.prompt_tokens for r in records],
            "completions": [r.completion_tokens for r in records],
            "created": [r.created_at for r in records],
            "period": month_start(self._clock()),
        }
        async with borrow(self._pool) as conn:
            self.statements += 1
            cursor = await conn.execute(_WRITE_BATCH, params)
            row = await cursor.fetchone()
        known, inserted = (int(row[0]), int(row[1])) if row else (len(records), 0)
        dropped = len(records) - known
        self.inserted += inserted
        self.duplicates += known - inserted
        if dropped:
            self.dropped += dropped
            logger.warning("usage ledger: %d record(s) of unknown organizations dropped", dropped)


__all__ = ["PostgresUsageSink"]
