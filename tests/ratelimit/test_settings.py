"""The ``[ratelimit]`` settings section and the rate-limit layer of ``Stack.from_settings``."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from asgi_kit import Stack
from asgi_kit._asgi.lifespan import LifespanHooksMiddleware
from asgi_kit._asgi.types import ASGIApp
from asgi_kit.auth import APIKeyRecord, AuthMiddleware, InMemoryAPIKeyStore, generate_api_key
from asgi_kit.auth.apikey import hash_api_key, parse_api_key
from asgi_kit.budget import BudgetMiddleware, InMemoryBudgetStore
from asgi_kit.config import ConfigError, KitSettings, load_settings
from asgi_kit.ratelimit import InMemoryBackend, Quota, RateLimitMiddleware, RedisBackend
from asgi_kit.testing import run_lifespan
from tests.harness.apps import bare_app
from tests.ratelimit.helpers import chat_body
from tests.ratelimit.redis_harness import delete_prefix, new_prefix, require_redis

SECRET = "s" * 40


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ASGI_KIT_ setting from the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("ASGI_KIT_") and name.upper() != "ASGI_KIT_REQUIRE_REDIS":
            monkeypatch.delenv(name)


def keys_of_one_org(count: int) -> tuple[InMemoryAPIKeyStore, list[str]]:
    """``count`` API keys, all of organization ``o1``."""
    keys = [generate_api_key() for _ in range(count)]
    records = [
        APIKeyRecord(
            key_id=parse_api_key(key).key_id,
            org_id="o1",
            user_id=None,
            role="org_user",
            key_hash=hash_api_key(key),
        )
        for key in keys
    ]
    return InMemoryAPIKeyStore(records), keys


def rate_limited(settings: KitSettings, store: InMemoryAPIKeyStore) -> ASGIApp:
    return Stack.from_settings(settings, api_key_store=store).wrap(bare_app())


def client_of(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")  # type: ignore[arg-type]


# -- the section ---------------------------------------------------------------------------------


def test_disabled_by_default() -> None:
    """Without a [ratelimit] section nothing is limited and nothing is required."""
    section = load_settings().ratelimit
    assert not section.enabled
    assert (section.requests_per_minute, section.tokens_per_minute, section.redis_url) == (None, None, None)
    assert (section.window, section.fail_open, section.key_prefix) == (
        60.0,
        True,
        "asgi-kit:ratelimit:",
    )
    assert (section.default_completion_tokens, section.max_estimate_body) == (1000, 1 << 20)


def test_section_from_a_toml_file(tmp_path: Path) -> None:
    """Every field of [ratelimit] is read from TOML, the Redis URL as a secret."""
    path = tmp_path / "service.toml"
    path.write_text(
        "[ratelimit]\n"
        "enabled = true\n"
        "requests_per_minute = 600\n"
        "tokens_per_minute = 150000\n"
        "org_requests_per_minute = 6000\n"
        "org_tokens_per_minute = 2000000\n"
        "window = 30\n"
        'redis_url = "redis://:hunter2@cache:6379/1"\n'
        'key_prefix = "router:rl:"\n'
        "fail_open = false\n"
        "default_completion_tokens = 256\n"
        "max_estimate_body = 65536\n"
        'openai_paths = ["/v1/*"]\n'
        'exclude_paths = ["/health", "/metrics"]\n',
        encoding="utf-8",
    )
    section = load_settings(path).ratelimit
    assert section.enabled
    assert (section.requests_per_minute, section.tokens_per_minute) == (600, 150_000)
    assert (section.org_requests_per_minute, section.org_tokens_per_minute) == (6000, 2_000_000)
    assert (section.window, section.key_prefix, section.fail_open) == (30.0, "router:rl:", False)
    assert (section.default_completion_tokens, section.max_estimate_body) == (256, 65_536)
    assert section.openai_paths == ["/v1/*"]
    assert section.exclude_paths == ["/health", "/metrics"]
    assert section.redis_url is not None
    assert section.redis_url.get_secret_value() == "redis://:hunter2@cache:6379/1"
    assert "hunter2" not in repr(section)


def test_section_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """ASGI_KIT_RATELIMIT__<FIELD> sets each field; lists are JSON, openai_paths also a bool."""
    monkeypatch.setenv("ASGI_KIT_RATELIMIT__ENABLED", "true")
    monkeypatch.setenv("ASGI_KIT_RATELIMIT__TOKENS_PER_MINUTE", "40000")
    monkeypatch.setenv("ASGI_KIT_RATELIMIT__ORG_REQUESTS_PER_MINUTE", "900")
    monkeypatch.setenv("ASGI_KIT_RATELIMIT__REDIS_URL", "rediss://cache.internal:6380/0")
    monkeypatch.setenv("ASGI_KIT_RATELIMIT__FAIL_OPEN", "false")
    monkeypatch.setenv("ASGI_KIT_RATELIMIT__EXCLUDE_PATHS", '["/health", "/static/*"]')
    monkeypatch.setenv("ASGI_KIT_RATELIMIT__OPENAI_PATHS", "true")
    section = load_settings().ratelimit
    assert section.enabled and section.requests_per_minute is None
    assert (section.tokens_per_minute, section.org_requests_per_minute) == (40_000, 900)
    assert section.redis_url is not None and section.redis_url.get_secret_value().startswith("rediss://")
    assert section.fail_open is False
    assert section.exclude_paths == ["/health", "/static/*"]
    assert section.openai_paths is True
    monkeypatch.setenv("ASGI_KIT_RATELIMIT__OPENAI_PATHS", '["/v1/*"]')
    assert load_settings().ratelimit.openai_paths == ["/v1/*"]
    assert KitSettings().ratelimit.tokens_per_minute == 40_000  # the environment alone, no loader


def test_enabled_without_any_limit_is_an_error(tmp_path: Path) -> None:
    """enabled = true with no limit would limit nothing: refused, naming the section and the fields."""
    path = tmp_path / "service.toml"
    path.write_text("[ratelimit]\nenabled = true\nwindow = 10\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.fields == ["ratelimit"]
    problem = info.value.problems[0]
    assert problem.source == f"file {path}"
    for field in (
        "requests_per_minute",
        "tokens_per_minute",
        "org_requests_per_minute",
        "org_tokens_per_minute",
    ):
        assert field in problem.reason
    # Any one limit is enough; a disabled section needs none.
    assert load_settings(ratelimit={"enabled": True, "org_tokens_per_minute": 1}).ratelimit.enabled
    assert not load_settings(ratelimit={"window": 10}).ratelimit.enabled


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("requests_per_minute", 0),
        ("tokens_per_minute", -5),
        ("org_requests_per_minute", 0),
        ("org_tokens_per_minute", "many"),
        ("window", 0),
        ("window", 90_000),
        ("fail_open", "maybe"),
        ("default_completion_tokens", -1),
        ("max_estimate_body", 0),
        ("exclude_paths", ["health"]),
        ("openai_paths", ["v1/*"]),
        ("openai_paths", "/v1/*"),
        ("key_prefix", 7),
        ("request_per_minute", 10),
    ],
)
def test_a_bad_field_is_named(field: str, value: object) -> None:
    """Each invalid field is reported under its dotted name, from the source that set it."""
    with pytest.raises(ConfigError) as info:
        load_settings(ratelimit={field: value})
    assert {name.split(".")[1] for name in info.value.fields} == {field}
    assert all(p.source == "overrides" for p in info.value.problems)


def test_a_bad_redis_url_is_named_but_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Redis URL may hold a password: the error names the variable, not the value."""
    monkeypatch.setenv("ASGI_KIT_RATELIMIT__REDIS_URL", "http://:hunter2@cache:6379")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.fields == ["ratelimit.redis_url"]
    assert "environment variable ASGI_KIT_RATELIMIT__REDIS_URL" in str(info.value)
    assert "hunter2" not in str(info.value)


