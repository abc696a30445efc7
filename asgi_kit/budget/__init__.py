"""Monthly token budgets per organization: ``BudgetMiddleware``, the ``BudgetStore`` protocol
and an in-memory store; ``BudgetReservations`` (worst cases reserved from leases of budget, the
``BudgetLeaseStore`` protocol); the usage ledger that settles upstream calls. No optional
dependency; the PostgreSQL stores are ``asgi_kit.database.PostgresUsageStore``,
``asgi_kit.database.PostgresLeaseStore`` and the ledger sink ``asgi_kit.database.PostgresUsageSink``."""

from asgi_kit.budget.ledger import (
    BudgetStoreSink,
    LedgerHealth,
    LedgerStats,
    UsageLedger,
    UsageSink,
)
from asgi_kit.budget.meter import ClientDisconnected, MeteredCall, Reservation
from asgi_kit.budget.middleware import BUDGET_REFUSAL, BUDGET_UNAVAILABLE, NO_RETRY, BudgetMiddleware
from asgi_kit.budget.record import UsageRecord
from asgi_kit.budget.reservation import (
    BudgetReservation,
    BudgetReservations,
    LeaseSnapshot,
    ReservationRefusedError,
)
from asgi_kit.budget.spool import LedgerFullError, Spool, SpoolLockedError
from asgi_kit.budget.store import (
    BudgetLease,
    BudgetLeaseStore,
    BudgetState,
    BudgetStore,
    BudgetStoreUnavailableError,
    InMemoryBudgetStore,
    InMemoryLeaseStore,
    lease_grant,
    month_start,
    next_month_start,
)

__all__ = [
    "BUDGET_REFUSAL",
    "BUDGET_UNAVAILABLE",
    "NO_RETRY",
    "BudgetLease",
    "BudgetLeaseStore",
    "BudgetMiddleware",
    "BudgetReservation",
    "BudgetReservations",
    "BudgetState",
    "BudgetStore",
    # the usage ledger
    "BudgetStoreSink",
    "BudgetStoreUnavailableError",
    "ClientDisconnected",
    "InMemoryBudgetStore",
    "InMemoryLeaseStore",
    "LeaseSnapshot",
    "LedgerFullError",
    "LedgerHealth",
    "LedgerStats",
    "MeteredCall",
    "Reservation",
    "ReservationRefusedError",
    "Spool",
    "SpoolLockedError",
    "UsageLedger",
    "UsageRecord",
    "UsageSink",
    "lease_grant",
    "month_start",
    "next_month_start",
]
