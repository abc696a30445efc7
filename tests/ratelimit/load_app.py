"""The app the multi-worker load tests serve: ``uvicorn tests.ratelimit.load_app:app --workers 2``.

Configured from the environment (each worker builds its own ``RedisBackend``):
``RL_REDIS_URL``, ``RL_PREFIX``, ``RL_WINDOW`` (seconds), ``RL_RPM``, ``RL_TPM``,
``RL_ON_ERROR``. ``x-key`` names the caller's key: ``req-*`` keys are limited to ``RL_RPM``
requests, ``tok-*`` keys to ``RL_TPM`` tokens (a quota lookup); ``x-tokens`` is the reservation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.ratelimit import Quota, RateLimitMiddleware, RedisBackend


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = [(b"content-type", b"text/plain"), (b"x-pid", str(os.getpid()).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def tokens_from_header(scope: Scope, body: bytes) -> int:
    value = _header(scope, b"x-tokens")
    return int(value) if value else 0


def with_key(app: ASGIApp) -> ASGIApp:
    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            key = _header(scope, b"x-key")
            if key:
                set_principal(
                    scope,
                    Principal(
                        user_id=None,
                        org_id="load",
                        role="org_user",
                        auth_method="api_key",
                        key_id=key.decode(),
                    ),
                )
        await app(scope, receive, send)

    return layer


def create(env: Mapping[str, str] = os.environ) -> ASGIApp:
    by_kind = {
        "req": Quota(requests=int(env.get("RL_RPM", "600"))),
        "tok": Quota(tokens=int(env.get("RL_TPM", "6000"))),
    }

    def lookup(kind: str, subject: str, scope: Scope) -> Quota | None:
        return by_kind.get(subject.split("-", 1)[0])

    backend = RedisBackend(url=env["RL_REDIS_URL"], key_prefix=env["RL_PREFIX"], retry_interval=0.2)
    return with_key(
        RateLimitMiddleware(
            ok,
            quotas={"key": Quota(requests=1)},  # unknown keys: one request a window
            quota_lookup=lookup,
            window=float(env.get("RL_WINDOW", "60")),
            backend=backend,
            token_estimate=tokens_from_header,
            fail_open=env.get("RL_ON_ERROR", "allow") == "allow",
        )
    )


app = create() if "RL_REDIS_URL" in os.environ else None