# -- the preset ----------------------------------------------------------------------------------


def test_the_layer_sits_between_auth_and_budget() -> None:
    """Enabled, RateLimitMiddleware comes right after AuthMiddleware and before BudgetMiddleware,
    with the section's options, the key quota as the shorthand and the organization's in quotas."""
    settings = load_settings(
        api_keys={"enabled": True},
        budget={"enabled": True},
        ratelimit={
            "enabled": True,
            "requests_per_minute": 600,
            "org_tokens_per_minute": 2_000_000,
            "window": 30,
            "fail_open": False,
            "openai_paths": ["/v1/*"],
            "exclude_paths": ["/health"],
        },
    )
    stack = Stack.from_settings(
        settings, api_key_store=InMemoryAPIKeyStore(), budget_store=InMemoryBudgetStore()
    )
    classes = [m.cls for m in stack]
    assert classes.index(RateLimitMiddleware) == classes.index(AuthMiddleware) + 1
    assert classes.index(BudgetMiddleware) == classes.index(RateLimitMiddleware) + 1
    assert LifespanHooksMiddleware not in classes  # in-memory counts: nothing to close
    layer = stack[classes.index(RateLimitMiddleware)]
    assert layer.kwargs == {
        "backend": None,
        "quotas": {"org": Quota(None, 2_000_000)},
        "requests_per_minute": 600,
        "tokens_per_minute": None,
        "window": 30.0,
        "fail_open": False,
        "default_completion_tokens": 1000,
        "max_estimate_body": 1 << 20,
        "openai_paths": ["/v1/*"],
        "exclude_paths": ["/health"],
    }
    built = stack.wrap(bare_app())  # every layer builds with these options
    assert built is not None


