"""The demo's configuration, passed to ``uvicorn --workers`` children through the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Final

ENV_PREFIX: Final = "ASGI_KIT_DEMO_"
DEFAULT_ORG: Final = "org_demo"
DEFAULT_MODELS: Final = ("fake-gpt-4o-mini", "fake-embedding")


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Everything a demo worker needs to build the same gateway as its siblings.

    Attributes:
        host, port: where uvicorn listens; the bundled upstream is reached through them.
        api_key: the ready-made key printed at start (the same in every worker).
        org_id: the organization that owns the key.
        budget_tokens: the organization's monthly token budget.
        database_url: use PostgreSQL (migrated first) instead of in-memory stores.
        upstream_url: a real OpenAI-compatible API root; default: the bundled fake, mounted at
            ``/upstream/v1``.
        upstream_api_key: the key sent upstream.
        token_delay: seconds between streamed tokens of the bundled fake upstream.
        budget_cache_ttl: seconds a budget read is cached per worker. With reservations on it
            only delays the refusal of calls that reserve nothing (``/v1/models``); the spend is
            bounded by the reservations.
        reserve_max_tokens: completion tokens reserved for a request that sets no
            ``max_tokens``; every call reserves its worst case before the upstream call
            (``asgi_kit.budget.BudgetReservations``). 0 turns reservations off.
        rate_limit_rpm, rate_limit_tpm: requests and tokens per minute for each API key
            (``asgi_kit.ratelimit.RateLimitMiddleware``); 0 turns one off.
        redis_url: count rate limits in Redis, shared by every worker and host; without it
            each worker counts on its own.
        log_level: access-log level.
        spool_dir: where the usage ledger spools settled usage while the database is away
            (each worker claims a file in it; a restarted worker replays what it finds);
            default: ``<temp dir>/asgi-kit-demo-spool/<hash of the database URL>``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str = field(default="", repr=False)
    org_id: str = DEFAULT_ORG
    budget_tokens: int = 1_000_000
    database_url: str | None = field(default=None, repr=False)
    upstream_url: str | None = None
    upstream_api_key: str | None = field(default=None, repr=False)
    token_delay: float = 0.02
    budget_cache_ttl: float = 1.0
    reserve_max_tokens: int = 1024
    rate_limit_rpm: int = 60_000
    rate_limit_tpm: int = 10_000_000
    redis_url: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    spool_dir: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def resolved_upstream(self) -> str:
        return self.upstream_url or f"{self.base_url}/upstream/v1"

    def to_env(self) -> dict[str, str]:
        """Environment variables that :meth:`from_env` reads back."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                env[ENV_PREFIX + f.name.upper()] = str(value)
        return env

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> DemoConfig:
        source = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            raw = source.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
            if kind.startswith("int"):
                kwargs[f.name] = int(raw)
            elif kind.startswith("float"):
                kwargs[f.name] = float(raw)
            else:
                kwargs[f.name] = raw
        return cls(**kwargs)  # type: ignore[arg-type]


__all__ = ["DEFAULT_MODELS", "DEFAULT_ORG", "ENV_PREFIX", "DemoConfig"]
