"""What the HTTP client hands back: a read :class:`Response`, a :class:`StreamResponse`, and
the :class:`AttemptRecord` given to the ``on_attempt`` metrics hook.

A :class:`Response` holds its whole body, so its connection is already back in the pool (or
closed) when the caller sees it. A :class:`StreamResponse` is only valid inside
``async with client.stream(...)``; leaving the block releases or closes its connection.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from multidict import CIMultiDictProxy

from asgi_kit.httpclient.errors import AttemptTimeout, HTTPStatusError, NetworkError
from asgi_kit.httpclient.spans import error_type_of

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from asgi_kit.httpclient.spans import ClientSpans


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt, as reported to ``on_attempt`` and logged (never headers or bodies).

    Attributes:
        method: the HTTP method.
        url: the URL without query string or credentials.
        attempt: 1 for the first attempt.
        status: the response status, or ``None`` when the attempt failed without one.
        error: the error class name (``"ConnectError"``), or ``None``.
        elapsed: seconds the attempt took.
        will_retry: whether another attempt follows.
        delay: the wait before that attempt, in seconds (``0.0`` when none follows).
    """

    method: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    elapsed: float
    will_retry: bool
    delay: float


class Response:
    """A response whose body has been read in full.

    Attributes:
        status: the status code.
        headers: the response headers (case-insensitive, duplicates kept).
        content: the body bytes.
        url: the final URL (after redirects).
        method: the request method.
        attempts: how many attempts the call took.
    """

    __slots__ = ("attempts", "content", "headers", "method", "status", "url")

    def __init__(
        self,
        *,
        status: int,
        headers: CIMultiDictProxy[str],
        content: bytes,
        url: str,
        method: str,
        attempts: int,
    ) -> None:
        self.status = status
        self.headers = headers
        self.content = content
        self.url = url
        self.method = method
        self.attempts = attempts

    @property
    def is_success(self) -> bool:
        """``True`` for a 2xx status."""
        return 200 <= self.status < 300

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded strictly (raises ``UnicodeDecodeError`` on bad bytes)."""
        return self.content.decode(encoding)

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` on bad JSON or bytes)."""
        return jsonlib.loads(self.content)

    def raise_for_status(self) -> Response:
        """Return ``self`` for a status below 400, raise :class:`HTTPStatusError` otherwise."""
        if self.status >= 400:
            raise HTTPStatusError(
                f"{self.method} {self.url} answered {self.status}",
                response=self,
                method=self.method,
                url=self.url,
                attempts=self.attempts,
            )
        return self

    def __repr__(self) -> str:
        return f"<Response [{self.status}] {self.method} {self.url} attempts={self.attempts}>"


class StreamResponse:
    """A response whose body is read as it arrives, inside ``async with client.stream(...)``.

    A streamed call is retried only until its headers arrive; once the caller holds this
    object nothing is retried. Transport failures while reading raise
    :class:`~asgi_kit.httpclient.NetworkError` or :class:`~asgi_kit.httpclient.AttemptTimeout`
    (the idle ``read`` timeout between chunks), never an aiohttp exception.

    The request's ``CLIENT`` span (when spans are on) ends with the stream: when the block is
    left, whether the body was read to the end, abandoned, or broke (``error.type`` then names
    the error).
    """

    __slots__ = (
        "_consumed",
        "_content",
        "_error_type",
        "_raw",
        "_span",
        "_spans",
        "attempts",
        "headers",
        "method",
        "status",
        "url",
    )

    def __init__(
        self,
        *,
        raw: aiohttp.ClientResponse | None,
        content: bytes | None,
        status: int,
        headers: CIMultiDictProxy[str],
        url: str,
        method: str,
        attempts: int,
        span: Span | None = None,
        spans: ClientSpans | None = None,
    ) -> None:
        self._raw = raw
        self._content = content
        self._consumed = raw is None
        self._span = span
        self._spans = spans
        self._error_type: str | None = None
        self.status = status
        self.headers = headers
        self.url = url
        self.method = method
        self.attempts = attempts

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body chunks, as they arrive."""
        if self._raw is None:
            if self._content:
                yield self._content
            return
        try:
            async for chunk in self._raw.content.iter_any():
                yield chunk
        except TimeoutError as exc:  # aiohttp's sock_read timeout between two chunks
            self._error_type = error_type_of(AttemptTimeout)
            raise AttemptTimeout(
                f"no data from {self.url} within the read timeout",
                method=self.method,
                url=self.url,
                attempts=self.attempts,
            ) from exc
        except aiohttp.ClientError as exc:
            self._error_type = error_type_of(NetworkError)
            raise NetworkError(
                f"stream from {self.url} broke: {exc}",
                method=self.method,
                url=self.url,
                attempts=self.attempts,
            ) from exc
        self._consumed = True

    async def read(self) -> bytes:
        """The rest of the body, in one piece."""
        return b"".join([chunk async for chunk in self.iter_bytes()])

    def _finish(self) -> None:
        span, self._span = self._span, None
        if span is not None and self._spans is not None:
            self._spans.end(span, self.status, self._error_type)
        # A fully read body leaves a reusable connection; an abandoned one must be closed,
        # or the pool would hand out a connection with half a response still on it.
        if self._raw is not None:
            # at_eof: the body ended on the wire even if the reader stopped early (after
            # ``data: [DONE]`` the chunked terminator is usually already in), so the
            # connection can go back to the pool instead of costing a new handshake.
            if self._consumed or self._raw.content.at_eof():
                self._raw.release()
            else:
                self._raw.close()

    def __repr__(self) -> str:
        return f"<StreamResponse [{self.status}] {self.method} {self.url} attempts={self.attempts}>"


__all__ = ["AttemptRecord", "Response", "StreamResponse"]
