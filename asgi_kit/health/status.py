"""What a health check returns, and what readiness reports for each check.

A check is any ``async`` callable taking no argument. It reports by returning a
:class:`HealthStatus` (or ``True``/``None`` for healthy, ``False`` for unhealthy) or by raising;
:func:`~asgi_kit.health.app.health_app` turns that into one :class:`CheckResult`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

CheckOutcome = Literal["pass", "fail"]


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """The outcome of one dependency check.

    ``detail`` is shown to whoever can reach the readiness endpoint: keep it a fixed, short
    phrase (``"timed out"``), never an exception message that could hold a DSN or a host name.
    """

    healthy: bool
    detail: str | None = None
    latency_ms: float | None = None

    @classmethod
    def ok(cls, latency_ms: float | None = None) -> HealthStatus:
        return cls(True, None, latency_ms)

    @classmethod
    def failed(cls, detail: str, latency_ms: float | None = None) -> HealthStatus:
        return cls(False, detail, latency_ms)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One named check as readiness reports it."""

    name: str
    status: CheckOutcome
    duration_ms: float
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "duration_ms": round(self.duration_ms, 3)}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


HealthCheck: TypeAlias = Callable[[], Awaitable["HealthStatus | bool | None"]]

__all__ = ["CheckOutcome", "CheckResult", "HealthCheck", "HealthStatus"]
