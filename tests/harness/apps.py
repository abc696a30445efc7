"""The same small app under bare ASGI, Starlette, FastAPI and Litestar.

Routes: ``GET /ok`` (JSON), ``GET /items/{item_id}`` (an int: a bad one is a validation
error), ``GET /stream`` (server-sent events, a pause after the first so tests can see it
arrives before the handler finishes), ``GET /boom`` (raises with a DSN in the message),
``/ws`` (websocket echo). Each call builds a fresh app: tests never share a mutable one.
"""

# No postponed annotations here: FastAPI and Litestar read handler annotations at runtime.

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

from asgi_kit._asgi.lifespan import answer_lifespan
from asgi_kit._asgi.principal import get_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.errors import NOT_FOUND, new_problem_details, write_problem_details

FRAMEWORKS = ("bare", "starlette", "fastapi", "litestar")
#: set by the /ok handler, so tests can see an app's contextvar in the kit's log records
APP_CONTEXT: ContextVar[str | None] = ContextVar("harness_app_context", default=None)
APP_CONTEXT_VALUE = "set-by-app"
#: /background?id=X sets BACKGROUND_DONE[X] after the response was sent
BACKGROUND_DONE: dict[str, threading.Event] = {}


def _background_event(key: str) -> threading.Event:
    return BACKGROUND_DONE.setdefault(key, threading.Event())


async def background_job(key: str) -> None:
    # Long enough that a test can see the response arrive before the job finishes.
    await asyncio.sleep(0.3)
    _background_event(key).set()


BOOM_MESSAGE = "boom: could not reach postgresql://u:s3cr3t@h/db"
SSE_EVENTS = 3
SSE_PAUSE = 0.4


def _who(scope: Scope) -> str | None:
    principal = get_principal(scope)
    return principal.identity if principal else None


async def sse_events() -> AsyncIterator[bytes]:
    for i in range(SSE_EVENTS):
        yield f"data: {json.dumps({'n': i})}\n\n".encode()
        await asyncio.sleep(SSE_PAUSE if i == 0 else 0.01)


