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
import re
import uuid
from collections.abc import Callable
from typing import Any, Final

from asgi_kit.auth import Principal, get_principal
from asgi_kit.budget import (
    BUDGET_REFUSAL,
    BUDGET_UNAVAILABLE,
    NO_RETRY,
    BudgetReservation,
    BudgetReservations,
    BudgetStoreUnavailableError,
    MeteredCall,
    Reservation,
    ReservationRefusedError,
    UsageLedger,
)
from asgi_kit.demo.usage import estimate_prompt_tokens
from asgi_kit.errors import (
    UNAUTHORIZED,
    ProblemDetails,
    ProblemError,
    new_problem_details,
    write_problem_details,
)
from asgi_kit.httpclient import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    OpenAIClient,
)
from asgi_kit.logging import get_request_id
from asgi_kit.ratelimit import get_token_reservation
from asgi_kit.types import ASGIApp, Receive, Scope, Send
from asgi_kit.validation import (
    DEFAULT_LIMITS,
    RequestLimits,
    read_json_body,
    validate_chat_completion,
    validate_embeddings,
)

MAX_REQUEST_BYTES: Final = 1 << 20
JSON_HEADERS: Final = [(b"content-type", b"application/json")]
SSE_HEADERS: Final = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
UPSTREAM_FAILED: Final = new_problem_details(502, "Bad Gateway", "The upstream model provider failed")
UPSTREAM_TIMEOUT: Final = new_problem_details(
    504, "Gateway Timeout", "The upstream model provider did not answer in time"
)
UPSTREAM_BUSY: Final = new_problem_details(
    503, "Service Unavailable", "The upstream model provider is out of capacity; try again later"
)
MODEL_NOT_FOUND: Final = new_problem_details(
    404,
    "Not Found",
    "The model does not exist or you do not have access to it.",
    code="model_not_found",
    param="model",
)
# An upstream's code or param is passed on only when it looks like one: never its text.
_SAFE_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SAFE_PARAM: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.\[\]]{0,127}")

logger = logging.getLogger("asgi_kit.demo")

ClientFactory = Callable[[], OpenAIClient]


async def read_json(receive: Receive) -> Any:
    """The request body as JSON, bounded in size (:data:`MAX_REQUEST_BYTES`), depth and numbers.

    Raises :class:`~asgi_kit.errors.ProblemError` (400 or 413) for a body that is not acceptable.
    """
    return await read_json_body(receive, max_bytes=MAX_REQUEST_BYTES)


async def send_json(send: Send, status: int, body: bytes) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _upstream_problem(exc: APIError) -> ProblemDetails:
    """The gateway's answer to a failed upstream call (never the upstream's body: it may hold another
    tenant's data, or hints about the gateway's own upstream key)."""
    if isinstance(exc, APITimeoutError):
        return UPSTREAM_TIMEOUT
    if isinstance(exc, APIConnectionError) or not isinstance(exc, APIStatusError):
        return UPSTREAM_FAILED
    status, code = exc.status_code, exc.code if isinstance(exc.code, str) else None
    if status == 404 and code == "model_not_found":
        return MODEL_NOT_FOUND
    if status == 429:
        # The gateway's own account is rate limited or out of credit: not the caller's quota.
        return UPSTREAM_BUSY
    if 400 <= status < 500 and status not in (401, 403):
        members: dict[str, str] = {}
        if code and _SAFE_CODE.fullmatch(code):
            members["code"] = code
        if isinstance(exc.param, str) and _SAFE_PARAM.fullmatch(exc.param):
            members["param"] = exc.param
        return new_problem_details(
            status, detail=f"The upstream model provider rejected the request ({status}).", **members
        )
    # 401/403 (the gateway's upstream key) and 5xx: the provider failed, not the caller.
    return UPSTREAM_FAILED


class _Settlements:
    """The reservations one call holds (budget, rate limit), settled together by the meter."""

    __slots__ = ("_reservations",)

    def __init__(self, *reservations: Reservation | None) -> None:
        self._reservations = tuple(r for r in reservations if r is not None)

    def settle(self, tokens: int) -> None:
        for reservation in self._reservations:
            reservation.settle(tokens)


