"""The health endpoints: liveness and readiness as one small ASGI app.

Mount it beside the service (``Mount("/health", health_app(...))`` in Starlette, a
``asgi()`` route handler in Litestar) or route to it in front of the stack, outside auth, so
orchestrators can probe it without credentials. It is an app, not a middleware: it answers
every request it gets.

* ``GET /livez`` answers ``200 {"status": "pass"}`` without touching any dependency: a
  database outage must not make the orchestrator restart healthy processes.
* ``GET /readyz`` runs every check concurrently, each under ``timeout`` seconds, and answers
  ``200`` JSON when all pass, otherwise a ``503`` ``application/problem+json`` listing each
  check's outcome. A check's exception text is never shown (it may hold a DSN); it is logged
  by type only on the ``asgi_kit.health`` logger.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from asgi_kit._asgi.lifespan import answer_lifespan
from asgi_kit._asgi.options import check_callable, check_number, check_str
from asgi_kit._asgi.paths import route_path
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.errors import METHOD_NOT_ALLOWED, NOT_FOUND, SERVICE_UNAVAILABLE, write_problem_details
from asgi_kit.health.status import CheckResult, HealthCheck, HealthStatus

logger = logging.getLogger("asgi_kit.health")

_JSON_HEADERS: Final = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_LIVE_BODY: Final = b'{"status":"pass"}'
_NOT_READY: Final = SERVICE_UNAVAILABLE.with_detail("One or more readiness checks failed")


async def run_check(name: str, check: HealthCheck, timeout: float) -> CheckResult:
    """Run one check under ``timeout`` and turn whatever it did into a :class:`CheckResult`."""
    started = time.perf_counter()
    detail: str | None
    try:
        async with asyncio.timeout(timeout):
            outcome = await check()
    except TimeoutError:
        healthy, detail = False, "timed out"
    except Exception as exc:
        # Type only: a driver's message may carry a host name or a DSN.
        logger.warning("health check %r failed: %s", name, type(exc).__name__)
        healthy, detail = False, "check failed"
    else:
        if isinstance(outcome, HealthStatus):
            healthy, detail = outcome.healthy, outcome.detail
        else:
            healthy, detail = outcome is not False, None
    duration_ms = (time.perf_counter() - started) * 1000.0
    return CheckResult(
        name=name, status="pass" if healthy else "fail", duration_ms=duration_ms, detail=detail
    )


def health_app(
    checks: Mapping[str, HealthCheck] | None = None,
    *,
    timeout: float = 2.0,
    liveness_path: str = "/livez",
    readiness_path: str = "/readyz",
) -> ASGIApp:
    """Build the health app.

    Args:
        checks: readiness checks by name, e.g. ``{"database": lambda: check_database_health(pool)}``.
        timeout: seconds each readiness check may take before it counts as failed.
        liveness_path: path of the liveness probe (relative to ``root_path``).
        readiness_path: path of the readiness probe (relative to ``root_path``).

    Raises:
        TypeError: an option has the wrong type (a check that is not callable, a path that is
            not a ``str``).
        ValueError: ``timeout`` is not a positive number, or a path is not absolute or both are equal.
    """
    named = dict(checks or {})
    for name, check in named.items():
        check_str("checks keys", name)
        check_callable(f"checks[{name!r}]", check)
    limit = check_number("timeout", timeout, exclusive_minimum=0)
    for option, path in (("liveness_path", liveness_path), ("readiness_path", readiness_path)):
        if not check_str(option, path).startswith("/") or (len(path) > 1 and path.endswith("/")):
            raise ValueError(f"{option} must be an absolute path starting with '/' without a trailing '/'")
    if liveness_path == readiness_path:
        raise ValueError("liveness_path and readiness_path must differ")
    items = tuple(named.items())

    async def readiness(scope: Scope, send: Send) -> None:
        results = await asyncio.gather(*(run_check(name, check, limit) for name, check in items))
        report = {result.name: result.to_dict() for result in results}
        if all(result.status == "pass" for result in results):
            await _send_json(send, scope, 200, {"status": "pass", "checks": report})
        else:
            await write_problem_details(
                send, _NOT_READY.with_extensions(checks=report), {"retry-after": "5"}, scope=scope
            )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        path = route_path(scope)
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]  # Litestar's mounts hand over "/livez/"
        if path not in (liveness_path, readiness_path):
            await write_problem_details(send, NOT_FOUND, scope=scope)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await write_problem_details(send, METHOD_NOT_ALLOWED, {"allow": "GET, HEAD"}, scope=scope)
            return
        if path == liveness_path:
            await _send_body(send, scope, 200, _LIVE_BODY)
        else:
            await readiness(scope, send)

    return app


async def _send_json(send: Send, scope: Scope, status: int, payload: Any) -> None:
    await _send_body(send, scope, status, json.dumps(payload, separators=(",", ":")).encode())


async def _send_body(send: Send, scope: Scope, status: int, body: bytes) -> None:
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode("ascii"))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})


__all__ = ["health_app", "run_check"]
