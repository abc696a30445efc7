"""``OpenAIClient``: chat completions (whole and streamed), embeddings and models from any
OpenAI-compatible upstream, with typed responses and typed errors.

Where it belongs: in the app that routes to upstreams (the demo gateway), one client per
upstream, opened at start-up. It runs on :class:`~asgi_kit.httpclient.HTTPClient`, so it
inherits the retry rules, timeouts, deadline, ``X-Request-ID``/``traceparent`` propagation and
per-attempt logs. It sends ``Authorization: Bearer <api_key>``; the key never appears in a
``repr``, a log record or an error.

Retries: every POST carries a fresh ``Idempotency-Key`` per call (``idempotency_keys=True``,
the default), which makes 408/429/5xx and dropped connections retryable as the official SDKs
do; set it to ``False`` to retry POSTs only when the connection was refused. A 429
``insufficient_quota`` and a ``context_length_exceeded`` are answers, not blips: never retried.

Nothing below raises ``KeyError``, ``JSONDecodeError`` or an aiohttp exception: every failure
is one of :mod:`asgi_kit.httpclient.openai_errors`.
"""

from __future__ import annotations

import json as jsonlib
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

from pydantic import BaseModel, ValidationError

from asgi_kit._asgi.options import check_str
from asgi_kit.httpclient.client import HTTPClient
from asgi_kit.httpclient.errors import HTTPClientError, RetryAfterTooLong, TimeoutException
from asgi_kit.httpclient.openai_errors import (
    APIConnectionError,
    APIReportedError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    IncompleteStreamError,
    status_error_class,
)
from asgi_kit.httpclient.openai_models import (
    ChatCompletion,
    ChatCompletionChunk,
    EmbeddingsResponse,
    ModelList,
)
from asgi_kit.httpclient.policy import Clock, Limits, RetryPolicy
from asgi_kit.httpclient.response import AttemptRecord, Response
from asgi_kit.httpclient.sse import ServerSentEvent, SSEDecodeError, SSEDecoder

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

#: Error codes that retrying cannot fix.
NON_RETRYABLE_CODES: Final = frozenset({"insufficient_quota", "context_length_exceeded"})
_BODY_PREVIEW: Final = 2000
_M = TypeVar("_M", bound=BaseModel)


