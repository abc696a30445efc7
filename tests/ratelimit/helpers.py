"""Shared pieces of the rate-limit tests: a principal, a clock, an echo app, a failing backend."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from asgi_kit._asgi.principal import Principal
from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.ratelimit import Check, Decision, get_token_reservation


def principal(key: str | None = "key-1", org: str | None = "org-1", user: str | None = None) -> Principal:
    return Principal(user_id=user, org_id=org, role="org_user", auth_method="api_key", key_id=key)


class Clock:
    """Milliseconds that only move when a test moves them."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, settles a reservation with ``x-used`` tokens, answers the body back."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reservation = get_token_reservation(scope)
    used = dict(scope["headers"]).get(b"x-used")
    if reservation is not None and used is not None:
        reservation.settle(int(used))
    payload = json.dumps({"body": body.decode(), "reserved": reservation.reserved if reservation else None})
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": payload.encode()})


class FailingBackend:
    """A backend that is down (``ConnectionError``) until ``up`` is set."""

    def __init__(self) -> None:
        self.calls = 0

    async def acquire(self, checks: Sequence[Check]) -> Decision:
        self.calls += 1
        raise ConnectionError("redis://:secret@db.internal:6379 refused")

    def adjust(self, decision: Decision, index: int, check: Check, delta: int) -> None:
        return None

    async def aclose(self) -> None:
        return None


def with_principal(scope: Scope, who: Principal | None) -> Scope:
    if who is not None:
        scope["user"] = who
    return scope


def chat_body(content: str = "hello", max_tokens: Any = 10) -> bytes:
    data: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": content}]}
    if max_tokens is not None:
        data["max_tokens"] = max_tokens
    return json.dumps(data).encode()
