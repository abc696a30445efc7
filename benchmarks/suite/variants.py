"""The registry of benchmark variants and of the targets the issue sets for them.

A :class:`Variant` is a small factory that builds one ASGI app. Each factory imports its layer
(or peer library) when it runs, so a variant whose layer has not landed, or whose peer is not
installed, is skipped with a note instead of breaking the suite. Bases (``bare.asgi``,
``bare.fastapi``) are what overhead is measured against; every other variant names its base.

Fairness rules the factories follow (see ``docs/benchmarks.md``):

- The kit and its peers see the same request, the same tokens and the same app. Tracing on
  both sides uses one shared SDK ``TracerProvider`` sampling every request, with a
  ``BatchSpanProcessor`` feeding a no-op exporter. Log records are formatted as JSON by
  python-json-logger on both sides and written to a sink that discards them.
- Each metrics layer gets a fresh ``CollectorRegistry`` where the peer allows it
  (starlette-exporter has no ``registry=`` option: it always uses the global registry).
- Peers are written in their fastest idiomatic form (``async def`` FastAPI dependencies, no
  threadpool hop), so the comparison never flatters the kit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from asgi_kit._asgi.types import ASGIApp
from benchmarks.suite import peers
from benchmarks.suite._apps import (
    LabelBeforeRouting,
    OtelSdkFloor,
    SkipVariant,
    bare_asgi_app,
    bare_fastapi_app,
    bare_starlette_app,
    passthroughs,
)
from benchmarks.suite.client import (
    client_call_base,
    client_span_floor,
    kit_client_span,
    kit_client_span_new_url,
    kit_client_span_no_provider,
)
from benchmarks.suite.context import BenchContext
from benchmarks.suite.kit import (
    KIT_LAYERS,
    KIT_LAYERS_TRACING_FLOOR,
    Builder,
    api_key_memory,
    api_key_postgres,
    budget,
    budget_postgres,
    guard,
    kit_alone,
    kit_on_fastapi,
    kit_on_starlette,
    kit_stack,
    tracing_no_provider,
)
from benchmarks.suite.ratelimit import ratelimit_memory, ratelimit_redis

TokenMode = Literal["cold", "cached", "api_key"]


@dataclass(frozen=True, slots=True)
class Variant:
    """One app to measure.

    Attributes:
        name: dotted id, e.g. ``kit.auth.cold``; ``--only`` matches it.
        group: ``base``, ``floor``, ``kit``, ``peer``, ``kit-stack`` or ``peer-stack``.
        base: the variant its overhead is measured against (``None`` for a base).
        description: one line for the table.
        build: the factory, sync or async (the driver awaits it on the loop the requests run
            on); raises :class:`SkipVariant` when something is not importable or reachable.
        tokens: ``cold`` (a distinct JWT per request), ``cached`` (one JWT reused) or
            ``api_key`` (the run's one API key, as ``Authorization: Bearer sk_live_...``).
        principal: pre-set ``scope["user"]`` (RBAC measured alone, without authentication).
    """

    name: str
    group: str
    base: str | None
    description: str
    build: Builder
    tokens: TokenMode = "cached"
    principal: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """A ratio the issue sets: overhead(numerator) / sum(overhead(denominators)) <= limit.

    ``limit=None`` makes it informational (reported, never pass/fail). ``kind="store_queries"``
    measures the numerator's store queries per request instead (no denominators).
    ``kind="absolute"`` bounds the numerator's overhead itself, in microseconds per request (no
    denominators), divided by ``copies`` when the numerator repeats the measured work that many
    times.
    """

    name: str
    description: str
    numerator: str
    denominators: tuple[str, ...]
    limit: float | None
    kind: str = "overhead"
    notes: tuple[str, ...] = field(default=())
    copies: int = 1


ASGI: Final = "bare.asgi"
FASTAPI: Final = "bare.fastapi"
STARLETTE: Final = "bare.starlette"
CLIENT_CALL: Final = "bare.asgi.client_call"


def _bare_asgi(ctx: BenchContext) -> ASGIApp:
    return bare_asgi_app


def _bare_fastapi(ctx: BenchContext) -> ASGIApp:
    app: ASGIApp = bare_fastapi_app()
    return app


def _bare_starlette(ctx: BenchContext) -> ASGIApp:
    app: ASGIApp = bare_starlette_app()
    return app


def _passthrough(ctx: BenchContext) -> ASGIApp:
    return passthroughs(bare_asgi_app, 1)


def _passthrough_x10(ctx: BenchContext) -> ASGIApp:
    return passthroughs(bare_asgi_app, AMPLIFY)


def _label_before_routing_fastapi_x10(ctx: BenchContext) -> ASGIApp:
    router_app = bare_fastapi_app()
    app: ASGIApp = bare_asgi_app
    for _ in range(AMPLIFY):
        app = LabelBeforeRouting(app, router_app=router_app)
    return app


def _otel_sdk_floor(ctx: BenchContext) -> ASGIApp:
    return OtelSdkFloor(bare_asgi_app, tracer_provider=ctx.tracer_provider())


def _otel_sdk_floor_semconv(ctx: BenchContext) -> ASGIApp:
    return OtelSdkFloor(bare_asgi_app, tracer_provider=ctx.tracer_provider(), semconv=True)


_KIT_ALONE: Final = {
    "request_id": "RequestIDMiddleware",
    "logging": "LoggingMiddleware (the kit's JSON logger)",
    "metrics": "MetricsMiddleware (fresh registry)",
    "tracing": "TracingMiddleware (SDK provider, every request sampled, batch processor)",
    "problem_details": "ProblemDetailsMiddleware",
}
_EXCLUDABLE: Final = ("request_id", "logging", "metrics", "tracing", "auth")
# A pass-through costs a fraction of a microsecond, below what one layer's overhead can resolve
# on a busy machine; ten nested copies make it ten times larger, and the ratio stays the same.
AMPLIFY: Final = 10

# (name, group, base, description, factory, tokens, principal pre-set)
_ROWS: Final[tuple[tuple[str, str, str | None, str, Builder, TokenMode, bool], ...]] = (
    (ASGI, "base", None, "bare pure-ASGI app", _bare_asgi, "cached", False),
    (FASTAPI, "base", None, "bare FastAPI app, one async route", _bare_fastapi, "cached", False),
    (STARLETTE, "base", None, "bare Starlette app, one async route", _bare_starlette, "cached", False),
    (
        CLIENT_CALL,
        "base",
        None,
        "bare.asgi plus what an HTTPClient call does that its span reads (parse the URL, the headers)",
        client_call_base,
        "cached",
        False,
    ),
    ("floor.passthrough", "floor", ASGI, "pure-ASGI passthrough (the floor)", _passthrough, "cached", False),
    (
        "floor.passthrough.x10",
        "floor",
        ASGI,
        "10 nested pure-ASGI passthroughs",
        _passthrough_x10,
        "cached",
        False,
    ),
    (
        "floor.otel_sdk",
        "floor",
        ASGI,
        "the OpenTelemetry SDK's minimum: start a sampled span, make it current, end it",
        _otel_sdk_floor,
        "cached",
        False,
    ),
    (
        "floor.otel_sdk.semconv",
        "floor",
        ASGI,
        "floor.otel_sdk plus the 11 attributes and the route name the kit records, as constants",
        _otel_sdk_floor_semconv,
        "cached",
        False,
    ),
    (
        "kit.routes.before_routing.fastapi.x10",
        "kit",
        "floor.passthrough.x10",
        "10 nested matches of the request against the suite's FastAPI router (a 401's label)",
        _label_before_routing_fastapi_x10,
        "cached",
        False,
    ),
    (
        "floor.otel_sdk.client",
        "floor",
        CLIENT_CALL,
        "the SDK's own charge for the client span the kit records: start it with the 4 attributes "
        "(constants), read its context, set the status code, end it",
        client_span_floor,
        "cached",
        False,
    ),
    *(
        (f"kit.{layer}", "kit", ASGI, text, kit_alone(layer), "cached", False)
        for layer, text in _KIT_ALONE.items()
    ),
    (
        "kit.auth.cold",
        "kit",
        ASGI,
        "AuthMiddleware HS256, a fresh token per request",
        kit_alone("auth"),
        "cold",
        False,
    ),
    (
        "kit.auth.cached",
        "kit",
        ASGI,
        "AuthMiddleware HS256, token reused (cache hit)",
        kit_alone("auth"),
        "cached",
        False,
    ),
    ("kit.rbac", "kit", ASGI, "RequirePermission (principal pre-set)", kit_alone("rbac"), "cached", True),
    *(
        (
            f"kit.{layer}.excluded",
            "kit",
            ASGI,
            f"{layer} on an excluded path",
            kit_alone(layer, excluded=True),
            "cached",
            False,
        )
        for layer in _EXCLUDABLE
    ),
    *(
        (
            f"kit.{layer}.excluded.x10",
            "kit",
            ASGI,
            f"10 nested {layer} layers on an excluded path",
            kit_alone(layer, excluded=True, copies=AMPLIFY),
            "cached",
            False,
        )
        for layer in _EXCLUDABLE
    ),
    (
        "kit.tracing.no_provider",
        "kit",
        ASGI,
        "TracingMiddleware with OpenTelemetry's no-op tracer provider (tracing not configured)",
        tracing_no_provider,
        "cached",
        False,
    ),
    (
        "kit.httpclient.span",
        "kit",
        CLIENT_CALL,
        "HTTPClient's CLIENT span for one request sent: url.full and server.* from the URL, "
        "the span, its traceparent into the headers, the status code, the end",
        kit_client_span,
        "cached",
        False,
    ),
    (
        "kit.httpclient.span.new_url",
        "kit",
        CLIENT_CALL,
        "kit.httpclient.span with url.full and server.* computed afresh (a URL the client has not "
        "called yet, or a call with params)",
        kit_client_span_new_url,
        "cached",
        False,
    ),
    (
        "kit.httpclient.span.no_provider.x10",
        "kit",
        CLIENT_CALL,
        "HTTPClient's span code path with no tracer provider configured (the global one unset), "
        "10 calls' worth per request",
        kit_client_span_no_provider,
        "cached",
        False,
    ),
    (
        "kit.budget",
        "kit",
        ASGI,
        "BudgetMiddleware (in-memory store, principal pre-set)",
        budget,
        "cached",
        True,
    ),
    (
        "kit.budget.postgres.cached",
        "kit",
        ASGI,
        "BudgetMiddleware (PostgresUsageStore, default 1 s lookup cache, principal pre-set)",
        budget_postgres(),
        "cached",
        True,
    ),
    (
        "kit.budget.postgres.uncached",
        "kit",
        ASGI,
        "BudgetMiddleware (PostgresUsageStore, cache_ttl=0: a query per request, principal pre-set)",
        budget_postgres(cache_ttl=0),
        "cached",
        True,
    ),
    (
        "kit.ratelimit.memory",
        "kit",
        ASGI,
        "RateLimitMiddleware, requests per minute per key (InMemoryBackend, principal pre-set)",
        ratelimit_memory,
        "cached",
        True,
    ),
    (
        "kit.ratelimit.redis",
        "kit",
        ASGI,
        "RateLimitMiddleware on RedisBackend: one EVALSHA per request, counted (principal pre-set)",
        ratelimit_redis,
        "cached",
        True,
    ),
    (
        "kit.auth.apikey.memory",
        "kit",
        ASGI,
        "AuthMiddleware, API key (InMemoryAPIKeyStore)",
        api_key_memory,
        "api_key",
        False,
    ),
    (
        "kit.auth.apikey.postgres",
        "kit",
        ASGI,
        "AuthMiddleware, API key (PostgresAPIKeyStore behind the verifier's cache, listener on)",
        api_key_postgres,
        "api_key",
        False,
    ),
    (
        "kit.guards.timeout",
        "kit",
        ASGI,
        "TimeoutMiddleware(timeout=30)",
        guard("TimeoutMiddleware", timeout=30.0),
        "cached",
        False,
    ),
    (
        "kit.guards.body_limit",
        "kit",
        ASGI,
        "BodyLimitMiddleware(max_body_size=1 MiB)",
        guard("BodyLimitMiddleware", max_body_size=1 << 20),
        "cached",
        False,
    ),
    (
        "kit.guards.security_headers",
        "kit",
        ASGI,
        "SecurityHeadersMiddleware()",
        guard("SecurityHeadersMiddleware"),
        "cached",
        False,
    ),
    (
        "kit.metrics.starlette",
        "kit",
        STARLETTE,
        "MetricsMiddleware around Starlette (fresh registry)",
        kit_on_starlette(["metrics"]),
        "cached",
        False,
    ),
    ("kit.stack.cold", "kit-stack", ASGI, "full kit stack, fresh tokens", kit_stack, "cold", False),
    ("kit.stack.cached", "kit-stack", ASGI, "full kit stack, reused token", kit_stack, "cached", False),
    (
        "kit.stack.fastapi.cold",
        "kit-stack",
        FASTAPI,
        "full kit stack around bare FastAPI, fresh tokens",
        kit_on_fastapi(KIT_LAYERS),
        "cold",
        False,
    ),
    (
        "kit.stack.fastapi.cached",
        "kit-stack",
        FASTAPI,
        "full kit stack around bare FastAPI, reused token",
        kit_on_fastapi(KIT_LAYERS),
        "cached",
        False,
    ),
    (
        "kit.stack.fastapi.cached.tracing_floor",
        "kit-stack",
        FASTAPI,
        "analysis: the same stack with TracingMiddleware swapped for floor.otel_sdk",
        kit_on_fastapi(KIT_LAYERS_TRACING_FLOOR),
        "cached",
        False,
    ),
    (
        "peer.correlation_id",
        "peer",
        ASGI,
        "asgi-correlation-id CorrelationIdMiddleware",
        peers.correlation_id,
        "cached",
        False,
    ),
    (
        "peer.json_log.pure_asgi",
        "peer",
        ASGI,
        "hand-written pure-ASGI python-json-logger log",
        peers.json_log_pure,
        "cached",
        False,
    ),
    (
        "peer.json_log.base_http",
        "peer",
        ASGI,
        "BaseHTTPMiddleware python-json-logger log",
        peers.json_log_base_http,
        "cached",
        False,
    ),
    (
        "peer.starlette_exporter",
        "peer",
        STARLETTE,
        "starlette-exporter (global registry)",
        peers.starlette_exporter,
        "cached",
        False,
    ),
    (
        "peer.instrumentator",
        "peer",
        FASTAPI,
        "prometheus-fastapi-instrumentator",
        peers.instrumentator,
        "cached",
        False,
    ),
    (
        "peer.otel_asgi",
        "peer",
        ASGI,
        "opentelemetry-instrumentation-asgi, defaults (same provider)",
        peers.otel_asgi,
        "cached",
        False,
    ),
    (
        "peer.otel_asgi.no_provider",
        "peer",
        ASGI,
        "opentelemetry-instrumentation-asgi with OpenTelemetry's no-op tracer provider",
        peers.otel_asgi_no_provider,
        "cached",
        False,
    ),
    (
        "peer.otel_asgi.server_span_only",
        "peer",
        ASGI,
        "opentelemetry-instrumentation-asgi, exclude_spans=receive,send",
        peers.otel_asgi_server_span_only,
        "cached",
        False,
    ),
    (
        "peer.pyjwt.cold",
        "peer",
        FASTAPI,
        "FastAPI dependency calling PyJWT, fresh tokens",
        peers.pyjwt,
        "cold",
        False,
    ),
    (
        "peer.pyjwt.cached",
        "peer",
        FASTAPI,
        "FastAPI dependency calling PyJWT, reused token",
        peers.pyjwt,
        "cached",
        False,
    ),
    (
        "peer.stack.cold",
        "peer-stack",
        FASTAPI,
        "typical FastAPI peer stack, fresh tokens",
        peers.stack,
        "cold",
        False,
    ),
    (
        "peer.stack.cached",
        "peer-stack",
        FASTAPI,
        "typical FastAPI peer stack, reused token",
        peers.stack,
        "cached",
        False,
    ),
)

VARIANTS: Final[tuple[Variant, ...]] = tuple(
    Variant(name, group, base, text, build, tokens, principal)
    for name, group, base, text, build, tokens, principal in _ROWS
)

KIT_STACK_LAYERS_COLD: Final = tuple(
    f"kit.{layer}" if layer != "auth" else "kit.auth.cold" for layer in KIT_LAYERS
)
KIT_STACK_LAYERS_CACHED: Final = tuple(
    f"kit.{layer}" if layer != "auth" else "kit.auth.cached" for layer in KIT_LAYERS
)
PEER_STACK_LAYERS_COLD: Final = (
    "peer.correlation_id",
    "peer.json_log.base_http",
    "peer.instrumentator",
    "peer.otel_asgi",
    "peer.pyjwt.cold",
)
PEER_STACK_LAYERS_CACHED: Final = (*PEER_STACK_LAYERS_COLD[:-1], "peer.pyjwt.cached")

TARGETS: Final[tuple[Target, ...]] = (
    Target(
        "request_id",
        "request id <= 0.3x asgi-correlation-id",
        "kit.request_id",
        ("peer.correlation_id",),
        0.3,
    ),
    Target(
        "ratelimit_memory",
        "in-memory rate limit <= 1.5x the request-id layer",
        "kit.ratelimit.memory",
        ("kit.request_id",),
        1.5,
    ),
    Target(
        "ratelimit_redis",
        "rate limit on Redis (one round trip a request, counted) vs the request-id layer",
        "kit.ratelimit.redis",
        ("kit.request_id",),
        None,
    ),
    Target(
        "access_log",
        "access log <= 0.6x a hand-written pure-ASGI python-json-logger log",
        "kit.logging",
        ("peer.json_log.pure_asgi",),
        0.6,
    ),
    Target(
        "metrics",
        "metrics <= 0.15x starlette-exporter (both around Starlette)",
        "kit.metrics.starlette",
        ("peer.starlette_exporter",),
        0.15,
    ),
    Target(
        "tracing",
        "sampled tracing <= 0.3x opentelemetry-instrumentation-asgi",
        "kit.tracing",
        ("peer.otel_asgi",),
        0.3,
    ),
    Target(
        "tracing_sdk_floor",
        "sampled tracing vs the SDK's own minimum span (the part no tracing layer can avoid)",
        "kit.tracing",
        ("floor.otel_sdk",),
        None,
    ),
    Target(
        "tracing_sdk_semconv",
        "sampled tracing vs the SDK's minimum span given the same attributes (the SDK's share)",
        "kit.tracing",
        ("floor.otel_sdk.semconv",),
        None,
    ),
    Target(
        "tracing_no_provider",
        "tracing with no provider configured <= 0.05x opentelemetry-instrumentation-asgi",
        "kit.tracing.no_provider",
        ("peer.otel_asgi.no_provider",),
        0.05,
    ),
    Target(
        "route_pre_resolution",
        "route pre-resolution <= 2 µs per request on the FastAPI app (µs; 10 nested copies / 10)",
        "kit.routes.before_routing.fastapi.x10",
        (),
        2.0,
        kind="absolute",
        copies=AMPLIFY,
    ),
    Target(
        "client_span",
        "HTTPClient's client span <= 1.3x the SDK's own charge for the same span and attributes",
        "kit.httpclient.span",
        ("floor.otel_sdk.client",),
        1.3,
    ),
    Target(
        "client_span_new_url",
        "the client span for a URL not called before vs the SDK's charge (information)",
        "kit.httpclient.span.new_url",
        ("floor.otel_sdk.client",),
        None,
    ),
    Target(
        "client_span_no_provider",
        "HTTPClient with no tracer provider configured: <= 0.5 µs per call",
        "kit.httpclient.span.no_provider.x10",
        (),
        0.5,
        kind="absolute",
        copies=10,
    ),
    Target(
        "access_log_base_http",
        "access log <= 0.1x the same log as a BaseHTTPMiddleware",
        "kit.logging",
        ("peer.json_log.base_http",),
        0.1,
    ),
    Target(
        "auth_cold",
        "cold HS256 auth <= 0.5x a PyJWT FastAPI dependency",
        "kit.auth.cold",
        ("peer.pyjwt.cold",),
        0.5,
    ),
    Target(
        "auth_cached",
        "cached auth <= 0.05x a PyJWT FastAPI dependency",
        "kit.auth.cached",
        ("peer.pyjwt.cached",),
        0.05,
    ),
    *(
        Target(
            f"excluded_{layer}",
            f"{layer} on an excluded path <= 2x the pure passthrough (10 nested copies of each)",
            f"kit.{layer}.excluded.x10",
            ("floor.passthrough.x10",),
            2.0,
        )
        for layer in ("request_id", "logging", "metrics", "tracing", "auth")
    ),
    Target(
        "apikey_postgres",
        "API key on PostgreSQL, steady state <= 1.5x the in-memory store",
        "kit.auth.apikey.postgres",
        ("kit.auth.apikey.memory",),
        1.5,
    ),
    Target(
        "kit_stack_sum_cold",
        "kit stack (cold) <= 1.05x the sum of its layers alone",
        "kit.stack.cold",
        KIT_STACK_LAYERS_COLD,
        1.05,
    ),
    Target(
        "kit_stack_sum_cached",
        "kit stack (cached) <= 1.05x the sum of its layers alone",
        "kit.stack.cached",
        KIT_STACK_LAYERS_CACHED,
        1.05,
    ),
    Target(
        "peer_stack_sum_cold",
        "peer stack (cold) vs the sum of its parts (the issue expects ~1.3x)",
        "peer.stack.cold",
        PEER_STACK_LAYERS_COLD,
        None,
    ),
    Target(
        "peer_stack_sum_cached",
        "peer stack (cached) vs the sum of its parts",
        "peer.stack.cached",
        PEER_STACK_LAYERS_CACHED,
        None,
    ),
    Target(
        "stack_cold",
        "kit stack <= 0.15x the FastAPI peer stack, every token cold",
        "kit.stack.fastapi.cold",
        ("peer.stack.cold",),
        0.15,
    ),
    Target(
        "stack_cached",
        "kit stack <= 0.10x the FastAPI peer stack, tokens reused",
        "kit.stack.fastapi.cached",
        ("peer.stack.cached",),
        0.10,
    ),
    Target(
        "stack_cached_tracing_floor",
        "analysis: the stack_cached ratio if tracing cost only the SDK's minimum span",
        "kit.stack.fastapi.cached.tracing_floor",
        ("peer.stack.cached",),
        None,
    ),
    # Counts, not ratios: reported after the ratio targets.
    Target(
        "apikey_postgres_queries",
        "API key on PostgreSQL: store queries per request in steady state (must be 0)",
        "kit.auth.apikey.postgres",
        (),
        0.0,
        kind="store_queries",
    ),
)


def get_variants(names: Sequence[str] | None = None) -> tuple[Variant, ...]:
    """Every registered variant, or those named (unknown names raise ``ValueError``)."""
    if names is None:
        return VARIANTS
    by_name = {variant.name: variant for variant in VARIANTS}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(f"unknown variant(s): {', '.join(missing)}")
    return tuple(by_name[name] for name in names)


__all__ = [
    "TARGETS",
    "VARIANTS",
    "BenchContext",
    "SkipVariant",
    "Target",
    "TokenMode",
    "Variant",
    "get_variants",
]
