"""The demo gateway: an OpenAI-compatible API router built only from the kit.

``/v1/chat/completions`` (plain and streaming), ``/v1/embeddings`` and ``/v1/models`` behind
API-key authentication, RBAC and token budgets, calling the upstream through
:class:`~asgi_kit.httpclient.OpenAIClient`, each call settled by the usage ledger (batched,
spooled to ``DemoConfig.spool_dir`` while the database is away); ``/metrics``, ``/livez`` and
``/readyz`` beside them. With no database it runs on in-memory stores; with one, on
PostgreSQL, so budgets hold across ``--workers``. The bundled fake upstream is mounted at
``/upstream`` unless a real upstream URL is given.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from asgi_kit import LifespanHook, LifespanHooksMiddleware
from asgi_kit.auth import APIKeyRecord, APIKeyVerifier, AuthMiddleware, InMemoryAPIKeyStore
from asgi_kit.auth.apikey import hash_api_key, parse_api_key
from asgi_kit.budget import (
    BudgetLeaseStore,
    BudgetMiddleware,
    BudgetReservations,
    BudgetStore,
    BudgetStoreSink,
    InMemoryBudgetStore,
    InMemoryLeaseStore,
    UsageLedger,
    UsageSink,
)
from asgi_kit.demo.config import DEFAULT_MODELS, DemoConfig
from asgi_kit.demo.handlers import Gateway
from asgi_kit.demo.router import Router
from asgi_kit.demo.usage import LedgerCollector, ledger_readiness, spool_directory
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.guards import BodyLimitMiddleware, SecurityHeadersMiddleware
from asgi_kit.health import health_app
from asgi_kit.httpclient import OpenAIClient
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware, new_logger
from asgi_kit.metrics import MetricsMiddleware, metrics_app, register_metrics
from asgi_kit.ratelimit import InMemoryBackend, RateLimitBackend, RateLimitMiddleware, RedisBackend
from asgi_kit.rbac import Permission, RequirePermission
from asgi_kit.stack import Stack
from asgi_kit.testing import FakeOpenAI
from asgi_kit.types import ASGIApp

SERVICE = "asgi-kit-demo"
PUBLIC_PATHS = ("/livez", "/readyz", "/metrics", "/upstream/*")
#: Every error under /v1 (unknown paths too) is in OpenAI's shape, whichever layer answers it.
OPENAI_PATHS = ("/v1/*",)


def key_record(api_key: str, org_id: str, role: str = "org_user") -> APIKeyRecord:
    """The stored form of ``api_key``: its public id and SHA-256 hash, never the secret."""
    parsed = parse_api_key(api_key)
    return APIKeyRecord(
        key_id=parsed.key_id, org_id=org_id, user_id=None, role=role, key_hash=hash_api_key(api_key)
    )


@dataclass
class Resources:
    """What a worker opens at startup and closes at shutdown."""

    api_keys: APIKeyVerifier
    budgets: BudgetStore
    readiness: dict[str, Any]
    on_startup: list[LifespanHook]
    on_shutdown: list[LifespanHook]
    usage_sink: UsageSink
    leases: BudgetLeaseStore


def _resources(config: DemoConfig) -> Resources:
    if config.database_url is None:
        api_keys = InMemoryAPIKeyStore([key_record(config.api_key, config.org_id)] if config.api_key else [])
        budgets = InMemoryBudgetStore([(config.org_id, config.budget_tokens)])
        return Resources(
            APIKeyVerifier(api_keys),
            budgets,
            {},
            [],
            [],
            BudgetStoreSink(budgets),
            InMemoryLeaseStore(budgets),
        )
    from asgi_kit.database import (
        APIKeyEventListener,
        PostgresAPIKeyStore,
        PostgresLeaseStore,
        PostgresUsageSink,
        PostgresUsageStore,
        check_database_health,
        create_postgres_pool,
    )

    pool = create_postgres_pool(config.database_url, min_size=1, max_size=10, timeout=5.0)
    # Keys are verified from the verifier's cache; the listener drops an entry as soon as its
    # row changes in PostgreSQL (in any worker, by any tool) and flushes after any outage.
    verifier = APIKeyVerifier(PostgresAPIKeyStore(pool))
    listener = APIKeyEventListener(config.database_url, verifier, application_name=f"{SERVICE}.api_keys")

    async def open_pool() -> None:
        # Start even while the database is down: readiness fails, settled usage is spooled,
        # and the pool keeps connecting in the background (a restart during an outage).
        await pool.open(wait=False)
        if not (await check_database_health(pool, timeout=1.0)).healthy:
            logging.getLogger("asgi_kit.demo").warning("database unavailable at startup; retrying")
        await listener.start()  # connects in the background, retrying while the database is down

    async def close_pool() -> None:
        await listener.aclose()
        await verifier.drain()  # pending last-used writes need the pool
        await pool.close()

    async def database_ready() -> Any:
        return await check_database_health(pool)

    return Resources(
        verifier,
        PostgresUsageStore(pool),
        {"database": database_ready},
        [open_pool],
        [close_pool],
        PostgresUsageSink(pool),
        PostgresLeaseStore(pool),
    )


def build_gateway(config: DemoConfig, *, logger: logging.Logger | None = None) -> ASGIApp:
    """The whole gateway for one worker process."""
    resources = _resources(config)
    client = OpenAIClient(config.resolved_upstream, config.upstream_api_key or "demo-upstream", max_retries=2)

    async def open_client() -> None:
        await client.__aenter__()

    async def close_client() -> None:
        await client.aclose()

    ledger = UsageLedger(resources.usage_sink, spool_path=spool_directory(config))
    reservations = None
    if config.reserve_max_tokens:
        # Settled usage reaches the budget counter within the ledger's flush (max_delay), or its
        # spool_after when the database is slow: the lease holds it that long.
        # refusal_ttl=0: a refused call asks the store again, whose statement also returns what
        # this worker's settled calls no longer need, so the budget is spent to its end rather
        # than refused early for a second.
        reservations = BudgetReservations(
            resources.leases,
            recording_delay=1.1,
            refusal_ttl=0.0,
            default_max_tokens=config.reserve_max_tokens,
        )

    rate_limits: RateLimitBackend = (
        RedisBackend(url=config.redis_url) if config.redis_url else InMemoryBackend()
    )

    async def close_rate_limits() -> None:
        if isinstance(rate_limits, RedisBackend):
            await rate_limits.aclose()

    async def close_reservations() -> None:
        if reservations is not None:
            await reservations.aclose()

    async def start_ledger() -> None:
        spool_directory(config).mkdir(parents=True, exist_ok=True)
        await ledger.start()

    async def close_ledger() -> None:
        await ledger.close()

    gateway = Gateway(lambda: client, ledger, reservations=reservations)
    use_models = Permission.USE_MODELS
    health = health_app({**resources.readiness, "usage_ledger": ledger_readiness(ledger)}, timeout=2.0)
    metrics = register_metrics(SERVICE)
    metrics.registry.register(LedgerCollector(ledger))
    multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    exposition = metrics_app(
        None if multiprocess_dir else metrics.registry, multiprocess_dir=multiprocess_dir
    )
    router = Router(
        {
            "/v1/chat/completions": {
                "POST": RequirePermission(gateway.endpoint(gateway.chat, body=True), use_models)
            },
            "/v1/embeddings": {
                "POST": RequirePermission(gateway.endpoint(gateway.embeddings, body=True), use_models)
            },
            "/v1/models": {
                "GET": RequirePermission(gateway.endpoint(gateway.list_models, body=False), use_models)
            },
            "/livez": {"GET": health, "HEAD": health},
            "/readyz": {"GET": health, "HEAD": health},
            "/metrics": {"GET": exposition, "HEAD": exposition},
        },
        mounts=[("/upstream", FakeOpenAI(models=DEFAULT_MODELS, token_delay=config.token_delay))],
    )
    access_log = logger or new_logger(SERVICE, level=config.log_level)
    stack = (
        Stack()
        .use(
            LifespanHooksMiddleware,
            on_startup=[*resources.on_startup, open_client, start_ledger],
            # reversed at shutdown: the ledger closes (drains, flushes) while client and pool are
            # open, then the leases go back, then the pool closes
            on_shutdown=[
                close_client,
                close_rate_limits,
                *resources.on_shutdown,
                close_reservations,
                close_ledger,
            ],
        )
        .use(RequestIDMiddleware)
        .use(
            LoggingMiddleware,
            logger=access_log,
            exclude_paths=["/livez", "/readyz", "/metrics", "/upstream/*"],
        )
        .use(
            MetricsMiddleware, metrics=metrics, exclude_paths=["/metrics", "/livez", "/readyz", "/upstream/*"]
        )
        .use(ProblemDetailsMiddleware, reraise=False, openai_paths=OPENAI_PATHS)
        .use(SecurityHeadersMiddleware)
        .use(BodyLimitMiddleware, max_body_size=1 << 20)
        .use(AuthMiddleware, api_keys=resources.api_keys, exclude_paths=PUBLIC_PATHS)
        .use(
            RateLimitMiddleware,
            requests_per_minute=config.rate_limit_rpm or None,
            tokens_per_minute=config.rate_limit_tpm or None,
            backend=rate_limits,
            default_completion_tokens=config.reserve_max_tokens,
            exclude_paths=PUBLIC_PATHS,
        )
        .use(
            BudgetMiddleware,
            store=resources.budgets,
            cache_ttl=config.budget_cache_ttl,
            exclude_paths=PUBLIC_PATHS,
        )
    )
    return stack.wrap(router)


def app_from_env() -> ASGIApp:
    """The uvicorn factory each worker calls (``asgi_kit.demo.gateway:app_from_env``)."""
    # Python warnings go through logging (and so out as JSON lines), not as plain text on stderr.
    logging.captureWarnings(True)
    return build_gateway(DemoConfig.from_env())


__all__ = ["OPENAI_PATHS", "Resources", "app_from_env", "build_gateway", "key_record"]