def test_rate_limits_need_authentication() -> None:
    """Without jwt or api_keys no request has a key or an organization: refused, naming the fix."""
    with pytest.raises(ValueError, match=r"ratelimit\.enabled needs jwt\.enabled or api_keys\.enabled"):
        Stack.from_settings(load_settings(ratelimit={"enabled": True, "requests_per_minute": 5}))


def test_disabled_section_adds_no_layer() -> None:
    """A configured but disabled section leaves the stack as it was."""
    settings = load_settings(api_keys={"enabled": True}, ratelimit={"requests_per_minute": 5})
    stack = Stack.from_settings(settings, api_key_store=InMemoryAPIKeyStore())
    assert RateLimitMiddleware not in [m.cls for m in stack]


def test_an_injected_backend_replaces_redis_and_stays_open() -> None:
    """ratelimit_backend wins over redis_url; the caller owns it, so no shutdown hook closes it."""
    backend = InMemoryBackend()
    settings = load_settings(
        api_keys={"enabled": True},
        ratelimit={"enabled": True, "requests_per_minute": 5, "redis_url": "redis://127.0.0.1:1/0"},
    )
    stack = Stack.from_settings(settings, api_key_store=InMemoryAPIKeyStore(), ratelimit_backend=backend)
    assert stack[0].cls is not LifespanHooksMiddleware
    assert next(m for m in stack if m.cls is RateLimitMiddleware).kwargs["backend"] is backend


def test_redis_url_builds_a_redis_backend_closed_at_shutdown() -> None:
    """redis_url gives a RedisBackend with the section's key_prefix, and a shutdown hook for it."""
    settings = load_settings(
        api_keys={"enabled": True},
        ratelimit={
            "enabled": True,
            "requests_per_minute": 5,
            "redis_url": "redis://127.0.0.1:1/0",
            "key_prefix": "p:",
        },
    )
    stack = Stack.from_settings(settings, api_key_store=InMemoryAPIKeyStore())
    backend = next(m for m in stack if m.cls is RateLimitMiddleware).kwargs["backend"]
    assert isinstance(backend, RedisBackend) and repr(backend) == "RedisBackend(key_prefix='p:')"
    hooks = stack[0]
    assert hooks.cls is LifespanHooksMiddleware
    assert backend.aclose in hooks.kwargs["on_shutdown"]


