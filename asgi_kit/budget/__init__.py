"""Monthly token budgets per organization: ``BudgetMiddleware``, the ``BudgetStore`` protocol
and an in-memory store, and the usage ledger that settles upstream calls. No optional
dependency; the PostgreSQL store is ``asgi_kit.database.PostgresUsageStore`` and the
PostgreSQL ledger sink ``asgi_kit.database.PostgresUsageSink``."""

from asgi_kit.budget.ledger import (
    BudgetStoreSink,
    LedgerHealth,
    LedgerStats,
    UsageLedger,
    UsageRecord,
    UsageSink,
)
from asgi_kit.budget.meter import ClientDisconnected, MeteredCall, Reservation
from asgi_kit.budget.middleware import BudgetMiddleware
from asgi_kit.budget.spool import LedgerFullError, Spool, SpoolLockedError
from asgi_kit.budget.store import (
    BudgetState,
    BudgetStore,
    BudgetStoreUnavailableError,
    InMemoryBudgetStore,
    month_start,
    next_month_start,
)

__all__ = [
    "BudgetMiddleware",
    "BudgetState",
    "BudgetStore",
    # the usage ledger
    "BudgetStoreSink",
    "BudgetStoreUnavailableError",
    "ClientDisconnected",
    "InMemoryBudgetStore",
    "LedgerFullError",
    "LedgerHealth",
    "LedgerStats",
    "MeteredCall",
    "Reservation",
    "Spool",
    "SpoolLockedError",
    "UsageLedger",
    "UsageRecord",
    "UsageSink",
    "month_start",
    "next_month_start",
]
