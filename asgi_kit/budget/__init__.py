"""Monthly token budgets per organization: ``BudgetMiddleware``, the ``BudgetStore`` protocol
and an in-memory store; ``BudgetReservations`` (worst cases reserved from leases of budget, the
``BudgetLeaseStore`` protocol). No optional dependency; the PostgreSQL stores are
``asgi_kit.database.PostgresUsageStore`` and ``asgi_kit.database.PostgresLeaseStore``."""

from asgi_kit.budget.middleware import BudgetMiddleware
from asgi_kit.budget.reservation import (
    BudgetReservation,
    BudgetReservations,
    LeaseSnapshot,
    ReservationRefusedError,
)
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
    "BudgetLease",
    "BudgetLeaseStore",
    "BudgetMiddleware",
    "BudgetReservation",
    "BudgetReservations",
    "BudgetState",
    "BudgetStore",
    "BudgetStoreUnavailableError",
    "InMemoryBudgetStore",
    "InMemoryLeaseStore",
    "LeaseSnapshot",
    "ReservationRefusedError",
    "lease_grant",
    "month_start",
    "next_month_start",
]
