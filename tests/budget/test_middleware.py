"""BudgetMiddleware: 429 before the app for over-budget organizations, 503 on store outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.budget import BudgetMiddleware, BudgetState, BudgetStoreUnavailableError, InMemoryBudgetStore
from asgi_kit.models import Usage
from asgi_kit.testing import MiddlewareContract, RecordingSend, StrictReceive, call_app, make_scope

OPENAI_ERROR = {
    "error": {
        "message": "You exceeded your organization's monthly token budget. "
        "The budget resets at the start of next month.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}


def principal(org_id: str | None = "org") -> Principal:
    return Principal(user_id="u1", org_id=org_id, role="org_user", auth_method="api_key", key_id="k1")


def scope_for(org_id: str | None = "org", path: str = "/v1/chat", **kwargs: Any) -> Scope:
    scope = make_scope(path, **kwargs)
    set_principal(scope, principal(org_id))
    return scope


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class AppCalls:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class FailingStore:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def get_budget(self, org_id: str) -> BudgetState | None:
        raise self.exc

    async def record_usage(self, usage: Usage) -> BudgetState:
        raise self.exc


class TestBudgetContract(MiddlewareContract):
    """The standard middleware contract, with a principal whose org is under budget."""

    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        return BudgetMiddleware(app, store=InMemoryBudgetStore([("org", 100)]), **options)

    def scope(self, path: str = "/ok", **kwargs: Any) -> Scope:
        return scope_for("org", path, **kwargs)


async def over_budget_store(limit: int = 10) -> InMemoryBudgetStore:
    store = InMemoryBudgetStore([("org", limit), ("other", None)])
    await store.record_usage(Usage(org_id="org", model="m", prompt_tokens=limit))
    return store


async def test_under_budget_reaches_app() -> None:
    """An organization with budget left reaches the app untouched."""
    app = AppCalls()
    send = await call_app(BudgetMiddleware(app, store=InMemoryBudgetStore([("org", 10)])), scope_for())
    assert (send.status, send.body, app.calls) == (200, b"ok", 1)


async def test_over_budget_is_429_problem_and_non_retryable() -> None:
    """Over budget: 429 Budget Exceeded problem, x-should-retry false, no Retry-After, app not run."""
    app = AppCalls()
    send = await call_app(BudgetMiddleware(app, store=await over_budget_store()), scope_for())
    assert send.status == 429
    assert app.calls == 0
    assert send.header("content-type") == "application/problem+json"
    assert send.header("x-should-retry") == "false"
    assert send.header("retry-after") is None
    body = send.json()
    # One message in both formats (problem+json here, OpenAI's error on OpenAI routes).
    assert (body["title"], body["status"], body["detail"], body["code"]) == (
        "Budget Exceeded",
        429,
        OPENAI_ERROR["error"]["message"],
        "insufficient_quota",
    )


async def test_retry_after_period_end() -> None:
    """retry_after_period_end adds a Retry-After pointing at the start of next month."""
    layer = BudgetMiddleware(AppCalls(), store=await over_budget_store(), retry_after_period_end=True)
    send = await call_app(layer, scope_for())
    seconds = int(send.header("retry-after") or 0)
    now = datetime.now(UTC)
    assert 1 <= seconds <= 31 * 86400
    assert (now.day >= 27) or seconds > 3600


@pytest.mark.parametrize(
    ("option", "path", "openai"),
    [
        (True, "/anything", True),
        (["/v1/*"], "/v1/chat/completions", True),
        (["/v1/*"], "/admin", False),
        (False, "/v1/chat/completions", False),
    ],
)
async def test_openai_paths(option: Any, path: str, openai: bool) -> None:
    """On OpenAI-compatible routes the 429 body is OpenAI's insufficient_quota error."""
    layer = BudgetMiddleware(AppCalls(), store=await over_budget_store(), openai_paths=option)
    send = await call_app(layer, scope_for(path=path))
    assert send.status == 429
    assert send.header("x-should-retry") == "false"
    if openai:
        assert send.header("content-type") == "application/json"
        assert send.json() == OPENAI_ERROR
        assert int(send.header("content-length") or 0) == len(send.body)
    else:
        assert send.header("content-type") == "application/problem+json"


async def test_openai_client_does_not_retry_and_sees_quota_error() -> None:
    """The official openai client raises RateLimitError with code insufficient_quota after one call."""
    import openai

    calls: list[int] = []
    inner = BudgetMiddleware(AppCalls(), store=await over_budget_store(), openai_paths=["/v1/*"])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(1)
        if scope["type"] == "http":
            set_principal(scope, principal())
        await inner(scope, receive, send)

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = openai.AsyncOpenAI(base_url="http://t/v1", api_key="k", http_client=http, max_retries=3)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    await http.aclose()
    assert info.value.code == "insufficient_quota"
    assert calls == [1]


