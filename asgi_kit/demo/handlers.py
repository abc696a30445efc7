"""The demo gateway's OpenAI-compatible endpoints, written as plain ASGI apps.

Each handler authenticates nothing itself: the stack in front of it has already set the
principal (``AuthMiddleware``), checked the permission (``RequirePermission``) and the
budget (``BudgetMiddleware``). Handlers call the upstream through :class:`OpenAIClient`
inside a :class:`~asgi_kit.budget.UsageLedger` meter, which settles each call exactly once
(normal end, upstream failure, client disconnect, cancellation); no handler records usage
itself.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, Final

from asgi_kit._asgi.context import REQUEST_ID_STATE_KEY
from asgi_kit._asgi.principal import Principal, get_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.budget import MeteredCall, UsageLedger
from asgi_kit.demo.usage import estimate_prompt_tokens
from asgi_kit.errors import (
    BAD_REQUEST,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    ProblemDetails,
    new_problem_details,
    write_problem_details,
)
from asgi_kit.httpclient import APIError, APIStatusError, OpenAIClient

MAX_REQUEST_BYTES: Final = 1 << 20
JSON_HEADERS: Final = [(b"content-type", b"application/json")]
SSE_HEADERS: Final = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
UPSTREAM_FAILED: Final = new_problem_details(502, "Bad Gateway", "The upstream model provider failed")

logger = logging.getLogger("asgi_kit.demo")

ClientFactory = Callable[[], OpenAIClient]


class _BadRequest(Exception):
    def __init__(self, problem: ProblemDetails) -> None:
        super().__init__(problem.title)
        self.problem = problem


async def read_json(receive: Receive) -> dict[str, Any]:
    """The request body as a JSON object, bounded by :data:`MAX_REQUEST_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _BadRequest(BAD_REQUEST.with_detail("client disconnected"))
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise _BadRequest(PAYLOAD_TOO_LARGE)
        chunks.append(chunk)
        more = message.get("more_body", False)
    try:
        payload = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest(BAD_REQUEST.with_detail("the body must be a JSON object")) from None
    if not isinstance(payload, dict):
        raise _BadRequest(BAD_REQUEST.with_detail("the body must be a JSON object"))
    return payload


def _require(payload: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind) or (isinstance(value, str | list) and not value):
        raise _BadRequest(BAD_REQUEST.with_detail(f"'{name}' is required").with_extensions(param=name))
    return value


async def send_json(send: Send, status: int, body: bytes) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _upstream_problem(exc: APIError) -> ProblemDetails:
    # Never forward the upstream's body: it may hold another tenant's data or our upstream key hints.
    if isinstance(exc, APIStatusError) and 400 <= exc.status_code < 500 and exc.status_code not in (401, 403):
        return new_problem_details(
            exc.status_code, detail=f"upstream rejected the request ({exc.status_code})"
        )
    return UPSTREAM_FAILED


class Gateway:
    """The OpenAI-compatible endpoints, bound to one upstream client and one usage ledger."""

    def __init__(self, client: ClientFactory, ledger: UsageLedger) -> None:
        self._client = client
        self._ledger = ledger

    def _meter(self, principal: Principal, scope: Scope, model: str, prompt: list[Any]) -> MeteredCall[Any]:
        # The ledger key is unique per upstream call: an incoming X-Request-ID is chosen by the
        # client, and a repeated one must not make a call free (the sink skips known keys).
        request_id = scope.get("state", {}).get(REQUEST_ID_STATE_KEY) or "req"
        return self._ledger.meter(
            request_id=f"{request_id}.{uuid.uuid4().hex[:12]}",
            org_id=principal.org_id,
            user_id=principal.user_id,
            api_key_id=principal.key_id,
            model=model,
            prompt_estimate=estimate_prompt_tokens(prompt),
        )

    def endpoint(
        self, handler: Callable[[Principal, dict[str, Any], Scope, Receive, Send], Any], *, body: bool
    ) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            principal = get_principal(scope)
            if principal is None:
                await write_problem_details(send, UNAUTHORIZED, scope=scope)
                return
            try:
                payload = await read_json(receive) if body else {}
                await handler(principal, payload, scope, receive, send)
            except _BadRequest as exc:
                await write_problem_details(send, exc.problem, scope=scope)
            except APIError as exc:
                logger.warning("upstream call failed: %s", type(exc).__name__)
                await write_problem_details(send, _upstream_problem(exc), scope=scope)

        return app

    async def list_models(
        self, principal: Principal, payload: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        models = await self._client().list_models()
        await send_json(send, 200, models.model_dump_json().encode())

    async def embeddings(
        self, principal: Principal, payload: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        model = _require(payload, "model", str)
        text = _require(payload, "input", (str, list))
        params = {k: v for k, v in payload.items() if k not in ("model", "input")}
        prompt = [{"content": item} for item in ([text] if isinstance(text, str) else text)]
        async with self._meter(principal, scope, model, prompt) as call:
            result = await self._client().embeddings(model=model, input=text, **params)
            if result.usage is not None:
                call.usage(result.usage.prompt_tokens, result.usage.completion_tokens)
        await send_json(send, 200, result.model_dump_json().encode())

    async def chat(
        self, principal: Principal, payload: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        model = _require(payload, "model", str)
        messages = _require(payload, "messages", list)
        params = {
            k: v for k, v in payload.items() if k not in ("model", "messages", "stream", "stream_options")
        }
        if not payload.get("stream"):
            async with self._meter(principal, scope, model, messages) as call:
                completion = await self._client().chat_completion(model=model, messages=messages, **params)
                if completion.usage is not None:
                    call.usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
            await send_json(send, 200, completion.model_dump_json().encode())
            return
        async with self._meter(principal, scope, model, messages) as call:
            await self._stream(call, model, messages, params, payload, receive, send)

    async def _stream(
        self,
        call: MeteredCall[Any],
        model: str,
        messages: list[Any],
        params: dict[str, Any],
        payload: dict[str, Any],
        receive: Receive,
        send: Send,
    ) -> None:
        wants_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
        started = False
        stream = self._client().chat_completion_stream(
            model=model, messages=messages, include_usage=True, **params
        )
        try:
            async for chunk in call.stream(stream, receive=receive):
                if not started:
                    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
                    started = True
                if chunk.usage is not None and not wants_usage:
                    continue
                frame = b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        except APIError as exc:
            if not started:
                raise
            # The status is already sent: report the failure in-stream, as OpenAI does.
            logger.warning("upstream stream failed: %s", type(exc).__name__)
            error = {"error": {"message": "upstream stream failed", "type": "server_error"}}
            frame = b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": frame, "more_body": False})
            return
        except OSError:
            # The client went away (send raised, or http.disconnect): nobody to answer; the
            # meter reads the upstream on to its usage (see asgi_kit.budget.meter).
            return
        if not started:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


__all__ = ["Gateway", "read_json", "send_json"]
