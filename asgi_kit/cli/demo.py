"""``asgi-kit demo``: run the OpenAI-compatible demo gateway built from the kit."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from typing import Any

from asgi_kit.demo.config import DEFAULT_ORG, DemoConfig


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the demo OpenAI-compatible gateway",
        description="Serve an OpenAI-compatible gateway (chat, streaming, embeddings, models) with API keys, "
        "RBAC, budgets, metrics and health checks, all from asgi-kit. No setup needed: in-memory stores and a "
        "bundled fake upstream; pass --database-url to use PostgreSQL (migrated first).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--database-url", default=os.environ.get("ASGI_KIT_DATABASE__URL"))
    parser.add_argument(
        "--upstream-url", default=None, help="a real OpenAI-compatible API root (default: bundled fake)"
    )
    parser.add_argument("--upstream-api-key", default=os.environ.get("ASGI_KIT_DEMO_UPSTREAM_API_KEY"))
    parser.add_argument(
        "--budget-tokens", type=int, default=1_000_000, help="the demo organization's monthly budget"
    )
    parser.add_argument("--api-key", default=None, help="use this API key instead of generating one")
    parser.add_argument(
        "--token-delay", type=float, default=0.02, help="seconds between streamed fake tokens"
    )
    parser.add_argument(
        "--budget-cache-ttl", type=float, default=1.0, help="per-worker budget cache (seconds)"
    )
    parser.add_argument(
        "--rate-limit-rpm", type=int, default=60_000, help="requests per minute for each API key (0: none)"
    )
    parser.add_argument(
        "--rate-limit-tpm", type=int, default=10_000_000, help="tokens per minute for each API key (0: none)"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("ASGI_KIT_DEMO_REDIS_URL"),
        help="count rate limits in Redis, shared by every worker (default: each worker counts alone)",
    )
    parser.add_argument(
        "--reserve-max-tokens",
        type=int,
        default=1024,
        help="completion tokens reserved for a request without max_tokens (0: no reservations)",
    )
    parser.add_argument(
        "--spool-dir",
        default=None,
        help="where usage is spooled while the database is away (default: under the temp dir)",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.set_defaults(handler=run)


async def provision_database(config: DemoConfig) -> None:
    """Migrate, then create the demo organization and key if they do not exist yet."""
    from asgi_kit.database import (
        PostgresAPIKeyStore,
        PostgresUsageStore,
        new_postgres_pool,
        run_migrations,
    )
    from asgi_kit.demo.gateway import key_record

    if config.database_url is None:  # checked by the caller; no assert (python -O)
        raise ValueError("the demo needs database_url")
    await asyncio.to_thread(run_migrations, config.database_url)
    pool = await new_postgres_pool(config.database_url, min_size=1, max_size=2)
    try:
        usage = PostgresUsageStore(pool)
        if await usage.get_budget(config.org_id) is None:
            await usage.create_organization(config.org_id, "demo", budget_tokens_monthly=config.budget_tokens)
        else:
            await usage.set_budget(config.org_id, config.budget_tokens)
        keys = PostgresAPIKeyStore(pool)
        record = key_record(config.api_key, config.org_id)
        if await keys.get_api_key(record.key_id) is None:
            await keys.add(record, name="demo")
    finally:
        await pool.close()


def run(args: argparse.Namespace) -> int:
    from asgi_kit.auth.apikey import generate_api_key, parse_api_key

    for option in ("reserve_max_tokens", "rate_limit_rpm", "rate_limit_tpm"):
        if getattr(args, option) < 0:
            raise ValueError(f"--{option.replace('_', '-')} must be >= 0")
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    api_key = args.api_key or generate_api_key("sk", environment="demo")
    parse_api_key(api_key)  # a malformed --api-key fails here, before anything starts
    config = DemoConfig(
        host=args.host,
        port=args.port,
        api_key=api_key,
        org_id=DEFAULT_ORG,
        budget_tokens=args.budget_tokens,
        database_url=args.database_url,
        upstream_url=args.upstream_url,
        upstream_api_key=args.upstream_api_key,
        token_delay=args.token_delay,
        budget_cache_ttl=args.budget_cache_ttl,
        reserve_max_tokens=args.reserve_max_tokens,
        rate_limit_rpm=args.rate_limit_rpm,
        rate_limit_tpm=args.rate_limit_tpm,
        redis_url=args.redis_url,
        log_level=args.log_level.upper(),
        spool_dir=args.spool_dir,
    )
    if config.database_url:
        asyncio.run(provision_database(config))
    os.environ.update(config.to_env())
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Workers must share one directory so /metrics adds up every worker.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="asgi-kit-demo-metrics-")
    print(banner(config, args.workers), file=sys.stderr, flush=True)

    import uvicorn

    uvicorn.run(
        "asgi_kit.demo.gateway:app_from_env",
        factory=True,
        host=config.host,
        port=config.port,
        workers=args.workers,
        log_level="warning",
        log_config=log_config(config.log_level),
        access_log=False,
        lifespan="on",
    )
    return 0


def log_config(level: str = "INFO") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a demo process: every line one JSON object.

    uvicorn's own loggers (``uvicorn.error``, ``uvicorn.access``) and the root logger (the kit's
    ``asgi_kit.*`` loggers and every library propagate to it) write through the kit's
    :class:`~asgi_kit.logging.JsonLogFormatter`, so a server error, a warning or a traceback is a
    JSON record (the traceback in its ``exc_info`` field), never plain text between the access-log
    lines. uvicorn applies it in every worker.
    """
    from asgi_kit.demo.gateway import SERVICE

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "asgi_kit.logging.logger.JsonLogFormatter", "service": SERVICE}},
        "handlers": {
            "json": {
                "class": "asgi_kit.logging.logger.JsonLinesHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["json"], "level": level},
    }


def banner(config: DemoConfig, workers: int) -> str:
    storage = "PostgreSQL" if config.database_url else "in-memory stores (budgets are per worker)"
    return "\n".join(
        [
            f"asgi-kit demo gateway on {config.base_url}  ({workers} worker(s), {storage})",
            f"  upstream:  {config.resolved_upstream}",
            f"  API key:   {config.api_key}",
            f"  budget:    {config.budget_tokens} tokens/month for organization {config.org_id}",
            "  try:",
            f"    curl -s {config.base_url}/v1/chat/completions -H 'Authorization: Bearer {config.api_key}' \\",
            "      -H 'Content-Type: application/json' \\",
            '      -d \'{"model": "fake-gpt-4o-mini", "messages": [{"role": "user", "content": "hello kit"}]}\'',
            f"    curl -s {config.base_url}/metrics | grep http_requests_total",
            "  Ctrl-C stops it.",
        ]
    )