async def test_head_openai_body_omitted() -> None:
    """A HEAD request gets the 429 headers without a body."""
    layer = BudgetMiddleware(AppCalls(), store=await over_budget_store(), openai_paths=True)
    send = await call_app(layer, scope_for(method="HEAD"))
    assert (send.status, send.body) == (429, b"")


@pytest.mark.parametrize("org_id", [None, ""])
async def test_no_org_passes(org_id: str | None) -> None:
    """A principal without an organization passes unchecked."""
    app = AppCalls()
    store = InMemoryBudgetStore()
    send = await call_app(BudgetMiddleware(app, store=store), scope_for(org_id))
    assert (send.status, store.lookups) == (200, 0)


async def test_anonymous_passes() -> None:
    """A request without a principal passes unchecked."""
    store = InMemoryBudgetStore()
    send = await call_app(BudgetMiddleware(AppCalls(), store=store), make_scope("/x"))
    assert (send.status, store.lookups) == (200, 0)


async def test_unknown_org_and_unlimited_pass() -> None:
    """An organization the store does not know, or one without a budget, passes."""
    store = await over_budget_store()
    layer = BudgetMiddleware(AppCalls(), store=store)
    assert (await call_app(layer, scope_for("nobody"))).status == 200
    assert (await call_app(layer, scope_for("other"))).status == 200


async def test_store_outage_fails_closed_without_leaking(caplog: pytest.LogCaptureFixture) -> None:
    """A store outage is a 503 problem with Retry-After; its message is in neither body nor log."""
    app = AppCalls()
    store = FailingStore(RuntimeError("postgresql://u:hunter2@db failed"))
    with caplog.at_level(logging.DEBUG):
        send = await call_app(BudgetMiddleware(app, store=store), scope_for())
    assert send.status == 503
    assert app.calls == 0
    assert send.header("retry-after") == "1"
    assert send.header("content-type") == "application/problem+json"
    assert b"hunter2" not in send.body
    assert "hunter2" not in caplog.text
    assert "RuntimeError" in caplog.text


async def test_store_retry_after_hint_is_used() -> None:
    """A store error's retry_after hint becomes the 503's Retry-After."""
    store = FailingStore(BudgetStoreUnavailableError(retry_after=2.5))
    send = await call_app(BudgetMiddleware(AppCalls(), store=store), scope_for())
    assert send.header("retry-after") == "3"


async def test_store_outage_fails_open() -> None:
    """With fail_open the request reaches the app when the store is down."""
    app = AppCalls()
    layer = BudgetMiddleware(app, store=FailingStore(BudgetStoreUnavailableError()), fail_open=True)
    send = await call_app(layer, scope_for())
    assert (send.status, app.calls) == (200, 1)


async def test_websocket_over_budget_closed() -> None:
    """An over-budget organization's websocket handshake is closed with 1008."""
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    layer = BudgetMiddleware(AppCalls(), store=await over_budget_store())
    await layer(scope_for(type="websocket"), StrictReceive(), send)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "budget exceeded"}]
    sent.clear()
    down = BudgetMiddleware(AppCalls(), store=FailingStore(RuntimeError()))
    await down(scope_for(type="websocket"), StrictReceive(), send)
    assert sent[0]["code"] == 1011


async def test_cache_reuses_lookups_within_ttl() -> None:
    """Within cache_ttl one lookup serves every request; after it, the store is asked again."""
    clock = Clock()
    store = InMemoryBudgetStore([("org", 10)])
    layer = BudgetMiddleware(AppCalls(), store=store, cache_ttl=1.0, clock=clock)
    for _ in range(5):
        assert (await call_app(layer, scope_for())).status == 200
    assert store.lookups == 1
    await store.record_usage(Usage(org_id="org", model="m", prompt_tokens=10))
    # the documented overshoot window: the cached answer still admits until the TTL passes
    assert (await call_app(layer, scope_for())).status == 200
    clock.now += 1.0
    assert (await call_app(layer, scope_for())).status == 429
    assert store.lookups == 2


async def test_cache_disabled_asks_every_time() -> None:
    """cache_ttl=0 consults the store on every request."""
    store = InMemoryBudgetStore([("org", 10)])
    layer = BudgetMiddleware(AppCalls(), store=store, cache_ttl=0)
    for _ in range(3):
        await call_app(layer, scope_for())
    assert store.lookups == 3


async def test_cache_is_bounded_and_clearable() -> None:
    """The cache never holds more than cache_max_entries organizations; clear_cache empties it."""
    store = InMemoryBudgetStore([(f"o{i}", 5) for i in range(10)])
    layer = BudgetMiddleware(AppCalls(), store=store, cache_max_entries=3)
    for i in range(10):
        await call_app(layer, scope_for(f"o{i}"))
    assert len(layer._cache) == 3
    await call_app(layer, scope_for("o9"))
    assert store.lookups == 10  # the newest entry is still cached
    await call_app(layer, scope_for("o0"))
    assert store.lookups == 11  # the oldest was evicted
    layer.clear_cache()
    assert len(layer._cache) == 0


