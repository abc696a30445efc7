"""OpenAI's error body for a refusal on an OpenAI-compatible route.

A stand-in, kept small on purpose: when ``asgi_kit.errors`` renders problems in OpenAI's shape
on routes marked OpenAI-compatible, ``RateLimitMiddleware`` calls ``write_problem_details``
alone and this module goes. It maps the problem's ``detail`` to ``message``, its
``openai_type`` member to ``type`` and its ``code`` member to ``code``.
"""

from __future__ import annotations

import json

from asgi_kit._asgi.types import Scope, Send
from asgi_kit.errors import ProblemDetails


async def write_openai_error(
    send: Send, problem: ProblemDetails, headers: list[tuple[bytes, bytes]], scope: Scope
) -> None:
    extensions = problem.extensions
    error = {
        "message": problem.detail or problem.title,
        "type": extensions.get("openai_type", "rate_limit_exceeded"),
        "param": None,
        "code": extensions.get("code"),
    }
    body = json.dumps({"error": error}, separators=(",", ":")).encode()
    start_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        *headers,
    ]
    await send({"type": "http.response.start", "status": problem.status, "headers": start_headers})
    await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})


__all__ = ["write_openai_error"]
