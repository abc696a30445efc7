"""``BodyLimitMiddleware``: a 413 problem for request bodies over a size limit.

Two checks, neither of which buffers the body:

1. ``Content-Length`` over the limit: rejected before the app is called and before anything
   is read (uvicorn then never tells an ``Expect: 100-continue`` client to upload). A malformed
   ``Content-Length`` is a 400 problem, also without calling the app.
2. Always, the body is counted in a ``receive`` wrapper as it streams to the app (chunked
   uploads have no ``Content-Length``; HTTP/2 may omit it). The chunk that would take the app
   past the limit is never handed to it and nothing more is read from the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from asgi_kit._asgi.options import check_int
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.errors import BAD_REQUEST, PAYLOAD_TOO_LARGE, ProblemError, write_problem_details

#: Content-Length values above this saturate to it: no bigger body can be sent, and a
#: thousand-digit header must not cost a thousand-digit integer (or hit ``int``'s digit limit).
MAX_CONTENT_LENGTH: Final = 2**63 - 1
_MAX_DIGITS: Final = len(str(MAX_CONTENT_LENGTH))
_CONTENT_LENGTH: Final = b"content-length"
_DIGITS: Final = frozenset(b"0123456789")
INVALID_CONTENT_LENGTH: Final = BAD_REQUEST.with_detail("The Content-Length header is invalid")


class BodyTooLargeError(ProblemError):
    """Raised from ``receive`` when the request body goes past the limit.

    A :class:`~asgi_kit.errors.ProblemError` carrying the 413 problem, so an app (or a framework
    exception handler of :mod:`asgi_kit.integrations`) that lets it propagate renders the same
    413 that the layer would.
    """

    def __init__(self, max_body_size: int) -> None:
        super().__init__(PAYLOAD_TOO_LARGE.with_extensions(max_body_size=max_body_size))
        self.max_body_size = max_body_size


def parse_content_length(values: Iterable[bytes]) -> int | None:
    """Parse every ``Content-Length`` value of a request (RFC 9110 §8.6, RFC 9112 §6.3).

    Returns ``None`` when there is none. Each value is ``1*DIGIT``; a comma-separated list or
    repeated headers are accepted only when every member is the same number (the RFC allows a
    recipient to accept identical duplicates). Signs, spaces inside the number, underscores,
    non-ASCII digits and empty values are refused. Numbers above :data:`MAX_CONTENT_LENGTH`
    saturate to it.

    Raises:
        ValueError: the header is malformed or its values disagree (answer 400).
    """
    found: bytes | None = None
    for value in values:
        for member in value.split(b","):
            digits = member.strip(b" \t")
            if not digits or not _DIGITS.issuperset(digits):
                raise ValueError("Content-Length must be a decimal number")
            # Compare the digits, not the (saturated) numbers: two different huge values conflict.
            significant = digits.lstrip(b"0") or b"0"
            if found is not None and significant != found:
                raise ValueError("conflicting Content-Length values")
            found = significant
    if found is None:
        return None
    return MAX_CONTENT_LENGTH if len(found) > _MAX_DIGITS else min(int(found), MAX_CONTENT_LENGTH)


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_body_size`` bytes with a 413 problem.

    Place it at the edge, just inside the request-id, logging and metrics layers (so the 413 is
    logged and counted) and before anything that reads the body (authentication that signs the
    body, the app).

    Without a usable ``Content-Length``, bytes are counted as the app reads them. When a chunk
    would take the total past the limit, ``receive`` raises :class:`BodyTooLargeError` instead of
    returning it, and never calls the server's ``receive`` again. If the app had not started its
    response, whatever it sends after that point is dropped and the layer answers 413 itself (the
    exception is swallowed: a too-large body is the client's error, not the server's). If the app
    had already started its response, nothing can be answered: the exception propagates and the
    server closes the connection. The rest of the unread body is left to the server, which
    discards it or closes the connection.

    Reads the ``content-length`` request header; writes no scope key. Websocket and lifespan
    scopes pass through.

    Args:
        app: the wrapped ASGI app.
        max_body_size: the largest accepted body in bytes (an ``int`` > 0).
        exclude_paths: exact paths (or ``/prefix/*``) whose bodies are not limited.
    """

    def __init__(self, app: ASGIApp, *, max_body_size: int, exclude_paths: Sequence[str] = ()) -> None:
        check_int("max_body_size", max_body_size, minimum=1)
        self.app = app
        self._max = max_body_size
        self._exclude = PathFilter(exclude_paths)
        self._too_large_problem = BodyTooLargeError(max_body_size).problem

    def __repr__(self) -> str:
        return f"BodyLimitMiddleware(max_body_size={self._max!r}, exclude_paths={self._exclude!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exclude.matches(scope):
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope.get("headers") or () if k == _CONTENT_LENGTH]
        if declared:  # most requests (GET, chunked uploads) have none: no parse to call
            try:
                length = parse_content_length(declared)
            except ValueError:
                await write_problem_details(send, INVALID_CONTENT_LENGTH, scope=scope)
                return
            if length is not None and length > self._max:
                await write_problem_details(send, self._too_large_problem, scope=scope)
                return
        limited = _Limited(receive, send, self._max)
        try:
            await self.app(scope, limited.receive_within_limit, limited.send_unless_rejected)
        except Exception as exc:
            if not limited.exceeded or limited.response_started:
                raise
            await write_problem_details(send, self._too_large_problem, scope=scope)
            if not _caused_by_limit(exc):
                raise
            return
        if limited.exceeded and not limited.response_started:
            await write_problem_details(send, self._too_large_problem, scope=scope)


class _Limited:
    """One request's body count and response state.

    One slotted object rather than closure cells in a coroutine of their own: that frame and
    its cells cost every request more than this object does.
    """

    __slots__ = ("_max", "_receive", "_send", "exceeded", "received", "response_started")

    def __init__(self, receive: Receive, send: Send, max_body_size: int) -> None:
        self._receive = receive
        self._send = send
        self._max = max_body_size
        self.received = 0
        self.exceeded = False
        self.response_started = False

    async def receive_within_limit(self) -> Message:
        if self.exceeded:
            raise BodyTooLargeError(self._max)
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self._max:
                self.exceeded = True
                raise BodyTooLargeError(self._max)
        return message

    async def send_unless_rejected(self, message: Message) -> None:
        if self.exceeded and not self.response_started:
            # The 413 replaces whatever the app answers once its body was cut off (a
            # framework's own 500 for the exception, a 400 for an "incomplete" body ...).
            return
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)


def _caused_by_limit(exc: BaseException) -> bool:
    # Frameworks may wrap the error they got from receive(); follow the chain (cycle-safe).
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BodyTooLargeError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


__all__ = ["MAX_CONTENT_LENGTH", "BodyLimitMiddleware", "BodyTooLargeError", "parse_content_length"]
