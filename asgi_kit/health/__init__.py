"""Liveness and readiness endpoints (``health_app``) and the types health checks return.

No optional dependency: ``asgi_kit.database.check_database_health`` plugs into it.
"""

from asgi_kit.health.app import health_app, run_check
from asgi_kit.health.status import CheckOutcome, CheckResult, HealthCheck, HealthStatus

__all__ = ["CheckOutcome", "CheckResult", "HealthCheck", "HealthStatus", "health_app", "run_check"]
