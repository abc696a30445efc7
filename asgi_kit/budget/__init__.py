"""Monthly token budgets per organization: ``BudgetMiddleware``, the ``BudgetStore`` protocol
and an in-memory store. No optional dependency; the PostgreSQL store is
``asgi_kit.database.PostgresUsageStore``."""

from asgi_kit.budget.middleware import BudgetMiddleware
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
    "BudgetStoreUnavailableError",
    "InMemoryBudgetStore",
    "month_start",
    "next_month_start",
]
