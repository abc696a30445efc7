"""The same small app under bare ASGI, Starlette, FastAPI and Litestar.

Routes: ``GET /ok`` (JSON), ``GET /items/{item_id}`` (an int: a bad one is a validation
error), ``GET /stream`` (server-sent events, a pause after the first so tests can see it
arrives before the handler finishes), ``GET /boom`` (raises with a DSN in the message),
``/ws`` (websocket echo). Each call builds a fresh app: tests never share a mutable one.
"""

# No postponed annotations here: FastAPI and Litestar read handler annotations at runtime.

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from asgi_kit._asgi.principal import get_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send

FRAMEWORKS = ("bare", "starlette", "fastapi", "litestar")
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
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
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
            await respond_json(send, 200, {"ok": True, "user": _who(scope)})
        elif path.startswith("/items/") and path.count("/") == 2:
            scope["asgi_kit.route"] = "/items/{item_id}"
            raw = path.rsplit("/", 1)[1]
            if not raw.isdigit():
                await respond_json(send, 422, {"detail": "item_id must be an integer"})
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
            await respond_json(send, 404, {"detail": "Not Found"})

    return app


def starlette_app(**kwargs: Any) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "user": _who(request.scope)})

    async def item(request: Request) -> JSONResponse:
        return JSONResponse({"item_id": request.path_params["item_id"]})

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
        Route("/items/{item_id:int}", item),
        Route("/stream", stream),
        Route("/boom", boom),
        WebSocketRoute("/ws", ws),
    ]
    return Starlette(routes=routes, **kwargs)


def fastapi_app(**kwargs: Any) -> ASGIApp:
    from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
    from fastapi.responses import StreamingResponse

    app = FastAPI(**kwargs)

    @app.get("/ok")
    async def ok(request: Request) -> dict[str, Any]:
        return {"ok": True, "user": _who(request.scope)}

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
    from litestar import Litestar, Request, get, websocket
    from litestar.connection import WebSocket
    from litestar.exceptions import WebSocketDisconnect
    from litestar.response import Stream

    @get("/ok", sync_to_thread=False)
    def ok(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return {"ok": True, "user": _who(request.scope)}  # type: ignore[arg-type]

    @get("/items/{item_id:int}", sync_to_thread=False)
    def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

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
    namespace = {"Stream": Stream, "Request": Request, "WebSocket": WebSocket, "Any": Any}
    return Litestar(route_handlers=[ok, item, stream, boom, ws], signature_namespace=namespace, **kwargs)


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
