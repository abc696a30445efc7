"""Import hygiene of asgi_kit.ratelimit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import asgi_kit.ratelimit


def test_all_is_exact() -> None:
    """asgi_kit.ratelimit exports exactly its public names."""
    assert sorted(asgi_kit.ratelimit.__all__) == [
        "Check",
        "CheckResult",
        "Decision",
        "InMemoryBackend",
        "Quota",
        "QuotaLookup",
        "RateLimitBackend",
        "RateLimitBackendError",
        "RateLimitMiddleware",
        "RedisBackend",
        "SlidingWindowLog",
        "SubjectFunc",
        "TokenEstimate",
        "TokenReservation",
        "estimate_openai_tokens",
        "format_duration",
        "get_token_reservation",
        "parse_duration",
    ]
    for name in asgi_kit.ratelimit.__all__:
        assert getattr(asgi_kit.ratelimit, name) is not None


def test_import_loads_no_redis_and_no_framework() -> None:
    """Importing the package loads neither redis-py nor a web framework; the in-memory layer needs neither."""
    code = """
        import sys
        import asgi_kit.ratelimit
        heavy = {"redis", "starlette", "fastapi", "litestar"}
        print(",".join(sorted({m.split(".")[0] for m in sys.modules} & heavy)))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_backends_satisfy_the_protocol() -> None:
    """Both backends are RateLimitBackends."""
    from asgi_kit.ratelimit import InMemoryBackend, RateLimitBackend, RedisBackend

    assert isinstance(InMemoryBackend(), RateLimitBackend)
    assert isinstance(RedisBackend(url="redis://127.0.0.1:6379/0"), RateLimitBackend)
