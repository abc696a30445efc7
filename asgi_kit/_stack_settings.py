"""Build the recommended production stack from :class:`~asgi_kit.config.KitSettings`.

The order, outermost first, is justified in ``docs/stack.md``. Only concerns whose section
has ``enabled = true`` are added; collaborators (logger, metrics, tracer provider, stores)
can be injected, otherwise they are built from the settings.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from asgi_kit._asgi.layer import Middleware
from asgi_kit._asgi.lifespan import Hook, LifespanHooksMiddleware
from asgi_kit._asgi.options import check_instance
from asgi_kit.errors import ProblemDetailsMiddleware

if TYPE_CHECKING:  # pragma: no cover - typing only
    from opentelemetry.sdk.trace import TracerProvider

    from asgi_kit.auth import APIKeyStore, TokenRevocationStore
    from asgi_kit.budget import BudgetStore
    from asgi_kit.config import KitSettings
    from asgi_kit.database import PostgresPool
    from asgi_kit.metrics import HTTPMetrics
    from asgi_kit.ratelimit import RateLimitBackend


def layers_from_settings(
    settings: KitSettings,
    *,
    logger: logging.Logger | None = None,
    metrics: HTTPMetrics | None = None,
    tracer_provider: TracerProvider | None = None,
    api_key_store: APIKeyStore | None = None,
    revocation_store: TokenRevocationStore | None = None,
    budget_store: BudgetStore | None = None,
    ratelimit_backend: RateLimitBackend | None = None,
    debug: bool = False,
) -> list[Middleware[Any]]:
    """The layers of the recommended stack for ``settings``; see :meth:`asgi_kit.Stack.from_settings`."""
    from asgi_kit.config import KitSettings

    check_instance("settings", settings, KitSettings, "a KitSettings (see asgi_kit.config.load_settings)")
    layers: list[Middleware[Any]] = []
    on_startup: list[Hook] = []
    on_shutdown: list[Hook] = []
    pool: PostgresPool | None = None
    if settings.database.enabled and (
        (settings.api_keys.enabled and api_key_store is None)
        or (settings.budget.enabled and budget_store is None)
        or (settings.jwt.enabled and revocation_store is None)
    ):
        from asgi_kit.database import create_postgres_pool, open_postgres_pool

        if settings.database.url is None:
            raise ValueError("database.url is required when database.enabled is true")
        options = settings.database.options("url", "migrate_on_start")
        pool = create_postgres_pool(settings.database.url, **options)
        db_pool = pool

        async def open_pool() -> None:
            if settings.database.migrate_on_start:
                import asyncio

                from asgi_kit.database import run_migrations

                await asyncio.to_thread(run_migrations, settings.database.url)  # type: ignore[arg-type]
            await open_postgres_pool(db_pool)

        async def close_pool() -> None:
            await db_pool.close()

        on_startup.append(open_pool)
        on_shutdown.append(close_pool)

    if settings.logging.enabled:
        from asgi_kit.logging import RequestIDMiddleware

        layers.append(Middleware(RequestIDMiddleware, header=settings.logging.request_id_header))

    if settings.tracing.enabled:
        from asgi_kit.tracing import TracingMiddleware, init_tracer

        if tracer_provider is None:
            tracer_provider = init_tracer(
                settings.service_name,
                exporter=settings.tracing.exporter,
                sample_ratio=settings.tracing.sample_ratio,
                endpoint=settings.tracing.endpoint,
            )
            on_shutdown.append(_async(tracer_provider.shutdown))
        layers.append(
            Middleware(
                TracingMiddleware,
                tracer_provider=tracer_provider,
                exclude_paths=settings.tracing.exclude_paths,
            )
        )

    if settings.logging.enabled:
        from asgi_kit.logging import LoggingMiddleware, new_logger

        access_logger = logger or new_logger(settings.service_name, level=settings.logging.level)
        layers.append(
            Middleware(
                LoggingMiddleware,
                logger=access_logger,
                exclude_paths=settings.logging.exclude_paths,
                trusted_proxies=settings.logging.trusted_proxies,
            )
        )

    if settings.metrics.enabled:
        from asgi_kit.metrics import MetricsMiddleware, register_metrics

        if metrics is None:
            metrics = register_metrics(settings.service_name)
        layers.append(
            Middleware(MetricsMiddleware, metrics=metrics, exclude_paths=settings.metrics.exclude_paths)
        )

    layers.append(Middleware(ProblemDetailsMiddleware, debug=debug))

    if settings.guards.enabled:
        from asgi_kit.guards import BodyLimitMiddleware, SecurityHeadersMiddleware, TimeoutMiddleware

        if settings.guards.security_headers:
            layers.append(Middleware(SecurityHeadersMiddleware))
        if settings.guards.timeout is not None:
            layers.append(Middleware(TimeoutMiddleware, timeout=settings.guards.timeout))
        if settings.guards.max_body_size is not None:
            layers.append(Middleware(BodyLimitMiddleware, max_body_size=settings.guards.max_body_size))

    if settings.jwt.enabled or settings.api_keys.enabled:
        auth = _auth_layer(settings, pool, api_key_store, revocation_store)
        layers.append(auth)
        verifier = auth.kwargs["api_keys"]
        if verifier is not None and pool is not None and api_key_store is None:
            # Keys cached from PostgreSQL: a change to any key row reaches this process at once.
            from asgi_kit.database import APIKeyEventListener

            listener = APIKeyEventListener(settings.database.url, verifier)  # type: ignore[arg-type]
            on_startup.append(listener.start)
            on_shutdown.append(listener.aclose)

    if settings.ratelimit.enabled:
        # Inside authentication (its subjects are the principal's key and organization) and
        # outside the budget: a refusal here costs no budget reservation.
        if not (settings.jwt.enabled or settings.api_keys.enabled):
            raise ValueError(
                "ratelimit.enabled needs jwt.enabled or api_keys.enabled: "
                "it limits the authenticated key and organization"
            )
        layers.append(_ratelimit_layer(settings, ratelimit_backend, on_shutdown))

    if settings.budget.enabled:
        from asgi_kit.budget import BudgetMiddleware

        if budget_store is None:
            if pool is None:
                raise ValueError("budget.enabled needs database.enabled (or an injected budget_store)")
            from asgi_kit.database import PostgresUsageStore

            budget_store = PostgresUsageStore(pool)
        layers.append(Middleware(BudgetMiddleware, store=budget_store, **settings.budget.options()))

    if on_startup or on_shutdown:
        layers.insert(0, Middleware(LifespanHooksMiddleware, on_startup=on_startup, on_shutdown=on_shutdown))
    return layers


def _auth_layer(
    settings: KitSettings,
    pool: PostgresPool | None,
    api_key_store: APIKeyStore | None,
    revocation_store: TokenRevocationStore | None,
) -> Middleware[Any]:
    from asgi_kit.auth import APIKeyVerifier, AuthMiddleware, JWTConfig, JWTManager, ProviderProfile

    jwt_manager = None
    if settings.jwt.enabled:
        if revocation_store is None and pool is not None:
            from asgi_kit.database import PostgresTokenRevocationStore

            revocation_store = PostgresTokenRevocationStore(pool)
        provider = settings.jwt.provider
        jwt_config = JWTConfig(
            **settings.jwt.options("provider"),
            provider=None if provider is None else ProviderProfile(**provider.model_dump()),
        )
        jwt_manager = JWTManager(jwt_config, revocation_store=revocation_store)
    verifier = None
    if settings.api_keys.enabled:
        if api_key_store is None:
            if pool is None:
                raise ValueError("api_keys.enabled needs database.enabled (or an injected api_key_store)")
            from asgi_kit.database import PostgresAPIKeyStore

            api_key_store = PostgresAPIKeyStore(pool)
        pepper = settings.api_keys.pepper
        verifier = APIKeyVerifier(
            api_key_store,
            prefix=settings.api_keys.prefix,
            environment=settings.api_keys.environment,
            peppers={settings.api_keys.pepper_version: pepper.get_secret_value()} if pepper else None,
            last_used_interval=settings.api_keys.last_used_interval,
        )
    return Middleware(
        AuthMiddleware, jwt=jwt_manager, api_keys=verifier, api_key_header=settings.api_keys.header
    )


def _ratelimit_layer(
    settings: KitSettings, backend: RateLimitBackend | None, on_shutdown: list[Hook]
) -> Middleware[Any]:
    from asgi_kit.ratelimit import Quota, RateLimitMiddleware

    section = settings.ratelimit
    if backend is None and section.redis_url is not None:
        from asgi_kit.ratelimit import RedisBackend

        redis = RedisBackend(url=section.redis_url.get_secret_value(), key_prefix=section.key_prefix)
        on_shutdown.append(redis.aclose)
        backend = redis
    org = Quota(section.org_requests_per_minute, section.org_tokens_per_minute)
    return Middleware(
        RateLimitMiddleware,
        backend=backend,
        quotas=None if org.unlimited else {"org": org},
        **section.options("redis_url", "key_prefix", "org_requests_per_minute", "org_tokens_per_minute"),
    )


def _async(function: Any) -> Hook:
    async def hook() -> None:
        import asyncio

        await asyncio.to_thread(function)

    return hook


__all__ = ["layers_from_settings"]
