"""Factories for the peers: the libraries each kit layer replaces, and the typical FastAPI stack.

Peers are written in their fastest idiomatic form (``async def`` dependencies, no threadpool
hop) so the comparison never flatters the kit. Each metrics peer gets a fresh
``CollectorRegistry`` where it allows one; starlette-exporter has no ``registry=`` option.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from benchmarks.suite._apps import (
    AUDIENCE,
    ISSUER,
    ROLE,
    SECRET,
    bare_asgi_app,
    bare_fastapi_app,
    bare_starlette_app,
    load,
)
from benchmarks.suite.context import BenchContext, json_formatter


def correlation_id(ctx: BenchContext) -> ASGIApp:
    (cls,) = load("asgi_correlation_id", "CorrelationIdMiddleware")
    app: ASGIApp = cls(bare_asgi_app)
    return app


def _otel_asgi(ctx: BenchContext, app: ASGIApp, *, server_span_only: bool) -> ASGIApp:
    (cls,) = load("opentelemetry.instrumentation.asgi", "OpenTelemetryMiddleware")
    (noop_meter,) = load("opentelemetry.metrics", "NoOpMeterProvider")
    options: dict[str, Any] = {"tracer_provider": ctx.tracer_provider(), "meter_provider": noop_meter()}
    if server_span_only:
        options["exclude_spans"] = ["receive", "send"]
    wrapped: ASGIApp = cls(app, **options)
    return wrapped


class PureASGIJsonAccessLog:
    """The hand-written peer: a careful pure-ASGI access log through python-json-logger."""

    def __init__(self, app: ASGIApp, *, logger: logging.Logger) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        size = 0

        async def send_recording(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            user_agent = next((v for k, v in scope["headers"] if k == b"user-agent"), b"")
            client = scope.get("client")
            self.logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                    "bytes": size,
                    "client": client[0] if client else None,
                    "user_agent": user_agent.decode("latin-1"),
                },
            )


def otel_asgi(ctx: BenchContext) -> ASGIApp:
    return _otel_asgi(ctx, bare_asgi_app, server_span_only=False)


def otel_asgi_server_span_only(ctx: BenchContext) -> ASGIApp:
    return _otel_asgi(ctx, bare_asgi_app, server_span_only=True)


def otel_asgi_no_provider(ctx: BenchContext) -> ASGIApp:
    """The peer where tracing is not configured: OpenTelemetry's no-op providers."""
    (cls,) = load("opentelemetry.instrumentation.asgi", "OpenTelemetryMiddleware")
    (noop_meter,) = load("opentelemetry.metrics", "NoOpMeterProvider")
    (noop_tracer,) = load("opentelemetry.trace", "NoOpTracerProvider")
    wrapped: ASGIApp = cls(bare_asgi_app, tracer_provider=noop_tracer(), meter_provider=noop_meter())
    return wrapped


def _base_http_log_middleware(logger: logging.Logger) -> Any:
    """The common peer: a Starlette ``BaseHTTPMiddleware`` writing a JSON access log."""
    (base_cls,) = load("starlette.middleware.base", "BaseHTTPMiddleware")

    class JsonAccessLog(base_cls):  # type: ignore[misc,valid-type]
        async def dispatch(self, request: Any, call_next: Any) -> Any:
            start = time.perf_counter()
            response = await call_next(request)
            logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                    "client": request.client.host if request.client else None,
                    "user_agent": request.headers.get("user-agent", ""),
                },
            )
            return response

    return JsonAccessLog


def json_log_pure(ctx: BenchContext) -> ASGIApp:
    json_formatter()
    return PureASGIJsonAccessLog(bare_asgi_app, logger=ctx.json_logger("peer-pure-access"))


def json_log_base_http(ctx: BenchContext) -> ASGIApp:
    json_formatter()
    cls = _base_http_log_middleware(ctx.json_logger("peer-basehttp-access"))
    app: ASGIApp = cls(bare_asgi_app)
    return app


