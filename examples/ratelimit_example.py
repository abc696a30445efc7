"""Rate limits per API key, as OpenAI's API sets them, around a fake chat-completions app.

Each key may send ``RPM`` requests and ``TPM`` tokens a minute; every answer carries OpenAI's
``x-ratelimit-*`` headers, and a refusal is a retryable ``429 rate_limit_exceeded`` with
``Retry-After``, which the official ``openai`` client waits for and retries. The organization
``broke`` has used its monthly budget: its key gets ``429 insufficient_quota``, which the
client does not retry. Counts are kept in memory, or in Redis when ``REDIS_URL`` is set (shared
by ``uvicorn --workers N``). Run it and try it::

    python examples/ratelimit_example.py
    curl -i -H 'Authorization: Bearer sk-demo-1' -d '{"model":"m","messages":[]}' \\
        http://127.0.0.1:8000/v1/chat/completions      # the 4th call within a minute: 429

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="sk-demo-1")
    raw = client.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "hi"}])
    print(raw.headers["x-ratelimit-remaining-requests"], raw.parse().choices[0].message.content)

The ``Authorization`` lookup stands in for ``AuthMiddleware`` so the example runs without a key store.
"""

from __future__ import annotations

import json
import os
import time

from asgi_kit import Stack
from asgi_kit.auth import Principal, set_principal
from asgi_kit.budget import BudgetMiddleware, InMemoryBudgetStore
from asgi_kit.ratelimit import (
    InMemoryBackend,
    RateLimitBackend,
    RateLimitMiddleware,
    RedisBackend,
    get_token_reservation,
)
from asgi_kit.types import ASGIApp, Receive, Scope, Send

RPM, TPM = 3, 10_000
# key -> (key id, organization): "broke" has no budget left this month
KEYS = {"sk-demo-1": ("key-1", "acme"), "sk-demo-2": ("key-2", "acme"), "sk-demo-broke": ("key-3", "broke")}
COMPLETION_TOKENS = 5


async def chat_completions(scope: Scope, receive: Receive, send: Send) -> None:
    """A fake ``POST /v1/chat/completions``: answers at once and settles the tokens it used."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = json.loads(body or b"{}")
    prompt = sum(len(str(m.get("content", ""))) for m in request.get("messages", [])) // 4 + 1
    usage = {"prompt_tokens": prompt, "completion_tokens": COMPLETION_TOKENS}
    usage["total_tokens"] = prompt + COMPLETION_TOKENS
    reservation = get_token_reservation(scope)
    if reservation is not None:  # a gateway hands it to the usage meter instead
        reservation.settle(usage["total_tokens"])
    answer = {
        "id": "chatcmpl-example",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "m"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}
        ],
        "usage": usage,
    }
    payload = json.dumps(answer).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": payload})


class DemoKeys:
    """Stand-in for ``AuthMiddleware``: ``Authorization: Bearer <key>`` names a key of ``KEYS``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"authorization" and value.startswith(b"Bearer "):
                    found = KEYS.get(value[7:].decode("latin-1"))
                    if found is not None:
                        key_id, org_id = found
                        principal = Principal(
                            user_id=None, org_id=org_id, role="org_user", auth_method="api_key", key_id=key_id
                        )
                        set_principal(scope, principal)
        await self.app(scope, receive, send)


def build_app(
    *,
    requests_per_minute: int = RPM,
    tokens_per_minute: int = TPM,
    window: float = 60.0,
    backend: RateLimitBackend | None = None,
) -> ASGIApp:
    """The stack: stand-in auth, rate limits, budgets (OpenAI's error shape on ``/v1/*``), the app."""
    budgets = InMemoryBudgetStore([("acme", 10**9), ("broke", 0)])
    stack = (
        Stack()
        .use(DemoKeys)
        .use(
            RateLimitMiddleware,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            window=window,
            backend=backend or InMemoryBackend(),
            openai_paths=["/v1/*"],
        )
        .use(BudgetMiddleware, store=budgets, openai_paths=["/v1/*"], cache_ttl=0)
    )
    return stack.wrap(chat_completions)


def from_environment() -> ASGIApp:
    url = os.environ.get("REDIS_URL")
    return build_app(backend=RedisBackend(url=url) if url else None)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(from_environment(), host="127.0.0.1", port=8000)