def bare_app() -> ASGIApp:
    async def respond_json(send: Send, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        path = scope["path"]
        if scope["type"] == "websocket":
            if path != "/ws":
                await send({"type": "websocket.close", "code": 1000})
                return
            scope["asgi_kit.route"] = "/ws"
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                await send({"type": "websocket.send", "text": message.get("text") or ""})
        if path == "/ok":
            scope["asgi_kit.route"] = "/ok"
            APP_CONTEXT.set(APP_CONTEXT_VALUE)
            await respond_json(send, 200, {"ok": True, "user": _who(scope)})
        elif path == "/background":
            scope["asgi_kit.route"] = "/background"
            key = scope.get("query_string", b"").decode().partition("id=")[2]
            await respond_json(send, 200, {"scheduled": key})
            await background_job(key)
        elif path.startswith("/items/") and path.count("/") == 2:
            scope["asgi_kit.route"] = "/items/{item_id}"
            raw = path.rsplit("/", 1)[1]
            if not raw.isdigit():
                invalid = new_problem_details(
                    422,
                    detail="Request validation failed",
                    errors=[{"loc": ["path", "item_id"], "type": "int_parsing"}],
                )
                await write_problem_details(send, invalid, scope=scope)
                return
            await respond_json(send, 200, {"item_id": int(raw)})
        elif path == "/stream":
            scope["asgi_kit.route"] = "/stream"
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            async for chunk in sse_events():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/boom":
            scope["asgi_kit.route"] = "/boom"
            raise RuntimeError(BOOM_MESSAGE)
        else:
            await write_problem_details(send, NOT_FOUND, scope=scope)

    return app


def starlette_app(**kwargs: Any) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    async def ok(request: Request) -> JSONResponse:
        APP_CONTEXT.set(APP_CONTEXT_VALUE)
        return JSONResponse({"ok": True, "user": _who(request.scope)})

    async def item(request: Request) -> JSONResponse:
        raw = request.path_params["item_id"]
        if not raw.isdigit():  # Starlette has no validation layer: the handler checks, as users do
            raise HTTPException(status_code=422, detail="item_id must be an integer")
        return JSONResponse({"item_id": int(raw)})

    async def background(request: Request) -> JSONResponse:
        key = request.query_params.get("id", "")
        return JSONResponse({"scheduled": key}, background=BackgroundTask(background_job, key))

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(sse_events(), media_type="text/event-stream")

    async def boom(request: Request) -> JSONResponse:
        raise RuntimeError(BOOM_MESSAGE)

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except Exception:
            return

    routes = [
        Route("/ok", ok),
        Route("/items/{item_id}", item),
        Route("/stream", stream),
        Route("/boom", boom),
        Route("/background", background),
        WebSocketRoute("/ws", ws),
    ]
    return Starlette(routes=routes, **kwargs)


def fastapi_app(**kwargs: Any) -> ASGIApp:
    from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
    from fastapi.responses import StreamingResponse

    app = FastAPI(**kwargs)

    @app.get("/ok")
    async def ok(request: Request) -> dict[str, Any]:
        APP_CONTEXT.set(APP_CONTEXT_VALUE)
        return {"ok": True, "user": _who(request.scope)}

    @app.get("/background")
    async def background(id: str, tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(background_job, id)
        return {"scheduled": id}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(sse_events(), media_type="text/event-stream")

    @app.get("/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError(BOOM_MESSAGE)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            return

    return app


def litestar_app(**kwargs: Any) -> ASGIApp:
    from litestar import Litestar, Request, Response, get, websocket
    from litestar.background_tasks import BackgroundTask
    from litestar.connection import WebSocket
    from litestar.exceptions import ValidationException, WebSocketDisconnect
    from litestar.response import Stream

    @get("/ok", sync_to_thread=False)
    def ok(request: Request[Any, Any, Any]) -> dict[str, Any]:
        APP_CONTEXT.set(APP_CONTEXT_VALUE)
        return {"ok": True, "user": _who(request.scope)}  # type: ignore[arg-type]

    @get("/background", sync_to_thread=False)
    def background(id: str) -> Response[dict[str, str]]:
        return Response({"scheduled": id}, background=BackgroundTask(background_job, id))

    @get("/items/{item_id:str}", sync_to_thread=False)
    def item(item_id: str) -> dict[str, int]:
        if not item_id.isdigit():  # Litestar answers a path-type mismatch with 404: validate here
            raise ValidationException(detail="item_id must be an integer", extra=[{"key": "item_id"}])
        return {"item_id": int(item_id)}

    @get("/stream", sync_to_thread=False)
    def stream() -> Stream:
        return Stream(sse_events(), media_type="text/event-stream")

    @get("/boom", sync_to_thread=False)
    def boom() -> dict[str, str]:
        raise RuntimeError(BOOM_MESSAGE)

    @websocket("/ws")
    async def ws(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        try:
            while True:
                await socket.send_text(await socket.receive_text())
        except WebSocketDisconnect:
            return

    kwargs.setdefault("debug", False)
    # Handlers are defined locally under postponed annotations: tell Litestar the names.
    namespace = {
        "Stream": Stream,
        "Request": Request,
        "WebSocket": WebSocket,
        "Any": Any,
        "Response": Response,
    }
    return Litestar(
        route_handlers=[ok, item, stream, boom, background, ws], signature_namespace=namespace, **kwargs
    )


def build_app(framework: str, **kwargs: Any) -> ASGIApp:
    """A fresh instance of the small app under ``framework`` (one of :data:`FRAMEWORKS`)."""
    if framework == "bare":
        return bare_app()
    if framework == "starlette":
        return starlette_app(**kwargs)
    if framework == "fastapi":
        return fastapi_app(**kwargs)
    if framework == "litestar":
        return litestar_app(**kwargs)
    raise ValueError(f"unknown framework {framework!r}")
