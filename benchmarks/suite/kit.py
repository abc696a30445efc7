"""Factories for the kit's own layers: alone, on an excluded path, and composed in a stack.

Each layer is built with the same options alone and inside the stack, so "the stack costs
the sum of its layers" compares like with like. Every import is lazy: a layer that has not
landed makes its variants skip.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from asgi_kit._asgi.types import ASGIApp
from benchmarks.suite._apps import (
    AUDIENCE,
    ISSUER,
    PATH,
    SECRET,
    OtelSdkFloor,
    SkipVariant,
    api_key_record,
    bare_asgi_app,
    bare_fastapi_app,
    bare_starlette_app,
    load,
)
from benchmarks.suite.context import BenchContext

# A builder that needs I/O (a database pool, rows to seed) is async: the driver awaits it on
# the loop the requests then run on, because an asyncio pool belongs to the loop that opened it.
Builder = Callable[[BenchContext], ASGIApp | Awaitable[ASGIApp]]


# Outermost first, in the order Stack.from_settings uses (docs/stack.md), RBAC innermost.
KIT_LAYERS: Final = ("request_id", "tracing", "logging", "metrics", "problem_details", "auth", "rbac")
# The same stack with TracingMiddleware swapped for the OpenTelemetry SDK's bare minimum span
# (an analysis variant: how much of the stack any SDK-based tracing layer must cost).
KIT_LAYERS_TRACING_FLOOR: Final = tuple("tracing_floor" if name == "tracing" else name for name in KIT_LAYERS)


def _kit_layer(ctx: BenchContext, layer: str, *, excluded: bool = False) -> tuple[Any, dict[str, Any]]:
    """``(middleware class, options)`` for one kit layer, built as the full stack builds it."""
    exclude = {"exclude_paths": [PATH]} if excluded else {}
    if layer == "request_id":
        (cls,) = load("asgi_kit.logging", "RequestIDMiddleware")
        return cls, {**exclude}
    if layer == "logging":
        (cls,) = load("asgi_kit.logging", "LoggingMiddleware")
        return cls, {"logger": _kit_logger(ctx), **exclude}
    if layer == "metrics":
        cls, register_metrics = load("asgi_kit.metrics", "MetricsMiddleware", "register_metrics")
        (registry_cls,) = load("prometheus_client", "CollectorRegistry")
        return cls, {"metrics": register_metrics("bench", registry=registry_cls()), **exclude}
    if layer == "tracing":
        (cls,) = load("asgi_kit.tracing", "TracingMiddleware")
        return cls, {"tracer_provider": ctx.tracer_provider(), **exclude}
    if layer == "tracing_floor":
        return OtelSdkFloor, {"tracer_provider": ctx.tracer_provider()}
    if layer == "problem_details":
        (cls,) = load("asgi_kit.errors", "ProblemDetailsMiddleware")
        return cls, {}
    if layer == "auth":
        cls, manager_cls, config_cls = load("asgi_kit.auth", "AuthMiddleware", "JWTManager", "JWTConfig")
        manager = manager_cls(config_cls(algorithm="HS256", secret=SECRET, issuer=ISSUER, audience=AUDIENCE))
        return cls, {"jwt": manager, **exclude}
    if layer == "rbac":
        cls, permission = load("asgi_kit.rbac", "RequirePermission", "Permission")
        return cls, {"permission": permission.VIEW_ORG_USAGE}
    raise ValueError(f"unknown kit layer {layer!r}")


def _kit_logger(ctx: BenchContext) -> logging.Logger:
    """The kit's own JSON logger (``new_logger``) writing to the sink."""
    (new_logger,) = load("asgi_kit.logging", "new_logger")
    logger: logging.Logger = new_logger("bench", stream=ctx.sink, logger_name="asgi_kit.bench.kit-access")
    return logger


def wrap_kit(ctx: BenchContext, app: ASGIApp, layers: Sequence[str]) -> ASGIApp:
    """Wrap ``app`` in ``layers`` (outermost first) with :class:`asgi_kit.Stack`."""
    from asgi_kit.stack import Middleware, Stack

    specs = [_kit_layer(ctx, layer) for layer in layers]
    return Stack([Middleware(cls, **options) for cls, options in specs]).wrap(app)


def kit_alone(layer: str, *, excluded: bool = False, copies: int = 1) -> Builder:
    """One kit layer around the bare app; ``copies`` nests that many (to amplify a tiny cost)."""

    def build(ctx: BenchContext) -> ASGIApp:
        app: ASGIApp = bare_asgi_app
        for _ in range(copies):
            cls, options = _kit_layer(ctx, layer, excluded=excluded)
            app = cls(app, **options)
        return app

    return build


