"""The docs' reserve/call/settle handler under bare ASGI, Starlette, FastAPI and Litestar (and uvicorn)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar, Response, post
from litestar import Request as LitestarRequest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asgi_kit._asgi.principal import Principal, get_principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.budget import (
    BudgetReservations,
    InMemoryBudgetStore,
    InMemoryLeaseStore,
    ReservationRefusedError,
)
from asgi_kit.errors import BUDGET_EXCEEDED, write_problem_details
from asgi_kit.models import Usage
from tests.harness.servers import serve

QUOTA = {
    "error": {
        "message": "Monthly token budget exceeded",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
FRAMEWORKS = ["asgi", "starlette", "fastapi", "litestar"]


class Upstream:
    """The model: uses the prompt's 10 tokens plus up to 50 completion tokens; ``fail`` makes it raise."""

    def __init__(self) -> None:
        self.fail = False

    async def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("upstream down")
        completion = min(payload.get("max_tokens") or 50, 50)
        return {"usage": {"prompt_tokens": 10, "completion_tokens": completion}}


def with_org(app: ASGIApp) -> ASGIApp:
    """A stand-in for AuthMiddleware: every request belongs to acme."""

    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            set_principal(scope, Principal(user_id="u", org_id="acme", role="r", auth_method="api_key"))
        await app(scope, receive, send)

    return layer


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def handle(
    reservations: BudgetReservations,
    usage: InMemoryBudgetStore,
    call_model: Upstream,
    scope: Scope,
    body: bytes,
) -> tuple[int, dict[str, Any]]:
    """The handler of the docs, framework-neutral: reserve, call, record, settle."""
    principal = get_principal(scope)
    assert principal is not None and principal.org_id is not None
    org_id = principal.org_id
    payload = json.loads(body)
    try:
        reservation = await reservations.reserve(
            org_id, reservations.worst_case(len(body), payload.get("max_tokens"))
        )
    except ReservationRefusedError:
        return 429, QUOTA
    try:
        answer = await call_model(payload)
    except BaseException:
        reservation.release()
        raise
    u = answer["usage"]
    await usage.record_usage(
        Usage(
            org_id=org_id,
            model="m",
            prompt_tokens=u["prompt_tokens"],
            completion_tokens=u["completion_tokens"],
        )
    )
    reservation.settle(u["prompt_tokens"] + u["completion_tokens"])
    return 200, answer


def build(
    framework: str, reservations: BudgetReservations, usage: InMemoryBudgetStore, call_model: Upstream
) -> Any:
    if framework == "asgi":

        async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
            status, answer = await handle(reservations, usage, call_model, scope, await read_body(receive))
            if status == 429:
                await write_problem_details(
                    send, BUDGET_EXCEEDED, [(b"x-should-retry", b"false")], scope=scope
                )
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

        return asgi_app
    if framework in ("starlette", "fastapi"):

        async def completions(request: Request) -> JSONResponse:
            status, answer = await handle(
                request.app.state.reservations, usage, call_model, request.scope, await request.body()
            )
            return JSONResponse(
                answer, status_code=status, headers={"x-should-retry": "false"} if status == 429 else None
            )

        @asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            async with reservations as app.state.reservations:
                yield

        if framework == "starlette":
            from starlette.applications import Starlette

            app: Any = Starlette(
                routes=[Route("/v1/chat/completions", completions, methods=["POST"])], lifespan=lifespan
            )
        else:
            from fastapi import FastAPI

            app = FastAPI(lifespan=lifespan)
            app.add_api_route("/v1/chat/completions", completions, methods=["POST"])
        app.state.reservations = reservations  # httpx.ASGITransport runs no lifespan
        return app

    @post("/v1/chat/completions")
    async def litestar_completions(request: LitestarRequest[Any, Any, Any]) -> Response[Any]:
        status, answer = await handle(
            request.app.state.reservations, usage, call_model, request.scope, await request.body()
        )
        return Response(
            answer, status_code=status, headers={"x-should-retry": "false"} if status == 429 else None
        )

    litestar_app = Litestar(route_handlers=[litestar_completions])
    litestar_app.state.reservations = reservations
    return litestar_app


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_reserve_call_settle_under_each_framework(framework: str) -> None:
    """Calls that fit are served and recorded, a worst case past the budget is a 429, a failed call releases."""
    usage = InMemoryBudgetStore([("acme", 1000)])
    call_model = Upstream()
    async with BudgetReservations(InMemoryLeaseStore(usage), lease_tokens=100) as reservations:
        app = with_org(build(framework, reservations, usage, call_model))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            url = "/v1/chat/completions"
            served = [await client.post(url, json={"model": "m", "max_tokens": 300}) for _ in range(3)]
            refused = await client.post(url, json={"model": "m", "max_tokens": 900})
            call_model.fail = True
            try:  # the error reaches the test client, or the framework's own 500 answers it
                failed = await client.post(url, json={"model": "m", "max_tokens": 300})
                assert failed.status_code == 500
            except ConnectionError:
                pass
        assert [r.status_code for r in served] == [200, 200, 200]
        assert refused.status_code == 429 and refused.headers["x-should-retry"] == "false"
        state = await usage.get_budget("acme")
        assert state is not None and state.used == 3 * 60
        snapshot = reservations.snapshot("acme")
        assert snapshot.reserved == 0 and snapshot.confirmed <= 3 * 60


@pytest.mark.integration
async def test_lifespan_opens_and_closes_the_reservations() -> None:
    """Under uvicorn the Starlette lifespan opens the reservations and returns the lease at shutdown."""
    usage = InMemoryBudgetStore([("acme", 1000)])
    leases = InMemoryLeaseStore(usage)
    reservations = BudgetReservations(leases)
    app = with_org(build("starlette", reservations, usage, Upstream()))
    with serve(app, "uvicorn", lifespan="on") as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
            response = await client.post("/v1/chat/completions", json={"model": "m", "max_tokens": 20})
        assert response.status_code == 200
    assert leases.leases("acme") == {}
    with pytest.raises(RuntimeError, match="closed"):
        await reservations.reserve("acme", 1)