class Gateway:
    """The OpenAI-compatible endpoints, bound to one upstream client and one usage ledger.

    With ``reservations``, every call reserves its worst case (prompt estimate plus
    ``max_tokens`` per choice, or the reservations' default) before the upstream call; the meter
    settles the reservation to the real usage. A call the budget cannot cover is refused with the
    budget's 429 before anything is sent upstream.
    """

    def __init__(
        self,
        client: ClientFactory,
        ledger: UsageLedger,
        *,
        reservations: BudgetReservations | None = None,
        limits: RequestLimits = DEFAULT_LIMITS,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._reservations = reservations
        self._limits = limits

    async def _meter(
        self,
        principal: Principal,
        scope: Scope,
        model: str,
        prompt: list[Any],
        completion: int | None,
        n: int = 1,
    ) -> MeteredCall[Any]:
        prompt_estimate = estimate_prompt_tokens(prompt)
        budget = await self._reserve(principal, prompt_estimate, completion, n)
        # The rate limiter took the call's estimate from the key's tokens per minute: the meter
        # settles it to the real usage too, together with the budget's reservation.
        reservation = _Settlements(budget, get_token_reservation(scope))
        # The ledger key is unique per upstream call: an incoming X-Request-ID is chosen by the
        # client, and a repeated one must not make a call free (the sink skips known keys).
        request_id = get_request_id() or "req"
        return self._ledger.meter(
            request_id=f"{request_id}.{uuid.uuid4().hex[:12]}",
            org_id=principal.org_id,
            user_id=principal.user_id,
            api_key_id=principal.key_id,
            model=model,
            prompt_estimate=prompt_estimate,
            reservation=reservation,
        )

    async def _reserve(
        self, principal: Principal, prompt: int, completion: int | None, n: int
    ) -> BudgetReservation | None:
        reservations = self._reservations
        if reservations is None or principal.org_id is None:
            return None
        worst_case = prompt + n * reservations.worst_case(0, completion)
        try:
            return await reservations.reserve(principal.org_id, worst_case)
        except ReservationRefusedError:
            raise ProblemError(BUDGET_REFUSAL, headers=[NO_RETRY]) from None
        except BudgetStoreUnavailableError:
            raise ProblemError(BUDGET_UNAVAILABLE, headers={"retry-after": "1"}) from None

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
            except ProblemError as exc:
                # Refused at the door (bad body, bad parameter): nothing was sent upstream.
                await write_problem_details(send, exc.problem, exc.headers, scope=scope)
            except APIError as exc:
                problem = _upstream_problem(exc)
                logger.warning(
                    "upstream call failed",
                    extra={
                        "error_type": type(exc).__name__,
                        "upstream_status": getattr(exc, "status_code", None),
                        "upstream_code": exc.code if isinstance(exc.code, str) else None,
                        "upstream_request_id": exc.request_id,
                        "answered_status": problem.status,
                    },
                )
                await write_problem_details(send, problem, scope=scope)

        return app

    async def list_models(
        self, principal: Principal, payload: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        models = await self._client().list_models()
        await send_json(send, 200, models.model_dump_json().encode())

    async def embeddings(
        self, principal: Principal, payload: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        payload = validate_embeddings(payload, self._limits).model_dump(exclude_unset=True)
        model, text = payload["model"], payload["input"]
        params = {k: v for k, v in payload.items() if k not in ("model", "input")}
        prompt = [{"content": item} for item in ([text] if isinstance(text, str) else text)]
        async with await self._meter(principal, scope, model, prompt, 0) as call:
            result = await self._client().embeddings(model=model, input=text, **params)
            if result.usage is not None:
                call.usage(result.usage.prompt_tokens, result.usage.completion_tokens)
        await send_json(send, 200, result.model_dump_json().encode())

    async def chat(
        self, principal: Principal, payload: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        payload = validate_chat_completion(payload, self._limits).model_dump(exclude_unset=True)
        model, messages = payload["model"], payload["messages"]
        params = {
            k: v for k, v in payload.items() if k not in ("model", "messages", "stream", "stream_options")
        }
        completion = payload.get("max_completion_tokens", payload.get("max_tokens"))
        meter = await self._meter(principal, scope, model, messages, completion, payload.get("n") or 1)
        if not payload.get("stream"):
            async with meter as call:
                completion = await self._client().chat_completion(model=model, messages=messages, **params)
                if completion.usage is not None:
                    call.usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
            await send_json(send, 200, completion.model_dump_json().encode())
            return
        async with meter as call:
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


__all__ = ["MODEL_NOT_FOUND", "Gateway", "read_json", "send_json"]