async def test_in_memory_store_rollover() -> None:
    """The in-memory counter restarts when the month changes."""
    now = [datetime(2026, 1, 31, 23, 59, tzinfo=UTC)]
    store = InMemoryBudgetStore([("org", 10)], clock=lambda: now[0])
    state = await store.record_usage(Usage(org_id="org", model="m", prompt_tokens=6, completion_tokens=4))
    assert (state.used, state.exceeded, state.remaining) == (10, True, 0)
    now[0] = datetime(2026, 2, 1, tzinfo=UTC)
    fresh = await store.get_budget("org")
    assert fresh == BudgetState(limit=10, used=0, period_start=date(2026, 2, 1))
    assert fresh.period_end == datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(LookupError):
        await store.record_usage(Usage(org_id="nobody", model="m", prompt_tokens=1))
    with pytest.raises(ValueError, match="limit"):
        store.set_budget("org", -1)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"store": object()}, TypeError),
        ({"cache_ttl": "1"}, TypeError),
        ({"cache_ttl": -1}, ValueError),
        ({"cache_ttl": 61}, ValueError),
        ({"cache_ttl": float("inf")}, ValueError),
        ({"cache_max_entries": 0}, ValueError),
        ({"unavailable_retry_after": 1.5}, TypeError),
        ({"unavailable_retry_after": -1}, ValueError),
        ({"openai_paths": ["v1"]}, ValueError),
        ({"exclude_paths": "/health"}, TypeError),
    ],
)
def test_options_are_validated(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Bad options fail at construction."""
    options: dict[str, Any] = {"store": InMemoryBudgetStore(), **kwargs}
    with pytest.raises(error):
        BudgetMiddleware(AppCalls(), **options)


async def test_concurrent_requests_in_memory_exact() -> None:
    """100 concurrent requests that each spend a token: usage is exact and late ones get 429."""
    store = InMemoryBudgetStore([("org", 30)])

    async def spender(scope: Scope, receive: Receive, send: Send) -> None:
        await store.record_usage(Usage(org_id="org", model="m", prompt_tokens=1))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    layer = BudgetMiddleware(spender, store=store, cache_ttl=0)
    statuses: list[int | None] = []
    for _ in range(10):
        sends = [RecordingSend() for _ in range(10)]
        await asyncio.gather(*(layer(scope_for(), StrictReceive(), s) for s in sends))
        statuses.extend(s.status for s in sends)
    used = (await store.get_budget("org")).used  # type: ignore[union-attr]
    assert used == statuses.count(200) == len(store.usage)
    assert 30 <= used <= 30 + 10  # overshoot bounded by one wave of in-flight requests
    assert statuses.count(429) == 100 - used


def test_public_names() -> None:
    """asgi_kit.budget exports the budget names (the ledger's are pinned in test_ledger.py)."""
    import asgi_kit.budget as budget

    assert {
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
    } <= set(budget.__all__)
    assert all(hasattr(budget, name) and not name.startswith("_") for name in budget.__all__)


async def test_swallowed_cancellation_is_honoured() -> None:
    """A cancel a store swallowed (CPython gh-86296 in wait_for) still stops the request before the app."""
    entered = asyncio.Event()

    class SwallowingStore:
        async def get_budget(self, org_id: str) -> BudgetState | None:
            entered.set()
            with contextlib.suppress(asyncio.CancelledError):  # what the 3.11 wait_for race does
                await asyncio.sleep(30)
            return None

        async def record_usage(self, usage: Usage) -> BudgetState:
            raise NotImplementedError

    app = AppCalls()
    send = RecordingSend()
    task = asyncio.ensure_future(
        BudgetMiddleware(app, store=SwallowingStore())(scope_for(), StrictReceive(), send)
    )
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert app.calls == 0 and send.start is None


async def test_outage_warnings_are_throttled(caplog: pytest.LogCaptureFixture) -> None:
    """During an outage at most one warning a second is logged, counting the failed requests."""
    clock = Clock()
    layer = BudgetMiddleware(AppCalls(), store=FailingStore(RuntimeError()), clock=clock)
    with caplog.at_level(logging.WARNING, logger="asgi_kit.budget"):
        for _ in range(5):
            await call_app(layer, scope_for())
        clock.now += 1.0
        await call_app(layer, scope_for())
    messages = [r.getMessage() for r in caplog.records if r.name == "asgi_kit.budget"]
    assert len(messages) == 2
    assert "1 request(s)" in messages[0] and "5 request(s)" in messages[1]
