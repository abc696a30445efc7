"""``RequestIDMiddleware``: one id per HTTP request and websocket connection.

The id is what joins an access-log line, the app's own log records, a problem+json body and
an upstream service's logs. An incoming id is kept only when it is well formed, so a client
cannot inject CR/LF, markup or megabytes into every log line of the request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Final

from asgi_kit._asgi.context import REQUEST_ID_STATE_KEY, request_id_var
from asgi_kit._asgi.headers import header_name
from asgi_kit._asgi.options import check_bool, check_callable
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send

MAX_REQUEST_ID_LENGTH: Final = 128

# Hyphenated UUIDs, nginx's 32-hex $request_id, AWS X-Amzn-Trace-Id-like dotted ids and ULIDs
# all fit; anything with spaces, quotes, CR/LF or non-ASCII does not.
_VALID_ID: Final = re.compile(rb"[A-Za-z0-9._-]{1,%d}" % MAX_REQUEST_ID_LENGTH)

# The messages that carry response headers: HTTP, the websocket handshake answer, and the
# websocket denial response extension.
_HEADER_MESSAGES: Final = frozenset(
    {"http.response.start", "websocket.accept", "websocket.http.response.start"}
)


# Ids drawn from os.urandom in batches: one system call per _BATCH ids instead of one each
# (uuid4 costs five times more than a single urandom call). list.pop and list.extend are atomic,
# so threads never share an id; a forked child drops the parent's batch so it never repeats one.
_BATCH: Final = 128
_pool: list[str] = []
_take: Final = _pool.pop
os.register_at_fork(after_in_child=_pool.clear)
# The batch is cut up by map() in C rather than a comprehension: a third of an id's cost.
_SLICES: Final = tuple(slice(i, i + 32) for i in range(32, 32 * _BATCH, 32))


def _refill() -> str:
    hexed = os.urandom(16 * _BATCH).hex()
    _pool.extend(map(hexed.__getitem__, _SLICES))
    return hexed[:32]


def new_request_id() -> str:
    """A fresh random id: 32 lowercase hex characters (128 bits, nginx ``$request_id`` format)."""
    try:
        return _take()
    except IndexError:
        return _refill()


def is_valid_request_id(value: str | bytes) -> bool:
    """Whether ``value`` is an acceptable incoming id: 1 to 128 characters of ``[A-Za-z0-9._-]``."""
    if isinstance(value, str):
        if not value.isascii():
            return False
        value = value.encode("ascii")
    return _VALID_ID.fullmatch(value) is not None


class RequestIDMiddleware:
    """Give every HTTP request and websocket connection a request id.

    Place it first (outermost) in the stack: the other layers read the id, and the problem+json
    500s that ``ProblemDetailsMiddleware`` renders inside it carry the echoed header too.

    Reads the ``header`` request header. Writes ``scope["state"]["request_id"]``
    (``request.state.request_id`` in Starlette, FastAPI and Litestar), the request-id contextvar
    (``asgi_kit.logging.get_request_id()``, reset when the request ends) and the ``header``
    response header on ``http.response.start`` and ``websocket.accept``.

    Args:
        app: the wrapped ASGI app.
        header: the request and response header holding the id.
        trust_incoming: keep a well-formed incoming id (set ``False`` at an edge that faces the
            internet and does not want client-chosen ids). A malformed id, or the header sent
            more than once, always gets a fresh id.
        exclude_paths: exact paths (or ``/prefix/*``) that get no id and no header.
        generator: makes new ids; :func:`new_request_id` by default. Its ids are not validated.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        header: str = "X-Request-ID",
        trust_incoming: bool = True,
        exclude_paths: Sequence[str] = (),
        generator: Callable[[], str] = new_request_id,
    ) -> None:
        self.app = app
        self._header = header_name(header, option="header")  # the hot path compares bytes
        self._trust_incoming = check_bool("trust_incoming", trust_incoming)
        check_callable("generator", generator)
        self._exclude = PathFilter(exclude_paths)
        self._generator = generator
        self._default_generator = generator is new_request_id

    def __repr__(self) -> str:
        return (
            f"RequestIDMiddleware(header={self._header.decode()!r}, trust_incoming={self._trust_incoming}, "
            f"exclude_paths={self._exclude!r})"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._exclude.matches(scope):
            await self.app(scope, receive, send)
            return
        request_id: str | None = None
        if self._trust_incoming:  # the scan inlined: one method call fewer on every request
            wanted = self._header
            found: bytes | None = None
            for name, value in scope.get("headers") or ():
                if name == wanted:
                    if found is not None:
                        # Two ids for one request cannot both be right: start afresh.
                        found = None
                        break
                    found = value
            if found is not None and _VALID_ID.fullmatch(found) is not None:
                request_id = found.decode("ascii")
        if request_id is None:
            if self._default_generator:  # new_request_id inlined: one call fewer per request
                try:
                    request_id = _take()
                except IndexError:
                    request_id = _refill()
            else:
                request_id = self._generator()
        state = scope.get("state")
        if type(state) is dict:
            state[REQUEST_ID_STATE_KEY] = request_id
        elif state is None:
            scope["state"] = {REQUEST_ID_STATE_KEY: request_id}
        else:  # a mapping of another type, or a framework's State object
            _store(state, request_id)
        echoed = (self._header, request_id.encode("latin-1", "replace"))
        token = request_id_var.set(request_id)

        # A plain function handing back send's awaitable, not a coroutine of its own: every
        # message then costs one coroutine fewer, and the header is added before anything awaits.
        def send_with_request_id(message: Message) -> Awaitable[None]:
            if message["type"] in _HEADER_MESSAGES:
                message["headers"] = [*message.get("headers", ()), echoed]
            return send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            request_id_var.reset(token)


def _store(state: object, request_id: str) -> None:
    if isinstance(state, MutableMapping):
        state[REQUEST_ID_STATE_KEY] = request_id
    else:
        setattr(state, REQUEST_ID_STATE_KEY, request_id)


__all__ = ["MAX_REQUEST_ID_LENGTH", "RequestIDMiddleware", "is_valid_request_id", "new_request_id"]