def starlette_exporter(ctx: BenchContext) -> ASGIApp:
    # No registry= option: starlette-exporter registers on the global registry and caches its
    # metrics at class level, so every instance in a process shares them (noted in the docs).
    # It needs Starlette's router to find the route template (unmatched requests are not
    # recorded at all), hence the Starlette base: the lightest app with that router.
    (cls,) = load("starlette_exporter", "PrometheusMiddleware")
    app: ASGIApp = cls(bare_starlette_app())
    return app


def _pyjwt_dependencies(*, check_role: bool) -> list[Any]:
    """``Depends(...)`` decoding the bearer token with PyJWT per request (and checking the role)."""
    (jwt,) = load("jwt", "decode")
    invalid = load("jwt", "InvalidTokenError")[0]
    depends, http_exception, security = load("fastapi", "Depends", "HTTPException", "Security")
    bearer_cls, credentials_cls = load("fastapi.security", "HTTPBearer", "HTTPAuthorizationCredentials")
    bearer = bearer_cls()

    async def current_claims(credentials: credentials_cls = security(bearer)) -> dict[str, Any]:  # type: ignore[valid-type]
        try:
            claims: dict[str, Any] = jwt(
                credentials.credentials,  # type: ignore[attr-defined]
                SECRET,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except invalid:
            raise http_exception(status_code=401, detail="invalid token") from None
        return claims

    if not check_role:
        return [depends(current_claims)]

    async def require_org_admin(claims: dict[str, Any] = depends(current_claims)) -> dict[str, Any]:
        if claims.get("role") != ROLE:
            raise http_exception(status_code=403, detail="forbidden")
        return claims

    return [depends(require_org_admin)]


def pyjwt(ctx: BenchContext) -> ASGIApp:
    app: ASGIApp = bare_fastapi_app(_pyjwt_dependencies(check_role=False))
    return app


def instrumentator(ctx: BenchContext) -> ASGIApp:
    (instrumentator_cls,) = load("prometheus_fastapi_instrumentator", "Instrumentator")
    (registry_cls,) = load("prometheus_client", "CollectorRegistry")
    app = bare_fastapi_app()
    instrumentator_cls(registry=registry_cls()).instrument(app)
    wrapped: ASGIApp = app
    return wrapped


def stack(ctx: BenchContext) -> ASGIApp:
    """The typical FastAPI stack with the same features as the kit stack.

    Outermost first: asgi-correlation-id, a BaseHTTPMiddleware JSON access log,
    prometheus-fastapi-instrumentator, OpenTelemetry ASGI (same provider), then a PyJWT
    dependency that also checks the role (authorization). ``add_middleware`` puts the last
    added outermost, hence the reverse order below.
    """
    (correlation_cls,) = load("asgi_correlation_id", "CorrelationIdMiddleware")
    (otel_cls,) = load("opentelemetry.instrumentation.asgi", "OpenTelemetryMiddleware")
    (noop_meter,) = load("opentelemetry.metrics", "NoOpMeterProvider")
    (instrumentator_cls,) = load("prometheus_fastapi_instrumentator", "Instrumentator")
    (registry_cls,) = load("prometheus_client", "CollectorRegistry")
    json_formatter()
    app = bare_fastapi_app(_pyjwt_dependencies(check_role=True))
    app.add_middleware(otel_cls, tracer_provider=ctx.tracer_provider(), meter_provider=noop_meter())
    instrumentator_cls(registry=registry_cls()).instrument(app)
    app.add_middleware(_base_http_log_middleware(ctx.json_logger("peer-stack-access")))
    app.add_middleware(correlation_cls)
    wrapped: ASGIApp = app
    return wrapped


__all__ = [
    "PureASGIJsonAccessLog",
    "correlation_id",
    "instrumentator",
    "json_log_base_http",
    "json_log_pure",
    "otel_asgi",
    "otel_asgi_no_provider",
    "otel_asgi_server_span_only",
    "pyjwt",
    "stack",
    "starlette_exporter",
]