def kit_on_starlette(layers: Sequence[str]) -> Builder:
    def build(ctx: BenchContext) -> ASGIApp:
        return wrap_kit(ctx, bare_starlette_app(), layers)

    return build


def kit_on_fastapi(layers: Sequence[str]) -> Builder:
    def build(ctx: BenchContext) -> ASGIApp:
        return wrap_kit(ctx, bare_fastapi_app(), layers)

    return build


def tracing_no_provider(ctx: BenchContext) -> ASGIApp:
    """TracingMiddleware where tracing is not configured (OpenTelemetry's no-op provider)."""
    cls, noop_tracer = (
        load("asgi_kit.tracing", "TracingMiddleware"),
        load("opentelemetry.trace", "NoOpTracerProvider"),
    )
    app: ASGIApp = cls[0](bare_asgi_app, tracer_provider=noop_tracer[0]())
    return app


def kit_stack(ctx: BenchContext) -> ASGIApp:
    return wrap_kit(ctx, bare_asgi_app, KIT_LAYERS)


def guard(name: str, **options: Any) -> Builder:
    def build(ctx: BenchContext) -> ASGIApp:
        (cls,) = load("asgi_kit.guards", name)
        app: ASGIApp = cls(bare_asgi_app, **options)
        return app

    return build


def budget(ctx: BenchContext) -> ASGIApp:
    cls, store_cls = load("asgi_kit.budget", "BudgetMiddleware", "InMemoryBudgetStore")
    store = store_cls()
    store.set_budget("org-0", 1_000_000_000)
    app: ASGIApp = cls(bare_asgi_app, store=store)
    return app


def budget_postgres(*, cache_ttl: float | None = None) -> Builder:
    """BudgetMiddleware over ``PostgresUsageStore``: its default lookup cache, or ``cache_ttl``."""

    async def build(ctx: BenchContext) -> ASGIApp:
        (cls,) = load("asgi_kit.budget", "BudgetMiddleware")
        database = await ctx.database()
        options = {} if cache_ttl is None else {"cache_ttl": cache_ttl}
        app: ASGIApp = cls(bare_asgi_app, store=database.usage, **options)
        return app

    return build


def _api_key_auth(ctx: BenchContext, store: Any) -> tuple[ASGIApp, Any]:
    """AuthMiddleware taking API keys only, with the run's key in ``store``; returns (app, verifier)."""
    cls, verifier_cls = load("asgi_kit.auth", "AuthMiddleware", "APIKeyVerifier")
    verifier = verifier_cls(store)
    # The first request of a key starts a background last-used write; it must finish before
    # the database pool closes.
    ctx.push_async_callback(verifier.drain)
    app: ASGIApp = cls(bare_asgi_app, api_keys=verifier)
    # Store lookups on the request path (the throttled last-used write is not one of them).
    ctx.count_store_queries(app, lambda: int(verifier.store_lookups))
    return app, verifier


def api_key_memory(ctx: BenchContext) -> ASGIApp:
    (store_cls,) = load("asgi_kit.auth", "InMemoryAPIKeyStore")
    app, _ = _api_key_auth(ctx, store_cls([api_key_record(ctx.api_key())]))
    return app


async def api_key_postgres(ctx: BenchContext) -> ASGIApp:
    """The verifier's cache over ``PostgresAPIKeyStore``, fed by a listening connection, as deployed."""
    database = await ctx.database()  # it holds the run's key, added when it was opened
    (listener_cls,) = load("asgi_kit.database", "APIKeyEventListener")
    app, verifier = _api_key_auth(ctx, database.api_keys)
    listener = listener_cls(ctx.database_url, verifier, application_name="asgi_kit.bench")
    await listener.start()
    ctx.push_async_callback(listener.aclose)
    if not await listener.wait_connected(5.0):
        raise SkipVariant("the API-key event listener could not connect in 5 s")
    return app


__all__ = [
    "KIT_LAYERS",
    "KIT_LAYERS_TRACING_FLOOR",
    "Builder",
    "api_key_memory",
    "api_key_postgres",
    "budget",
    "budget_postgres",
    "guard",
    "kit_alone",
    "kit_on_fastapi",
    "kit_on_starlette",
    "kit_stack",
    "wrap_kit",
]
