"""The token reservation taken when a call starts: a prompt estimate plus the completion allowance.

OpenAI counts a request against the tokens-per-minute limit before it runs, from the prompt's
size and ``max_tokens``; so does :func:`estimate_openai_tokens`. The estimate is corrected when
the usage ledger settles the call with the real total
(:meth:`~asgi_kit.ratelimit.TokenReservation.settle`), so it only has to be of the right size,
not exact: about four characters a token for the prompt, ``max_tokens`` (or
``max_completion_tokens``, ``max_output_tokens``) for the completion, times ``n``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from asgi_kit._asgi.types import Message, Receive

CHARS_PER_TOKEN: Final = 4
_MAX_N: Final = 128
# Members of a request that generates text (and so gets a completion allowance).
_GENERATES: Final = (
    "messages",
    "prompt",
    "instructions",
    "max_completion_tokens",
    "max_tokens",
    "max_output_tokens",
)


def _text_chars(value: Any, depth: int = 0) -> int:
    """Characters of text in a prompt, messages or input value (strings, lists, ``text``/``content``)."""
    if depth > 8:  # a hostile body nests deeper than any real request
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_chars(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return sum(_text_chars(value[k], depth + 1) for k in ("content", "text", "input") if k in value)
    return 0


def _allowance(data: dict[str, Any], default: int) -> int:
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return default


def estimate_openai_tokens(body: bytes, default_completion_tokens: int) -> int:
    """Tokens to reserve for an OpenAI-shaped request body (chat, completions, responses, embeddings).

    An empty body costs nothing (a ``GET``); a body that is not a JSON object costs
    ``default_completion_tokens`` plus its size in tokens.
    """
    if not body:
        return 0
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past the decoder's stack: a depth bomb
        return default_completion_tokens + math.ceil(len(body) / CHARS_PER_TOKEN)
    if not isinstance(data, dict):
        return default_completion_tokens + math.ceil(len(body) / CHARS_PER_TOKEN)
    chars = sum(_text_chars(data[k]) for k in ("messages", "prompt", "input", "instructions") if k in data)
    prompt = math.ceil(chars / CHARS_PER_TOKEN)
    if not any(k in data for k in _GENERATES):  # embeddings, moderations: the input is the whole cost
        return prompt
    n = data.get("n", 1)
    choices = n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= _MAX_N else 1
    return prompt + _allowance(data, default_completion_tokens) * choices


async def read_body_prefix(receive: Receive, limit: int) -> tuple[Receive, bytes]:
    """Read at most about ``limit`` bytes of the request body; a receive that replays them first.

    The app gets every message as the server sent it (chunks, ``more_body``, a disconnect),
    then the rest of the body straight from the server: nothing past ``limit`` is held.
    """
    read: list[Message] = []
    size = 0
    while size <= limit:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in read if m["type"] == "http.request")

    async def replay() -> Message:
        return read.pop(0) if read else await receive()

    return replay, body[:limit]


__all__ = ["CHARS_PER_TOKEN", "estimate_openai_tokens", "read_body_prefix"]
