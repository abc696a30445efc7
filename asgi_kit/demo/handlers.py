"""The demo gateway's OpenAI-compatible endpoints, written as plain ASGI apps.

Each handler authenticates nothing itself: the stack in front of it has already set the
principal (``AuthMiddleware``), checked the permission (``RequirePermission``) and the
budget (``BudgetMiddleware``). Handlers call the upstream through :class:`OpenAIClient`
and record the tokens spent, so the next request sees the new budget.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, Final, cast

from asgi_kit._asgi.principal import Principal, get_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.budget import BudgetStore
from asgi_kit.errors import (
    BAD_REQUEST,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    ProblemDetails,
    new_problem_details,
    write_problem_details,
)
from asgi_kit.httpclient import APIError, APIStatusError, OpenAIClient
from asgi_kit.models import Usage

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
    """The OpenAI-compatible endpoints, bound to one upstream client and one budget store."""

    def __init__(self, client: ClientFactory, budgets: BudgetStore) -> None:
        self._client = client
        self._budgets = budgets

    async def _record(self, principal: Principal, model: str, usage: Any) -> None:
        if usage is None or principal.org_id is None:
            return
        try:
            await self._budgets.record_usage(
                Usage(
                    org_id=principal.org_id,
                    user_id=principal.user_id,
                    api_key_id=principal.key_id,
                    model=model,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                )
            )
        except Exception:
            logger.exception("could not record usage for organization %s", principal.org_id)

    def endpoint(
        self, handler: Callable[[Principal, dict[str, Any], Scope, Send], Any], *, body: bool
    ) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            principal = get_principal(scope)
            if principal is None:
                await write_problem_details(send, UNAUTHORIZED, scope=scope)
                return
            try:
                payload = await read_json(receive) if body else {}
                await handler(principal, payload, scope, send)
            except _BadRequest as exc:
                await write_problem_details(send, exc.problem, scope=scope)
            except APIError as exc:
                logger.warning("upstream call failed: %s", type(exc).__name__)
                await write_problem_details(send, _upstream_problem(exc), scope=scope)

        return app

    async def list_models(
        self, principal: Principal, payload: dict[str, Any], scope: Scope, send: Send
    ) -> None:
        models = await self._client().list_models()
        await send_json(send, 200, models.model_dump_json().encode())

    async def embeddings(
        self, principal: Principal, payload: dict[str, Any], scope: Scope, send: Send
    ) -> None:
        model = _require(payload, "model", str)
        text = _require(payload, "input", (str, list))
        params = {k: v for k, v in payload.items() if k not in ("model", "input")}
        result = await self._client().embeddings(model=model, input=text, **params)
        await self._record(principal, model, result.usage)
        await send_json(send, 200, result.model_dump_json().encode())

    async def chat(self, principal: Principal, payload: dict[str, Any], scope: Scope, send: Send) -> None:
        model = _require(payload, "model", str)
        messages = _require(payload, "messages", list)
        params = {
            k: v for k, v in payload.items() if k not in ("model", "messages", "stream", "stream_options")
        }
        if not payload.get("stream"):
            completion = await self._client().chat_completion(model=model, messages=messages, **params)
            await self._record(principal, model, completion.usage)
            await send_json(send, 200, completion.model_dump_json().encode())
            return
        await self._stream(principal, model, messages, params, payload, send)

    async def _stream(
        self,
        principal: Principal,
        model: str,
        messages: list[Any],
        params: dict[str, Any],
        payload: dict[str, Any],
        send: Send,
    ) -> None:
        wants_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
        usage = None
        started = False
        stream = self._client().chat_completion_stream(
            model=model, messages=messages, include_usage=True, **params
        )
        async with aclosing(cast(AsyncGenerator[Any, None], stream)) as chunks:
            try:
                async for chunk in chunks:
                    if not started:
                        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
                        started = True
                    if chunk.usage is not None:
                        usage = chunk.usage
                        if not wants_usage:
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
                await self._record(principal, model, usage)
                return
        if not started:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
        await self._record(principal, model, usage)


__all__ = ["Gateway", "read_json", "send_json"]
