"""A fake OpenAI-compatible upstream: a pure ASGI app for tests, demos and benchmarks.

Serves ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions`` (whole, or
streamed as SSE ``data:`` frames ending with ``data: [DONE]``) and ``POST /v1/embeddings``
(float or base64 vectors), in the wire format of the real API: the official ``openai`` package
is tested against it. The reply echoes the last user message (or a fixed ``reply``), streamed
word by word with an optional ``token_delay``; token counts are words, so budgets and usage
metering see stable numbers. Every response has an ``x-request-id``; errors use the API's
``{"error": {...}}`` shape. It records the requests it saw in ``requests`` (method, path,
headers) so tests can check what arrived (trace and request ids, idempotency keys).

For usage-metering tests it counts the tokens it generated per request, keyed by the
incoming ``X-Request-ID`` (``generated``; also served as JSON at ``GET /_fake/generated``):
the prompt tokens plus every completion token it sent. A streamed chat request with the
header ``x-fake-fail-after: <k>`` fails after ``k`` content chunks: an error event and the end
of the body, with no usage and no ``[DONE]``, as an upstream that broke mid-answer; a
``[fail-after:<k>]`` marker in the last user message does the same (it travels through any
gateway, where a header may not).

Run it alone with ``uvicorn asgi_kit.testing.fake_upstream:app``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import struct
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from asgi_kit._asgi.lifespan import answer_lifespan
from asgi_kit._asgi.options import check_int, check_number, check_str, check_strings
from asgi_kit._asgi.types import Receive, Scope, Send

_WORD: Final = re.compile(r"\S+\s*")
_MAX_BODY: Final = 1 << 20
_MAX_GENERATED: Final = 100_000
_FAIL_MARKER: Final = re.compile(r"\[fail-after:(\d+)\]")


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A request the fake received."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first value of a header, looked up case-insensitively."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)


class _Reject(Exception):
    def __init__(
        self, status: int, message: str, type_: str, code: str | None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param


class FakeOpenAI:
    """A deterministic OpenAI-compatible ASGI app.

    Args:
        models: the model ids it serves (others get a 404 ``model_not_found``).
        reply: a fixed completion text; by default it echoes the last user message.
        token_delay: seconds between streamed chunks (to watch tokens arrive).
        api_key: when set, requests must send ``Authorization: Bearer <api_key>`` (401 otherwise).
        embedding_dimensions: length of the embedding vectors (``dimensions`` overrides it).
    """

    def __init__(
        self,
        *,
        models: Sequence[str] = ("fake-gpt-4o-mini", "fake-embedding"),
        reply: str | None = None,
        token_delay: float = 0.0,
        api_key: str | None = None,
        embedding_dimensions: int = 8,
    ) -> None:
        self.models = check_strings("models", models)
        if not self.models:
            raise ValueError("models must name at least one model")
        check_number("token_delay", token_delay, minimum=0)
        check_int("embedding_dimensions", embedding_dimensions, minimum=1)
        if api_key is not None:
            check_str("api_key", api_key)
        self.reply = reply
        self.token_delay = token_delay
        self._auth = None if api_key is None else f"Bearer {api_key}"
        self.embedding_dimensions = embedding_dimensions
        # Bounded: the demo serves it for as long as it runs, and only recent requests matter to tests.
        self.requests: deque[SeenRequest] = deque(maxlen=1000)
        #: tokens generated per incoming X-Request-ID (prompt + completion tokens sent), bounded
        self.generated: OrderedDict[str, int] = OrderedDict()

    def __repr__(self) -> str:
        return f"FakeOpenAI(models={self.models!r}, token_delay={self.token_delay!r}, auth={self._auth is not None})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = tuple(
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ())
        )
        seen = SeenRequest(scope["method"], scope["path"], headers)
        self.requests.append(seen)
        request_id = f"req_{uuid.uuid4().hex}"
        try:
            if self._auth is not None and seen.header("authorization") != self._auth:
                raise _Reject(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
            await self._route(seen, await _read_json(receive, seen.method), send, request_id)
        except _Reject as exc:
            error = {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}
            await _send_json(send, exc.status, {"error": error}, request_id)

    async def _route(self, seen: SeenRequest, body: Any, send: Send, request_id: str) -> None:
        method, path = seen.method, seen.path.rstrip("/")
        if method == "GET" and path == "/_fake/generated":
            await _send_json(send, 200, dict(self.generated), request_id)
        elif method == "GET" and path == "/v1/models":
            await _send_json(
                send, 200, {"object": "list", "data": [_model(m) for m in self.models]}, request_id
            )
        elif method == "GET" and path.startswith("/v1/models/"):
            await _send_json(send, 200, _model(self._model(path.removeprefix("/v1/models/"))), request_id)
        elif method == "POST" and path == "/v1/chat/completions":
            await self._chat(body, send, request_id, seen)
        elif method == "POST" and path == "/v1/embeddings":
            result = self._embeddings(body)
            self._count(seen, result["usage"]["prompt_tokens"])
            await _send_json(send, 200, result, request_id)
        else:
            raise _Reject(
                404, f"Unknown request URL: {method} {seen.path}", "invalid_request_error", "unknown_url"
            )

    def _model(self, model: Any) -> str:
        if not isinstance(model, str) or not model:
            raise _Reject(400, "you must provide a model parameter", "invalid_request_error", None, "model")
        if model not in self.models:
            raise _Reject(
                404,
                f"The model `{model}` does not exist",
                "invalid_request_error",
                "model_not_found",
                "model",
            )
        return model

    def _count(self, seen: SeenRequest, tokens: int) -> None:
        key = seen.header("x-request-id")
        if key is None:
            return
        self.generated[key] = self.generated.get(key, 0) + tokens
        self.generated.move_to_end(key)
        while len(self.generated) > _MAX_GENERATED:
            self.generated.popitem(last=False)

    async def _chat(self, body: Any, send: Send, request_id: str, seen: SeenRequest) -> None:
        model = self._model(body.get("model"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Reject(
                400, "messages must be a non-empty array", "invalid_request_error", None, "messages"
            )
        prompt = " ".join(_text(m.get("content")) for m in messages if isinstance(m, dict))
        last_user = next(
            (m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), {}
        )
        tokens = _WORD.findall(
            self.reply if self.reply is not None else f"Echo: {_text(last_user.get('content'))}"
        )
        finish = "stop"
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(max_tokens, int) and 0 < max_tokens < len(tokens):
            tokens, finish = tokens[:max_tokens], "length"
        usage = _usage(len(_WORD.findall(prompt)), len(tokens))
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        base = {"id": completion_id, "created": created, "model": model, "system_fingerprint": "fp_fake"}
        if not body.get("stream"):
            self._count(seen, usage["total_tokens"])
            message = {"role": "assistant", "content": "".join(tokens), "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            await _send_json(
                send,
                200,
                {**base, "object": "chat.completion", "choices": [choice], "usage": usage},
                request_id,
            )
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        chunk = {**base, "object": "chat.completion.chunk"}

        async def event(choices: list[dict[str, Any]], **extra: Any) -> None:
            payload = {**chunk, "choices": choices, **extra}
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + _dumps(payload) + b"\n\n",
                    "more_body": True,
                }
            )

        def delta_choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        extra = {"usage": None} if include_usage else {}
        fail_after = _fail_after(seen, _text(last_user.get("content")))
        self._count(seen, usage["prompt_tokens"])
        try:
            await event([delta_choice({"role": "assistant", "content": "", "refusal": None})], **extra)
            for index, token in enumerate(tokens):
                if index == fail_after:
                    error = {"message": "the model failed mid-answer", "type": "server_error", "code": None}
                    frame = b"event: error\ndata: " + _dumps({"error": error}) + b"\n\n"
                    await send({"type": "http.response.body", "body": frame, "more_body": False})
                    return
                if self.token_delay:
                    await asyncio.sleep(self.token_delay)
                await event([delta_choice({"content": token})], **extra)
                self._count(seen, 1)
            await event([delta_choice({}, finish)], **extra)
            if include_usage:
                await event([], usage=usage)
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
        except OSError:  # the client went away mid-stream (uvicorn's ClientDisconnected): stop quietly
            return

    def _embeddings(self, body: Any) -> dict[str, Any]:
        model = self._model(body.get("model"))
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs:
            raise _Reject(
                400, "input must be a string or a non-empty array", "invalid_request_error", None, "input"
            )
        dimensions = body.get("dimensions") or self.embedding_dimensions
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            vector = _vector(json.dumps(item), dimensions)
            encoded: Any = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        prompt_tokens = sum(len(_WORD.findall(_text(item))) for item in inputs)
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        return {"object": "list", "data": data, "model": model, "usage": usage}


def _fail_after(seen: SeenRequest, text: str) -> int | None:
    marker = _FAIL_MARKER.search(text)
    raw = marker.group(1) if marker else seen.header("x-fake-fail-after")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "asgi-kit"}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _text(content: Any) -> str:
    """Text of a message ``content``: a string, or the ``text`` parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector derived from the text's hash."""
    seed = hashlib.sha256(text.encode()).digest()
    values = [((seed[i % len(seed)] + i) % 256) / 127.5 - 1.0 for i in range(dimensions)]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in values]


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def _read_json(receive: Receive, method: str) -> Any:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > _MAX_BODY:
            raise _Reject(413, "request body too large", "invalid_request_error", None)
        if not message.get("more_body"):
            break
    raw = b"".join(chunks)
    if method != "POST":
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise _Reject(
            400, "We could not parse the JSON body of your request.", "invalid_request_error", None
        ) from None
    if not isinstance(body, dict):
        raise _Reject(400, "the request body must be a JSON object", "invalid_request_error", None)
    return body


async def _send_json(send: Send, status: int, payload: Any, request_id: str) -> None:
    body = _dumps(payload)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


#: A ready-made instance: ``uvicorn asgi_kit.testing.fake_upstream:app``.
app: Final = FakeOpenAI()

__all__ = ["FakeOpenAI", "SeenRequest", "app"]