def _error_fields(payload: Any) -> dict[str, Any]:
    """``message``/``code``/``type``/``param`` from an ``{"error": {...}}`` body, tolerating any shape."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, str):
        return {"message": error}
    if not isinstance(error, dict):
        return {}
    fields = {key: error.get(key) for key in ("message", "code", "type", "param")}
    return {key: str(value) for key, value in fields.items() if value is not None}


def _decode_body(content: bytes) -> Any:
    """JSON from the body, or the (trimmed, lossy) text when it is not JSON."""
    try:
        return jsonlib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return content[:_BODY_PREVIEW].decode("utf-8", "replace")


def _gives_up(response: Response) -> bool:
    """RetryPolicy.give_up: do not retry quota exhaustion or an over-long prompt."""
    return _error_fields(_decode_body(response.content)).get("code") in NON_RETRYABLE_CODES


def status_error(response: Response, *, retry_after: float | None = None) -> APIStatusError:
    """The typed error for an error response (status, body, upstream request id)."""
    body = _decode_body(response.content)
    fields = _error_fields(body)
    message = fields.pop("message", None) or f"upstream answered HTTP {response.status}"
    return status_error_class(response.status)(
        message,
        status_code=response.status,
        retry_after=retry_after,
        body=body,
        request_id=response.headers.get("x-request-id"),
        **fields,
    )


class OpenAIClient:
    """A typed client for an OpenAI-compatible API.

    Args:
        base_url: the API root including the version, e.g. ``"https://api.openai.com/v1"``.
        api_key: sent as ``Authorization: Bearer``; ``None`` sends none (local servers).
        organization: sent as ``OpenAI-Organization`` when given.
        timeout: seconds per attempt (default 60; for a stream: until the headers).
        connect_timeout: seconds to connect (default 5).
        read_timeout: longest silence between stream chunks (default: ``timeout``).
        max_retries: retries after the first attempt (default 2, as the official SDK).
        max_retry_after: longest ``Retry-After`` honoured (default 60).
        deadline: seconds a whole call may take (default none).
        headers: extra headers on every request.
        idempotency_keys: send a fresh ``Idempotency-Key`` with each POST so it may be retried.
        limits, clock, on_attempt, logger, tracer_provider: passed to the underlying
            :class:`HTTPClient` (``tracer_provider``: where each request's ``CLIENT`` span goes).
        http_client: use this (already configured) client instead of building one; it is not
            opened or closed by this object.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        organization: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        read_timeout: float | None = None,
        max_retries: int = 2,
        max_retry_after: float = 60.0,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_keys: bool = True,
        limits: Limits | None = None,
        clock: Clock | None = None,
        on_attempt: Callable[[AttemptRecord], object] | None = None,
        logger: logging.Logger | None = None,
        tracer_provider: TracerProvider | None = None,
        http_client: HTTPClient | None = None,
    ) -> None:
        if not check_str("base_url", base_url, allow_empty=True):
            raise ValueError("base_url must be the API root, e.g. 'https://api.openai.com/v1'")
        if api_key is not None:
            check_str("api_key", api_key)
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._headers = dict(headers or {})
        if organization:
            self._headers["OpenAI-Organization"] = organization
        self._idempotency_keys = idempotency_keys
        self._owns_http = http_client is None
        self._http = http_client or HTTPClient(
            timeout=timeout,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=RetryPolicy(max_retries=max_retries, max_retry_after=max_retry_after, give_up=_gives_up),
            deadline=deadline,
            limits=limits,
            clock=clock,
            on_attempt=on_attempt,
            logger=logger,
            tracer_provider=tracer_provider,
        )
        self._policy = replace(self._http.retry, give_up=_gives_up)

    def __repr__(self) -> str:
        key = None if self._api_key is None else "'***'"
        return f"OpenAIClient(base_url={self._base!r}, api_key={key}, http={self._http!r})"

    async def __aenter__(self) -> Self:
        if self._owns_http:
            await self._http.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP client if this object built it."""
        if self._owns_http:
            await self._http.aclose()

    async def chat_completion(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        idempotency_key: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        **params: Any,
    ) -> ChatCompletion:
        """``POST /chat/completions``.

        ``params`` (``temperature``, ``max_tokens``, ``tools``...) pass into the body;
        ``idempotency_key`` (default: a fresh one), ``timeout`` (per attempt) and ``deadline``
        (whole call) override the client's for this call.
        """
        body = {**params, "model": model, "messages": list(messages), "stream": False}
        response = await self._call(
            "POST",
            "chat/completions",
            body,
            idempotency_key=idempotency_key,
            timeout=timeout,
            deadline=deadline,
        )
        return self._parse(response, ChatCompletion)

    async def chat_completion_stream(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        include_usage: bool = False,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        **params: Any,
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        """``POST /chat/completions`` with ``stream: true``: yield each chunk as it arrives.

        ``include_usage`` asks for a last chunk carrying the token counts; the other keywords
        are as for :meth:`chat_completion` (``timeout`` and ``deadline`` cover the time until
        the stream starts).

        Retried only until the response starts. Close early with ``contextlib.aclosing``
        (``async with aclosing(client.chat_completion_stream(...)) as chunks:``) so the
        connection is freed at once when you stop reading before the end.

        Raises:
            APIReportedError: an error event inside the stream.
            IncompleteStreamError: the stream ended without ``data: [DONE]``.
            APIConnectionError: the connection broke mid-stream (``APITimeoutError``: it went silent).
        """
        body: dict[str, Any] = {**params, "model": model, "messages": list(messages), "stream": True}
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        with self._translate():
            async with self._http.stream(
                "POST",
                self._url("chat/completions"),
                json=body,
                **self._request_options("POST", idempotency_key, timeout, deadline),
            ) as response:
                request_id = response.headers.get("x-request-id")
                if response.status >= 400:
                    raise status_error(self._as_response(response, await response.read()))
                content_type = response.headers.get("Content-Type", "")
                if not content_type.startswith("text/event-stream"):
                    payload = self._json(await response.read(), response.status, request_id)
                    self._raise_reported(payload, request_id)
                    raise APIResponseValidationError(
                        f"expected an event stream, got {content_type or 'no content type'}",
                        status_code=response.status,
                        body=payload,
                        request_id=request_id,
                    )
                decoder = SSEDecoder()
                async for raw in response.iter_bytes():
                    for event in self._sse_events(decoder, raw, request_id):
                        if event.data == "[DONE]":
                            return
                        yield self._chunk(event, request_id)
                for event in self._sse_events(decoder, None, request_id):
                    if event.data == "[DONE]":
                        return
                    yield self._chunk(event, request_id)
                raise IncompleteStreamError("the stream ended without data: [DONE]", request_id=request_id)

    @staticmethod
    def _sse_events(decoder: SSEDecoder, raw: bytes | None, request_id: str | None) -> list[ServerSentEvent]:
        try:
            return decoder.feed(raw) if raw is not None else decoder.close()
        except SSEDecodeError as exc:
            raise APIResponseValidationError(str(exc), request_id=request_id) from exc

    def _chunk(self, event: ServerSentEvent, request_id: str | None) -> ChatCompletionChunk:
        payload = self._json(event.data.encode(), 200, request_id)
        self._raise_reported(payload, request_id, force=event.event == "error")
        return self._validate(payload, ChatCompletionChunk, 200, request_id)

    async def embeddings(
        self,
        *,
        model: str,
        input: str | Sequence[str],
        timeout: float | None = None,
        deadline: float | None = None,
        **params: Any,
    ) -> EmbeddingsResponse:
        """``POST /embeddings`` for one text or a batch (``dimensions``, ``encoding_format``... pass through)."""
        body = {**params, "model": model, "input": input if isinstance(input, str) else list(input)}
        response = await self._call("POST", "embeddings", body, timeout=timeout, deadline=deadline)
        return self._parse(response, EmbeddingsResponse)

    async def list_models(self) -> ModelList:
        """``GET /models``."""
        return self._parse(await self._call("GET", "models", None), ModelList)

    def _url(self, path: str) -> str:
        return f"{self._base}/{path}"

    def _request_options(
        self,
        method: str,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        headers = dict(self._headers)
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if idempotency_key is None and method == "POST" and self._idempotency_keys:
            idempotency_key = f"asgi-kit-{uuid.uuid4().hex}"
        options: dict[str, Any] = {
            "headers": headers,
            "idempotency_key": idempotency_key,
            "retry": self._policy,
        }
        if timeout is not None:
            options["timeout"] = timeout
        if deadline is not None:
            options["deadline"] = deadline
        return options

    async def _call(self, method: str, path: str, body: Any, **call: Any) -> Response:
        with self._translate():
            options = self._request_options(method, **call)
            if body is None:
                response = await self._http.request(method, self._url(path), **options)
            else:
                response = await self._http.request(method, self._url(path), json=body, **options)
        if response.status >= 400:
            raise status_error(response)
        return response

    @staticmethod
    @contextmanager
    def _translate() -> Iterator[None]:
        """Turn the HTTP layer's errors into the API's; nothing from aiohttp gets through."""
        try:
            yield
        except RetryAfterTooLong as exc:
            raise status_error(exc.response, retry_after=exc.retry_after) from exc
        except TimeoutException as exc:
            raise APITimeoutError(str(exc)) from exc
        except HTTPClientError as exc:
            raise APIConnectionError(str(exc)) from exc

    @staticmethod
    def _as_response(response: Any, content: bytes) -> Response:
        return Response(
            status=response.status,
            headers=response.headers,
            content=content,
            url=response.url,
            method=response.method,
            attempts=response.attempts,
        )

    def _parse(self, response: Response, model: type[_M]) -> _M:
        request_id = response.headers.get("x-request-id")
        payload = self._json(response.content, response.status, request_id)
        self._raise_reported(payload, request_id)
        return self._validate(payload, model, response.status, request_id)

    @staticmethod
    def _json(content: bytes, status: int, request_id: str | None) -> Any:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise APIResponseValidationError(
                "response body is not valid UTF-8", status_code=status, request_id=request_id
            ) from exc
        try:
            return jsonlib.loads(text)
        except ValueError as exc:
            raise APIResponseValidationError(
                f"response body is not JSON: {text[:80]!r}",
                status_code=status,
                body=text[:_BODY_PREVIEW],
                request_id=request_id,
            ) from exc

    @staticmethod
    def _raise_reported(payload: Any, request_id: str | None, *, force: bool = False) -> None:
        if force or (isinstance(payload, dict) and payload.get("error") is not None):
            fields = _error_fields(payload)
            message = fields.pop("message", None) or "the upstream reported an error"
            raise APIReportedError(message, body=payload, request_id=request_id, **fields)

    @staticmethod
    def _validate(payload: Any, model: type[_M], status: int, request_id: str | None) -> _M:
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise APIResponseValidationError(
                f"response is not a valid {model.__name__}: {exc.error_count()} problem(s), "
                f"first: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}",
                status_code=status,
                body=payload,
                request_id=request_id,
            ) from exc


__all__ = ["NON_RETRYABLE_CODES", "OpenAIClient", "status_error"]
