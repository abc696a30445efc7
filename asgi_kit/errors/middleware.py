"""``ProblemDetailsMiddleware``: exceptions become RFC 9457 responses.

Place it just inside the request-id layer (so the id is known) and outside everything
that may raise. ``ProblemError`` renders as its problem; any other exception raised
before the response started becomes a 500 problem holding no exception text, class name,
path or DSN, logged once with the request id, then re-raised so servers and test clients
still see it (Starlette's ``ServerErrorMiddleware`` does the same). After the response
started nothing can be rendered: the error is logged and re-raised, and the server ends
the connection — never a second ``http.response.start``.

With ``openai_paths`` it also marks the OpenAI-compatible routes in the scope
(:data:`~asgi_kit.errors.openai.ERROR_FORMAT_KEY`), so every error rendered inside it, by any
layer, takes OpenAI's ``{"error": {...}}`` shape there.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Sequence

from asgi_kit._asgi.context import get_request_id, scope_request_id
from asgi_kit._asgi.options import check_bool
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.errors.openai import ERROR_FORMAT_KEY, OPENAI_FORMAT, OpenAIRoutes
from asgi_kit.errors.problem import INTERNAL_SERVER_ERROR, ProblemDetails, ProblemError, write_problem_details

logger = logging.getLogger("asgi_kit.errors")


class ProblemDetailsMiddleware:
    """Turn exceptions into problem+json responses.

    Args:
        app: the wrapped ASGI app.
        debug: add the exception type, message and traceback to the 500 body. Never in production.
        reraise: re-raise unexpected exceptions after answering (default), so the server logs
            them and test clients raise; set ``False`` to swallow them once answered (also an
            exception raised after the app's own complete response, as Starlette re-raises
            after its 500). An exception in the middle of a body is always re-raised: the
            server must cut the connection, or the client would take a truncated body for whole.
        logger: where unexpected exceptions are logged (``asgi_kit.errors`` by default).
        openai_paths: the OpenAI-compatible routes (``PathFilter`` patterns such as ``"/v1/*"``):
            every error answered on them, by this layer or any layer inside it, is rendered in
            OpenAI's shape. Place this layer outside every layer that answers errors.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        debug: bool = False,
        reraise: bool = True,
        logger: logging.Logger | None = None,
        openai_paths: bool | Sequence[str] = (),
    ) -> None:
        self.app = app
        self._debug = check_bool("debug", debug)
        self._reraise = check_bool("reraise", reraise)
        self._logger = logger or globals()["logger"]
        routes = OpenAIRoutes(openai_paths)
        # None without routes: an app with no OpenAI routes pays one attribute test per request.
        self._openai_paths = routes if routes else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._openai_paths is not None and self._openai_paths.matches(scope):
            scope[ERROR_FORMAT_KEY] = OPENAI_FORMAT

        response_started = False
        response_complete = False

        # A plain function handing back send's awaitable: no coroutine of its own per message.
        def send_tracking_start(message: Message) -> Awaitable[None]:
            nonlocal response_started, response_complete
            if message["type"] == "http.response.start":
                response_started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                response_complete = True
            return send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except ProblemError as exc:
            if response_started:
                self._log_after_start(scope, exc)
                raise
            await write_problem_details(send, exc.problem, exc.headers, scope=scope)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            if response_complete and not self._reraise:
                # Frameworks answer their own 500 and then re-raise for the server's log
                # (Starlette's ServerErrorMiddleware). The client has its whole response:
                # log once and keep the connection alive rather than have the server cut it.
                self._log_after_start(scope, exc)
                return
            if response_started:
                self._log_after_start(scope, exc)
                raise
            request_id = get_request_id() or scope_request_id(scope)
            self._logger.error(
                "unhandled exception in %s %s",
                scope.get("method"),
                _safe_path(scope),
                exc_info=exc,
                extra={"request_id": request_id, "error_type": type(exc).__name__},
            )
            await write_problem_details(send, self._internal_error(exc), scope=scope)
            if self._reraise:
                raise

    def _internal_error(self, exc: BaseException) -> ProblemDetails:
        if not self._debug:
            return INTERNAL_SERVER_ERROR
        return INTERNAL_SERVER_ERROR.with_extensions(
            exception=type(exc).__name__,
            exception_message=str(exc),
            traceback=traceback.format_exception(exc),
        )

    def _log_after_start(self, scope: Scope, exc: BaseException) -> None:
        self._logger.error(
            "exception after the response started in %s %s; the connection will be closed",
            scope.get("method"),
            _safe_path(scope),
            exc_info=exc,
            extra={"request_id": get_request_id() or scope_request_id(scope)},
        )


def _safe_path(scope: Scope) -> str:
    # The path only, never the query string: queries carry tokens.
    path = scope.get("path") or ""
    return path[:512].encode("unicode_escape").decode("ascii")


__all__ = ["ProblemDetailsMiddleware"]
