"""health_app: liveness never touches dependencies; readiness runs checks concurrently, bounded."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

from asgi_kit.health import CheckResult, HealthStatus, health_app, run_check
from asgi_kit.testing import call_app, make_scope, run_lifespan


def counting_check(outcome: object = True) -> tuple[list[int], object]:
    calls: list[int] = []

    async def check() -> object:
        calls.append(1)
        return outcome

    return calls, check


async def test_liveness_never_runs_checks() -> None:
    """GET /livez answers 200 pass without calling any readiness check."""
    calls, check = counting_check(False)
    send = await call_app(health_app({"db": check}), path="/livez")  # type: ignore[dict-item]
    assert send.status == 200
    assert send.json() == {"status": "pass"}
    assert send.header("cache-control") == "no-store"
    assert calls == []


async def test_readiness_all_pass_is_json() -> None:
    """Every check passing gives 200 JSON listing each check as pass."""

    async def explicit() -> HealthStatus:
        return HealthStatus.ok(1.5)

    async def implicit() -> None:
        return None

    send = await call_app(health_app({"a": explicit, "b": implicit}), path="/readyz")
    assert send.status == 200
    assert send.header("content-type") == "application/json"
    body = send.json()
    assert body["status"] == "pass"
    assert body["checks"]["a"]["status"] == "pass"
    assert body["checks"]["b"]["status"] == "pass"
    assert int(send.header("content-length") or 0) == len(send.body)


@pytest.mark.parametrize(
    ("outcome", "detail"),
    [(False, None), (HealthStatus.failed("replica lag"), "replica lag")],
)
async def test_readiness_failure_is_503_problem(outcome: object, detail: str | None) -> None:
    """A failing check gives a 503 problem+json naming which check failed."""

    async def bad() -> object:
        return outcome

    async def good() -> bool:
        return True

    send = await call_app(health_app({"bad": bad, "good": good}), path="/readyz")  # type: ignore[dict-item]
    assert send.status == 503
    assert send.header("content-type") == "application/problem+json"
    assert send.header("retry-after") == "5"
    body = send.json()
    assert body["status"] == 503
    assert body["checks"]["bad"]["status"] == "fail"
    assert body["checks"]["bad"].get("detail") == detail
    assert body["checks"]["good"]["status"] == "pass"


async def test_raising_check_hides_its_message(caplog: pytest.LogCaptureFixture) -> None:
    """An exception's text (a DSN, say) reaches neither the response nor the log."""
    secret = "postgresql://u:hunter2@db/x unreachable"

    async def broken() -> bool:
        raise RuntimeError(secret)

    with caplog.at_level(logging.DEBUG):
        send = await call_app(health_app({"db": broken}), path="/readyz")
    assert send.status == 503
    assert b"hunter2" not in send.body
    assert send.json()["checks"]["db"]["detail"] == "check failed"
    assert "hunter2" not in caplog.text
    assert "RuntimeError" in caplog.text


async def test_checks_run_concurrently_and_each_is_bounded() -> None:
    """Checks overlap (each waits for the other) and a hanging one fails as timed out."""
    a_started, b_started = asyncio.Event(), asyncio.Event()

    async def a() -> bool:
        a_started.set()
        await b_started.wait()
        return True

    async def b() -> bool:
        b_started.set()
        await a_started.wait()
        return True

    async def hang() -> bool:
        await asyncio.Event().wait()
        return True

    app = health_app({"a": a, "b": b, "hang": hang}, timeout=0.2)
    send = await asyncio.wait_for(call_app(app, path="/readyz"), 5)
    checks = send.json()["checks"]
    assert checks["a"]["status"] == checks["b"]["status"] == "pass"
    assert checks["hang"] == {
        "status": "fail",
        "duration_ms": checks["hang"]["duration_ms"],
        "detail": "timed out",
    }


async def test_no_checks_is_ready() -> None:
    """With no checks readiness is simply 200 pass."""
    send = await call_app(health_app(), path="/readyz")
    assert send.json() == {"status": "pass", "checks": {}}


async def test_head_has_headers_without_body() -> None:
    """HEAD gets the status and framing of GET but no body."""
    send = await call_app(health_app(), path="/livez", method="HEAD")
    assert send.status == 200
    assert send.body == b""
    assert send.header("content-length") == str(len(b'{"status":"pass"}'))


async def test_other_methods_and_paths() -> None:
    """POST gets 405 with Allow; an unknown path gets a 404 problem."""
    app = health_app()
    post = await call_app(app, path="/livez", method="POST")
    assert post.status == 405
    assert post.header("allow") == "GET, HEAD"
    missing = await call_app(app, path="/nope")
    assert missing.status == 404
    assert missing.header("content-type") == "application/problem+json"


async def test_mounted_under_root_path() -> None:
    """Paths are matched relative to root_path, so the app can be mounted."""
    send = await call_app(health_app(), make_scope("/livez", root_path="/health"))
    assert send.status == 200


async def test_trailing_slash_tolerated() -> None:
    """A mount that hands over "/livez/" (Litestar does) reaches the probe."""
    assert (await call_app(health_app(), path="/livez/")).status == 200


async def test_custom_paths() -> None:
    """liveness_path/readiness_path rename the endpoints."""
    app = health_app(liveness_path="/healthz", readiness_path="/ready")
    assert (await call_app(app, path="/healthz")).status == 200
    assert (await call_app(app, path="/ready")).status == 200
    assert (await call_app(app, path="/livez")).status == 404


async def test_lifespan_and_websocket() -> None:
    """The app completes lifespan itself and closes websockets."""
    sent = await run_lifespan(health_app())
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    messages: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        messages.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    await health_app()(make_scope("/livez", type="websocket"), receive, send)  # type: ignore[arg-type]
    assert messages == [{"type": "websocket.close", "code": 1000}]


async def test_over_http_with_httpx() -> None:
    """Through httpx.ASGITransport the endpoints answer as a client sees them."""
    transport = httpx.ASGITransport(app=health_app({"x": lambda: asyncio.sleep(0, True)}))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        live = await client.get("/livez")
        ready = await client.get("/readyz")
    assert live.json() == {"status": "pass"}
    assert ready.status_code == 200
    assert json.loads(ready.content)["checks"]["x"]["status"] == "pass"


async def test_run_check_result() -> None:
    """run_check returns a CheckResult whose dict omits an absent detail."""
    result = await run_check("x", lambda: asyncio.sleep(0, True), 1.0)
    assert isinstance(result, CheckResult)
    assert result.status == "pass"
    assert set(result.to_dict()) == {"status", "duration_ms"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": True}, TypeError),
        ({"liveness_path": 5}, TypeError),
        ({"liveness_path": "livez"}, ValueError),
        ({"readiness_path": "/readyz/"}, ValueError),
        ({"liveness_path": "/x", "readiness_path": "/x"}, ValueError),
        ({"checks": {"db": "not callable"}}, TypeError),
        ({"checks": {"": lambda: None}}, ValueError),
    ],
)
def test_options_are_validated(kwargs: dict[str, object], error: type[Exception]) -> None:
    """Bad options fail at construction with an error naming the option."""
    with pytest.raises(error):
        health_app(**kwargs)  # type: ignore[arg-type]


def test_public_names() -> None:
    """asgi_kit.health exports exactly its public names."""
    import asgi_kit.health as health

    assert sorted(health.__all__) == [
        "CheckOutcome",
        "CheckResult",
        "HealthCheck",
        "HealthStatus",
        "health_app",
        "run_check",
    ]
