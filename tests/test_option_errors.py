"""Every layer's options follow one rule: TypeError for a wrong type, ValueError for a wrong value.

One representative option per public constructor, each tried twice: with a value of the wrong
type (a string where a number, a bool or a name list is due) and with a value of the right type
that the layer refuses. Both errors must name the option, so a misconfigured service says which
setting to fix.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asgi_kit import Middleware, Stack
from asgi_kit._asgi.lifespan import LifespanHooksMiddleware
from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.auth import (
    APIKeyVerifier,
    AuthMiddleware,
    InMemoryAPIKeyStore,
    InMemoryTokenRevocationStore,
    JWKSKeySet,
    JWTConfig,
    JWTManager,
    ProviderProfile,
    VerifiedTokenCache,
)
from asgi_kit.budget import (
    BudgetMiddleware,
    BudgetReservations,
    BudgetStoreSink,
    InMemoryBudgetStore,
    InMemoryLeaseStore,
    Spool,
    UsageLedger,
)
from asgi_kit.database import APIKeyEventListener, create_postgres_pool, run_migrations
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.guards import BodyLimitMiddleware, SecurityHeadersMiddleware, TimeoutMiddleware
from asgi_kit.health import health_app
from asgi_kit.httpclient import HTTPClient, Limits, OpenAIClient, RetryPolicy, Timeouts
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware, new_logger
from asgi_kit.metrics import MetricsMiddleware, register_metrics
from asgi_kit.ratelimit import InMemoryBackend, Quota, RateLimitMiddleware, RedisBackend
from asgi_kit.rbac import Permission, Policy, RequirePermission
from asgi_kit.tracing import TracingMiddleware, init_tracer
from asgi_kit.validation import RequestLimits

SECRET = "s" * 32
POSTGRES_URL = "postgresql://u@127.0.0.1/d"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """A stand-in ASGI app: construction is all these tests exercise."""


def manager() -> JWTManager:
    return JWTManager(JWTConfig(secret=SECRET, issuer="i", audience="a"))


Build = Callable[[Any, Path], object]

# (option, build(value, tmp_path), a value of the wrong type, a right-typed value out of range)
CASES: dict[str, tuple[str, Build, object, object]] = {
    "AuthMiddleware": (
        "token_cache_size",
        lambda v, _: AuthMiddleware(app, jwt=manager(), token_cache_size=v),
        "10",
        -1,
    ),
    "AuthMiddleware.realm": ("realm", lambda v, _: AuthMiddleware(app, jwt=manager(), realm=v), 5, ""),
    "APIKeyVerifier": (
        "cache_ttl",
        lambda v, _: APIKeyVerifier(InMemoryAPIKeyStore(), cache_ttl=v),
        "300",
        -1.0,
    ),
    "JWTConfig": (
        "leeway",
        lambda v, _: JWTConfig(secret=SECRET, issuer="i", audience="a", leeway=v),
        1.5,
        301,
    ),
    "ProviderProfile": ("roles_claim", lambda v, _: ProviderProfile(roles_claim=v), ["roles"], " "),
    "JWKSKeySet": (
        "jwks_cache_ttl",
        lambda v, _: JWKSKeySet("https://idp.example/jwks", cache_ttl=v),
        "300",
        0,
    ),
    "VerifiedTokenCache": ("token_cache_size", lambda v, _: VerifiedTokenCache(v), 10.0, -1),
    "InMemoryTokenRevocationStore": (
        "purge_threshold",
        lambda v, _: InMemoryTokenRevocationStore(purge_threshold=v),
        True,
        0,
    ),
    "RequirePermission": (
        "permission",
        lambda v, _: RequirePermission(app, v),
        7,
        "Not A Permission",
    ),
    "Policy": ("role names", lambda v, _: Policy({v: [Permission.USE_MODELS]}), 5, "Admin"),
    "BudgetMiddleware": (
        "cache_ttl",
        lambda v, _: BudgetMiddleware(app, store=InMemoryBudgetStore(), cache_ttl=v),
        "5",
        61,
    ),
    "BudgetReservations": (
        "lease_ttl",
        lambda v, _: BudgetReservations(InMemoryLeaseStore(InMemoryBudgetStore()), lease_ttl=v),
        "60",
        0,
    ),
    "BudgetStoreSink": ("remember", lambda v, _: BudgetStoreSink(InMemoryBudgetStore(), remember=v), "1", 0),
    "UsageLedger": (
        "max_batch",
        lambda v, tmp: UsageLedger(
            BudgetStoreSink(InMemoryBudgetStore()), spool_path=tmp / "spool", max_batch=v
        ),
        "500",
        0,
    ),
    "Spool": ("max_bytes", lambda v, tmp: Spool(tmp / "spool", max_bytes=v), 4096.0, 1023),
    "RateLimitMiddleware": (
        "requests_per_minute",
        lambda v, _: RateLimitMiddleware(app, requests_per_minute=v),
        "60",
        0,
    ),
    "RateLimitMiddleware.window": ("window", lambda v, _: RateLimitMiddleware(app, window=v), True, 0),
    "Quota": ("tokens", lambda v, _: Quota(tokens=v), 1.5, 0),
    "InMemoryBackend": ("max_keys", lambda v, _: InMemoryBackend(max_keys=v), "1", 0),
    "RedisBackend": (
        "socket_timeout",
        lambda v, _: RedisBackend(url="redis://127.0.0.1:6379/0", socket_timeout=v),
        "0.5",
        0,
    ),
    "create_postgres_pool": (
        "max_size",
        lambda v, _: create_postgres_pool(POSTGRES_URL, max_size=v),
        "10",
        0,
    ),
    "APIKeyEventListener": (
        "ping_interval",
        lambda v, _: APIKeyEventListener(
            POSTGRES_URL, APIKeyVerifier(InMemoryAPIKeyStore()), ping_interval=v
        ),
        "30",
        0,
    ),
    "run_migrations": ("lock_timeout", lambda v, _: run_migrations(POSTGRES_URL, lock_timeout=v), "5", -1),
    "HTTPClient": ("max_redirects", lambda v, _: HTTPClient(max_redirects=v), "3", -1),
    "RetryPolicy": ("max_retries", lambda v, _: RetryPolicy(max_retries=v), 3.0, -1),
    "Timeouts": ("timeout", lambda v, _: Timeouts(attempt=v), None, 0),
    "Limits": ("keepalive_expiry", lambda v, _: Limits(keepalive_expiry=v), "15", float("nan")),
    "OpenAIClient": ("api_key", lambda v, _: OpenAIClient("https://api.example/v1", v), 5, ""),
    "BodyLimitMiddleware": ("max_body_size", lambda v, _: BodyLimitMiddleware(app, max_body_size=v), 1.5, 0),
    "TimeoutMiddleware": ("timeout", lambda v, _: TimeoutMiddleware(app, timeout=v), "1", float("inf")),
    "SecurityHeadersMiddleware": (
        "extra_headers",
        lambda v, _: SecurityHeadersMiddleware(app, extra_headers=v),
        ["X-A"],
        {"bad header": "1"},
    ),
    "health_app": ("timeout", lambda v, _: health_app(timeout=v), "2", 0),
    "ProblemDetailsMiddleware": (
        "openai_paths",
        lambda v, _: ProblemDetailsMiddleware(app, openai_paths=v),
        "/v1",
        ["v1"],
    ),
    "register_metrics": ("max_label_sets", lambda v, _: register_metrics("svc", max_label_sets=v), "10", 0),
    "MetricsMiddleware": ("path", lambda v, _: MetricsMiddleware(app, path=v), 5, "metrics"),
    "TracingMiddleware": (
        "redact_query_params",
        lambda v, _: TracingMiddleware(app, redact_query_params=v),
        "token",
        [""],
    ),
    "init_tracer": (
        "sample_ratio",
        lambda v, _: init_tracer("svc", exporter="none", sample_ratio=v),
        "1",
        1.5,
    ),
    "LoggingMiddleware": (
        "max_field_length",
        lambda v, _: LoggingMiddleware(app, logger=logging.getLogger("tests.options"), max_field_length=v),
        "1024",
        31,
    ),
    "RequestIDMiddleware": (
        "header",
        lambda v, _: RequestIDMiddleware(app, header=v),
        b"X-Request-ID",
        "x y",
    ),
    "new_logger": ("service", lambda v, _: new_logger(v), 5, ""),
    "RequestLimits": ("max_n", lambda v, _: RequestLimits(max_n=v), "8", 129),
    "LifespanHooksMiddleware": (
        "on_startup",
        lambda v, _: LifespanHooksMiddleware(app, on_startup=v),
        ["x"],
        None,
    ),
    "Stack": ("Stack layers", lambda v, _: Stack([v]), "layer", None),
    "Middleware": ("middleware factory", lambda v, _: Middleware(v), "factory", None),
}


def _names(option: str) -> str:
    return rf"(?<![\w]){re.escape(option)}(?![\w])"


@pytest.mark.parametrize(("option", "build", "wrong_type", "wrong_value"), CASES.values(), ids=CASES.keys())
def test_a_wrong_type_is_a_type_error_naming_the_option(
    option: str, build: Build, wrong_type: object, wrong_value: object, tmp_path: Path
) -> None:
    """A value of the wrong type is refused at construction with TypeError, never ValueError."""
    with pytest.raises(TypeError, match=_names(option)):
        build(wrong_type, tmp_path)


@pytest.mark.parametrize(
    ("option", "build", "wrong_type", "wrong_value"),
    [case for case in CASES.values() if case[3] is not None],
    ids=[name for name, case in CASES.items() if case[3] is not None],
)
def test_a_wrong_value_of_the_right_type_is_a_value_error_naming_the_option(
    option: str, build: Build, wrong_type: object, wrong_value: object, tmp_path: Path
) -> None:
    """A right-typed value the layer cannot use is a ValueError, never a TypeError."""
    with pytest.raises(ValueError, match=_names(option)):
        build(wrong_value, tmp_path)
