"""``BudgetMiddleware``: refuse requests from organizations that used their token budget."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

from asgi_kit._asgi.options import check_int, check_number
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.principal import get_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.budget.cache import BudgetCache
from asgi_kit.budget.store import BudgetState, BudgetStore
from asgi_kit.errors import BUDGET_EXCEEDED, SERVICE_UNAVAILABLE, OpenAIRoutes, write_problem_details

logger = logging.getLogger("asgi_kit.budget")

#: The 503 when budgets cannot be consulted (a store or lease outage), from this layer or a gateway.
BUDGET_UNAVAILABLE: Final = SERVICE_UNAVAILABLE.with_detail("The budget service is temporarily unavailable")
#: The budget refusal, for both formats: problem+json, or OpenAI's insufficient_quota error (its
#: code). Sent with :data:`NO_RETRY` (OpenAI clients would otherwise retry a refusal that lasts
#: until next month); a gateway refusing a reservation answers the same.
BUDGET_REFUSAL: Final = BUDGET_EXCEEDED.with_detail(
    "You exceeded your organization's monthly token budget. The budget resets at the start of next month."
)
NO_RETRY: Final = (b"x-should-retry", b"false")
_OUTAGE_LOG_INTERVAL: Final = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _honour_lost_cancellation() -> None:
    """Re-raise a cancellation a store swallowed.

    On Python 3.11 ``asyncio.wait_for`` drops a cancel that races with its result (CPython
    gh-86296), and psycopg_pool waits for a free connection with it: a cancelled request could
    carry on into the app. ``Task.cancelling()`` still counts the request, so honour it here.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class BudgetMiddleware:
    """Answer ``429 Budget Exceeded`` before the app runs when the caller's organization is over budget.

    Place it after ``AuthMiddleware`` (it reads the principal auth stored) and before the app or
    the proxy that spends tokens. Reads ``scope["user"]`` through ``get_principal``; a request
    without a principal or without an organization passes untouched, as do lifespan scopes and
    ``exclude_paths``. Websocket handshakes of an over-budget organization are closed with 1008.
    It only checks: the app records what it spent with ``store.record_usage(...)``.

    The 429 carries ``x-should-retry: false`` and no ``Retry-After`` (OpenAI clients would
    otherwise retry a refusal that lasts until next month); with ``retry_after_period_end`` it
    carries a ``Retry-After`` to the start of next month instead. On OpenAI-compatible routes
    (marked by ``ProblemDetailsMiddleware(openai_paths=...)``, or named by ``openai_paths``)
    its body is OpenAI's ``insufficient_quota`` error instead of problem+json, rendered by
    :func:`~asgi_kit.errors.write_problem_details` like every other error of the kit.

    When the store fails, the request gets a ``503`` problem with ``Retry-After`` (fail closed,
    the default) or passes unchecked (``fail_open=True``); either way the store's error text is
    never shown or logged, only its type.

    Args:
        app: the ASGI app to protect.
        store: the :class:`~asgi_kit.budget.store.BudgetStore` to consult.
        cache_ttl: seconds a lookup is reused in this process (0 disables the cache). This is the
            overshoot window: see :mod:`asgi_kit.budget.cache`.
        cache_max_entries: organizations the cache holds at most.
        fail_open: let requests through when the store fails, instead of a 503.
        openai_paths: ``True`` for OpenAI's error body on every route, or the paths
            (``PathFilter`` patterns such as ``"/v1/*"``) of the OpenAI-compatible routes. Not
            needed when ``ProblemDetailsMiddleware(openai_paths=...)`` marks the routes.
        retry_after_period_end: add ``Retry-After`` with the seconds until next month.
        unavailable_retry_after: ``Retry-After`` seconds of the 503 when the store gives no hint.
        exclude_paths: paths never checked.
        clock: monotonic clock for the cache (tests inject one).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: BudgetStore,
        cache_ttl: float = 1.0,
        cache_max_entries: int = 10_000,
        fail_open: bool = False,
        openai_paths: bool | Sequence[str] = False,
        retry_after_period_end: bool = False,
        unavailable_retry_after: int = 1,
        exclude_paths: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not callable(getattr(store, "get_budget", None)):
            raise TypeError("store must be a BudgetStore (an object with async get_budget(org_id))")
        check_number("cache_ttl", cache_ttl, minimum=0, maximum=60)
        check_int("cache_max_entries", cache_max_entries, minimum=1)
        check_int("unavailable_retry_after", unavailable_retry_after, minimum=0)
        self.app = app
        self._store = store
        self._cache = BudgetCache(float(cache_ttl), cache_max_entries, clock)
        self._fail_open = bool(fail_open)
        self._retry_after_period_end = bool(retry_after_period_end)
        self._unavailable_retry_after = unavailable_retry_after
        self._exclude = PathFilter(exclude_paths)
        self._clock = clock
        # outage-log throttle: shared by design (it counts failures across requests)
        self._last_outage_log = -math.inf
        self._outages_since_log = 0
        self._openai_paths = OpenAIRoutes(openai_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._exclude.matches(scope):
            await self.app(scope, receive, send)
            return
        principal = get_principal(scope)
        org_id = None if principal is None else principal.org_id
        if not org_id:
            await self.app(scope, receive, send)
            return
        try:
            # A cache hit is answered here: awaiting a lookup coroutine for it cost a frame per request.
            hit, state = self._cache.get(org_id)
            if not hit:
                state = await self._lookup(org_id)
        except Exception as exc:
            self._log_outage(exc)
            if self._fail_open:
                await self.app(scope, receive, send)
            else:
                await self._unavailable(scope, send, getattr(exc, "retry_after", None))
            return
        if state is None or not state.exceeded:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "budget exceeded"})
            return
        await self._exceeded(scope, send, state)

    def _log_outage(self, exc: Exception) -> None:
        # At most one warning a second: an outage must not turn every request into a log line.
        # Type only: a driver message may hold a host name or a DSN.
        now = self._clock()
        self._outages_since_log += 1
        if now - self._last_outage_log < _OUTAGE_LOG_INTERVAL:
            return
        logger.warning(
            "budget store unavailable (%s), %d request(s) since the last warning; failing %s",
            type(exc).__name__,
            self._outages_since_log,
            "open" if self._fail_open else "closed",
        )
        self._last_outage_log = now
        self._outages_since_log = 0

    async def _lookup(self, org_id: str) -> BudgetState | None:
        """Ask the store (the cache missed) and cache its answer."""
        state = await self._store.get_budget(org_id)
        _honour_lost_cancellation()
        if self._cache.enabled:
            self._cache.put(org_id, state)
        return state

    def clear_cache(self) -> None:
        """Forget every cached lookup (after raising a budget, say)."""
        self._cache.clear()

    async def _exceeded(self, scope: Scope, send: Send, state: BudgetState) -> None:
        headers = [NO_RETRY]
        if self._retry_after_period_end:
            seconds = max(math.ceil((state.period_end - _utcnow()).total_seconds()), 1)
            headers.append((b"retry-after", str(seconds).encode("ascii")))
        # openai_paths forces OpenAI's shape on its paths; elsewhere the route's mark decides.
        openai = self._openai_paths.matches(scope)
        await write_problem_details(
            send, BUDGET_REFUSAL, headers, scope=scope, format="openai" if openai else None
        )

    async def _unavailable(self, scope: Scope, send: Send, hint: object) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011, "reason": "service unavailable"})
            return
        seconds = self._unavailable_retry_after
        if isinstance(hint, int | float) and not isinstance(hint, bool) and math.isfinite(hint) and hint >= 0:
            seconds = max(math.ceil(hint), 1)
        openai = self._openai_paths.matches(scope)
        await write_problem_details(
            send,
            BUDGET_UNAVAILABLE,
            {"retry-after": str(seconds)},
            scope=scope,
            format="openai" if openai else None,
        )


__all__ = ["BUDGET_REFUSAL", "BUDGET_UNAVAILABLE", "NO_RETRY", "BudgetMiddleware"]