async def test_a_key_over_its_limit_gets_429_in_memory() -> None:
    """Through the real preset: a key's third request in the minute is refused with OpenAI's
    headers; another key of the same organization meets the organization's limit."""
    store, (first, second) = keys_of_one_org(2)
    settings = load_settings(
        api_keys={"enabled": True},
        ratelimit={
            "enabled": True,
            "requests_per_minute": 2,
            "org_requests_per_minute": 3,
            "openai_paths": ["/v1/*"],
            "exclude_paths": ["/health"],
        },
    )
    async with client_of(rate_limited(settings, store)) as client:
        answers = [await client.get("/ok", headers={"X-API-Key": first}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert [a.headers["x-ratelimit-remaining-requests"] for a in answers[:2]] == ["1", "0"]
        refused = answers[2]
        assert refused.headers["x-ratelimit-limit-requests"] == "2"
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        assert int(refused.headers["retry-after"]) >= 1 and "retry-after-ms" in refused.headers
        assert refused.json()["code"] == "rate_limit_exceeded"
        assert "(key)" in refused.json()["detail"]

        ok = await client.get("/ok", headers={"X-API-Key": second})
        assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining-requests"] == "0"
        over = await client.get("/v1/models", headers={"X-API-Key": second})
        assert over.status_code == 429
        assert over.json()["error"]["code"] == "rate_limit_exceeded"  # OpenAI's shape on /v1/*
        assert "(org)" in over.json()["error"]["message"]

        excluded = await client.get("/health", headers={"X-API-Key": first})
        assert excluded.status_code == 404 and "x-ratelimit-limit-requests" not in excluded.headers
        assert (await client.get("/ok")).status_code == 401  # anonymous: refused by auth first


async def test_tokens_are_reserved_from_the_settings_estimate() -> None:
    """tokens_per_minute and default_completion_tokens reach the layer: a request without max_tokens
    reserves the default allowance, and the next one no longer fits."""
    store, (key,) = keys_of_one_org(1)
    settings = load_settings(
        api_keys={"enabled": True},
        ratelimit={"enabled": True, "tokens_per_minute": 300, "default_completion_tokens": 200},
    )
    async with client_of(rate_limited(settings, store)) as client:
        headers = {"X-API-Key": key, "content-type": "application/json"}
        first = await client.post("/ok", content=chat_body(max_tokens=None), headers=headers)
        assert first.status_code == 200
        assert first.headers["x-ratelimit-limit-tokens"] == "300"
        remaining = int(first.headers["x-ratelimit-remaining-tokens"])
        assert 0 < remaining < 100  # 200 for the completion and a few for the prompt
        second = await client.post("/ok", content=chat_body(max_tokens=None), headers=headers)
        assert second.status_code == 429 and second.json()["error_type"] == "tokens"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    url = require_redis()
    prefix = new_prefix()
    yield prefix
    delete_prefix(url, prefix)


def redis_client_names(url: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return [entry.get("name", "") for entry in client.client_list()]
    finally:
        client.close()


@pytest.mark.integration
async def test_redis_counts_are_shared_and_the_backend_closes_at_shutdown(redis_prefix: str) -> None:
    """With redis_url, two stacks from the same settings (two workers) share one count per key, the
    counts are under key_prefix in Redis, and lifespan shutdown closes the backend's connections."""
    url = require_redis()
    name = f"asgi-kit-test-{uuid.uuid4().hex}"
    store, (key,) = keys_of_one_org(1)
    settings = load_settings(
        api_keys={"enabled": True},
        ratelimit={
            "enabled": True,
            "requests_per_minute": 3,
            "redis_url": f"{url}?client_name={name}",
            "key_prefix": redis_prefix,
        },
    )
    workers = [rate_limited(settings, store), rate_limited(settings, store)]
    statuses = []
    for i in range(4):
        async with client_of(workers[i % 2]) as client:
            answer = await client.get("/ok", headers={"X-API-Key": key})
            statuses.append(answer.status_code)
    assert statuses == [200, 200, 200, 429]
    assert answer.headers["x-ratelimit-limit-requests"] == "3"
    assert json.loads(answer.text)["code"] == "rate_limit_exceeded"

    import redis

    direct = redis.Redis.from_url(url)
    try:
        assert list(direct.scan_iter(match=redis_prefix + "key:*"))
    finally:
        direct.close()
    assert name in redis_client_names(url)

    for worker in workers:
        sent = await run_lifespan(worker)
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    for _ in range(50):
        if name not in redis_client_names(url):
            break
        await asyncio.sleep(0.02)
    assert name not in redis_client_names(url)


def test_the_documented_toml_example_loads_and_builds(tmp_path: Path) -> None:
    """docs/ratelimit.md's "From settings" TOML is valid and gives the layer it describes."""
    docs = (Path(__file__).parents[2] / "docs" / "ratelimit.md").read_text(encoding="utf-8")
    example = docs.split("## From settings", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "service.toml"
    path.write_text(example, encoding="utf-8")
    stack = Stack.from_settings(load_settings(path), api_key_store=InMemoryAPIKeyStore())
    layer = next(m for m in stack if m.cls is RateLimitMiddleware)
    assert isinstance(layer.kwargs["backend"], RedisBackend)
    assert layer.kwargs["quotas"] == {"org": Quota(None, 2_000_000)}
    assert (layer.kwargs["requests_per_minute"], layer.kwargs["tokens_per_minute"]) == (600, 150_000)
    stack.wrap(bare_app())
