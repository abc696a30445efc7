"""Starlette-shaped ASGI aliases, so any framework's app fits our signatures without casts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
RawHeaders: TypeAlias = "list[tuple[bytes, bytes]]"

__all__ = ["ASGIApp", "Message", "RawHeaders", "Receive", "Scope", "Send"]
