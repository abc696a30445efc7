"""problem_exception_handlers under Starlette, FastAPI and Litestar, with real apps."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from asgi_kit._asgi.context import request_id_var
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.errors import TOO_MANY_REQUESTS, ProblemError
from tests.harness.apps import BOOM_MESSAGE, build_app
from tests.harness.servers import serve

FRAMEWORKS = ("starlette", "fastapi", "litestar")
SECRET = "hunter2-s3cr3t"
PROBLEM_KEYS = {"type", "title", "status"}


def handlers_for(framework: str, **options: Any) -> dict[Any, Callable[..., Any]]:
    module = importlib.import_module(f"asgi_kit.integrations.{framework}")
    handlers: dict[Any, Callable[..., Any]] = module.problem_exception_handlers(**options)
    return handlers


def with_state_request_id(app: ASGIApp, request_id: str = "rid-state") -> ASGIApp:
    """Stand-in for RequestIDMiddleware: the id only in scope["state"]."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["request_id"] = request_id
        await app(scope, receive, send)

    return wrapped


def with_contextvar_request_id(app: ASGIApp, request_id: str = "rid-ctx") -> ASGIApp:
    """Stand-in for RequestIDMiddleware: the id only in the contextvar."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        token = request_id_var.set(request_id)
        try:
            await app(scope, receive, send)
        finally:
            request_id_var.reset(token)

    return wrapped


def extra_app(framework: str, handlers: dict[Any, Callable[..., Any]]) -> ASGIApp:
    """Routes raising each kind of error the handlers map, under ``framework``."""
    if framework == "litestar":
        from litestar import Litestar, get
        from litestar.exceptions import HTTPException as LitestarHTTPException
        from litestar.exceptions import ValidationException

        @get("/problem", sync_to_thread=False)
        def problem() -> None:
            raise ProblemError(TOO_MANY_REQUESTS, headers={"Retry-After": "3"})

        @get("/conflict", sync_to_thread=False)
        def conflict() -> None:
            raise LitestarHTTPException(status_code=409, detail="Item 3 is locked")

        @get("/unavailable", sync_to_thread=False)
        def unavailable() -> None:
            raise LitestarHTTPException(status_code=503, detail=f"db {SECRET} down")

        @get("/not-modified", sync_to_thread=False)
        def not_modified() -> None:
            raise LitestarHTTPException(status_code=304, headers={"etag": '"v1"'})

        @get("/search", sync_to_thread=False)
        def search_litestar(limit: int) -> dict[str, int]:
            return {"limit": limit}

        @get("/custom-invalid", sync_to_thread=False)
        def custom_invalid() -> None:
            raise ValidationException(detail="cursor is stale", extra=[{"key": "cursor", "message": "stale"}])

        routes = [problem, conflict, unavailable, not_modified, search_litestar, custom_invalid]
        return Litestar(route_handlers=routes, exception_handlers=handlers, debug=False)  # type: ignore[return-value]
    from starlette.exceptions import HTTPException

    async def raise_problem() -> None:
        raise ProblemError(
            TOO_MANY_REQUESTS, headers=[("Retry-After", "3"), ("X-Reason", "a"), ("X-Reason", "b")]
        )

    async def raise_conflict() -> None:
        raise HTTPException(409, detail="Item 3 is locked")

    async def raise_unavailable() -> None:
        raise HTTPException(503, detail=f"db {SECRET} down")

    async def raise_not_modified() -> None:
        raise HTTPException(304, headers={"etag": '"v1"'})

    raisers = {
        "/problem": raise_problem,
        "/conflict": raise_conflict,
        "/unavailable": raise_unavailable,
        "/not-modified": raise_not_modified,
    }
    if framework == "fastapi":
        from fastapi import FastAPI

        api = FastAPI(exception_handlers=handlers)
        for path, raiser in raisers.items():
            api.add_api_route(path, raiser, methods=["GET"])

        @api.get("/search")
        async def search(limit: int) -> dict[str, int]:
            return {"limit": limit}

        @api.get("/detail-object")
        async def detail_object() -> None:
            raise HTTPException(400, detail={"code": "bad_cursor"})  # type: ignore[arg-type]

        return api
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def endpoint(raiser: Callable[[], Any]) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            await raiser()
            return Response()

        return handle

    return Starlette(routes=[Route(p, endpoint(r)) for p, r in raisers.items()], exception_handlers=handlers)


async def get(app: ASGIApp, path: str, method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


def assert_problem(response: httpx.Response, status: int, request_id: str | None = None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    if request_id is not None:
        assert body["request_id"] == request_id
    return body


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_not_found_validation_and_boom_share_the_problem_shape(framework: str) -> None:
    """A 404, /items/abc and an unhandled exception are problems with the request id from scope state."""
    app = with_state_request_id(build_app(framework, exception_handlers=handlers_for(framework)))
    not_found = assert_problem(await get(app, "/missing"), 404, "rid-state")
    assert not_found == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "request_id": "rid-state",
    }
    invalid = await get(app, "/items/abc")
    # The harness validates item_id per framework: FastAPI 422 (RequestValidationError), Starlette
    # a 422 HTTPException, Litestar a 400 ValidationException. Whatever the status, the shape is the kit's.
    assert invalid.status_code in (400, 422)
    invalid_body = assert_problem(invalid, invalid.status_code, "rid-state")
    for error in invalid_body.get("errors", []):
        assert set(error) == {"loc", "msg", "type"}
        assert "item_id" in error["loc"]
    assert "abc" not in invalid.text
    if framework == "fastapi":
        assert invalid_body["errors"] == [
            {
                "loc": ["path", "item_id"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "type": "int_parsing",
            }
        ]
    boom = await get(app, "/boom")
    boom_body = assert_problem(boom, 500, "rid-state")
    assert boom_body["title"] == "Internal Server Error"
    for leak in ("s3cr3t", "postgresql", "RuntimeError", "boom", "Traceback"):
        assert leak not in boom.text


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_request_id_from_contextvar(framework: str) -> None:
    """The request id set in the contextvar by an outer layer reaches every problem."""
    app = with_contextvar_request_id(build_app(framework, exception_handlers=handlers_for(framework)))
    for path, status in (("/missing", 404), ("/boom", 500)):
        assert_problem(await get(app, path), status, "rid-ctx")


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_method_not_allowed_keeps_allow_header(framework: str) -> None:
    """A 405 is the kit's problem and keeps the framework's Allow header."""
    app = build_app(framework, exception_handlers=handlers_for(framework))
    response = await get(app, "/ok", method="POST")
    assert assert_problem(response, 405)["title"] == "Method Not Allowed"
    assert "GET" in response.headers["allow"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_problem_error_renders_its_problem_and_headers(framework: str) -> None:
    """A ProblemError raised in a handler renders as its problem, with its headers."""
    response = await get(extra_app(framework, handlers_for(framework)), "/problem")
    assert assert_problem(response, 429)["title"] == "Too Many Requests"
    assert response.headers["retry-after"] == "3"
    if framework != "litestar":
        assert response.headers.get_list("x-reason") == ["a", "b"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_custom_4xx_detail_kept_5xx_detail_hidden(framework: str) -> None:
    """A 4xx HTTP exception keeps its detail; a 5xx one never shows it."""
    app = extra_app(framework, handlers_for(framework))
    assert assert_problem(await get(app, "/conflict"), 409)["detail"] == "Item 3 is locked"
    unavailable = await get(app, "/unavailable")
    assert assert_problem(unavailable, 503)["title"] == "Service Unavailable"
    assert SECRET not in unavailable.text


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_non_error_status_has_no_problem_body(framework: str) -> None:
    """An HTTP exception with a non-error status (304) gets no problem body but keeps its headers."""
    response = await get(extra_app(framework, handlers_for(framework)), "/not-modified")
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == '"v1"'


@pytest.mark.parametrize("framework", ["fastapi", "litestar"])
async def test_validation_errors_never_echo_input(framework: str) -> None:
    """A validation error lists where and why, never the value the client sent."""
    response = await get(extra_app(framework, handlers_for(framework)), f"/search?limit={SECRET}")
    body = assert_problem(response, 422 if framework == "fastapi" else 400)
    assert SECRET not in response.text
    assert body["detail"] == "The request is invalid"
    assert body["errors"]
    for error in body["errors"]:
        assert set(error) == {"loc", "msg", "type"}
        assert "limit" in error["loc"]


async def test_litestar_validation_detail_written_by_the_app_is_kept() -> None:
    """A ValidationException detail the app wrote is kept; the errors list its key and message."""
    response = await get(extra_app("litestar", handlers_for("litestar")), "/custom-invalid")
    body = assert_problem(response, 400)
    assert body["detail"] == "cursor is stale"
    assert body["errors"] == [{"loc": ["cursor"], "msg": "stale", "type": "validation_error"}]


async def test_fastapi_non_string_detail_goes_to_details() -> None:
    """A FastAPI HTTPException with a JSON detail keeps it under the `details` member."""
    response = await get(extra_app("fastapi", handlers_for("fastapi")), "/detail-object")
    body = assert_problem(response, 400)
    assert body["details"] == {"code": "bad_cursor"}
    assert "detail" not in body or isinstance(body["detail"], str)


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_unhandled_exception_logged_once_with_request_id(framework: str) -> None:
    """An unhandled exception is logged once on the given logger, with the request id."""
    # A handler on the logger itself: Litestar's logging config replaces the root handlers caplog uses.
    log = logging.getLogger(f"tests.integrations.{framework}")
    handler = ListHandler()
    log.addHandler(handler)
    log.propagate = False
    try:
        app = with_state_request_id(
            build_app(framework, exception_handlers=handlers_for(framework, logger=log))
        )
        await get(app, "/boom")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    assert len(handler.records) == 1
    record = handler.records[0]
    assert record.request_id == "rid-state"  # type: ignore[attr-defined]
    assert record.exc_info is not None and str(record.exc_info[1]) == BOOM_MESSAGE


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_websocket_errors_close_the_socket(framework: str) -> None:
    """An HTTP exception or ProblemError in a websocket endpoint closes the socket (1008 / 1011)."""
    from starlette.exceptions import HTTPException
    from starlette.routing import WebSocketRoute
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def forbidden(websocket: WebSocket) -> None:
        raise HTTPException(403)

    async def overloaded(websocket: WebSocket) -> None:
        raise ProblemError(TOO_MANY_REQUESTS.model_copy(update={"status": 503}))

    routes: list[Any] = [WebSocketRoute("/forbidden", forbidden), WebSocketRoute("/overloaded", overloaded)]
    if framework == "fastapi":
        from fastapi import FastAPI

        app: Any = FastAPI(routes=routes, exception_handlers=handlers_for("fastapi"))
    else:
        from starlette.applications import Starlette

        app = Starlette(routes=routes, exception_handlers=handlers_for("starlette"))
    with TestClient(app) as client:
        for path, code in (("/forbidden", 1008), ("/overloaded", 1011)):
            with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(path):
                pass
            assert info.value.code == code


def test_fastapi_websocket_validation_closes_1008() -> None:
    """A FastAPI websocket with an invalid query parameter is closed with 1008."""
    from fastapi import FastAPI
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    app = FastAPI(exception_handlers=handlers_for("fastapi"))

    @app.websocket("/ws")
    async def ws(websocket: Any, limit: int) -> None:
        await websocket.accept()

    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws?limit=x"):
            pass
    assert info.value.code == 1008


@pytest.mark.integration
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_problems_over_real_http(framework: str) -> None:
    """Under a real uvicorn, the 404 and the unhandled 500 are the same problems for every framework."""
    app = with_state_request_id(build_app(framework, exception_handlers=handlers_for(framework)), "rid-real")
    with serve(app, "uvicorn") as served, httpx.Client(base_url=served.url, timeout=30) as client:
        missing = client.get("/missing")
        boom = client.get("/boom")
    assert assert_problem(missing, 404, "rid-real")["title"] == "Not Found"
    assert assert_problem(boom, 500, "rid-real")["detail"] == "An unexpected error occurred"
    assert "s3cr3t" not in boom.text


@pytest.mark.parametrize(
    ("framework", "package"),
    [
        ("starlette", "starlette"),
        ("fastapi", "fastapi"),
        ("litestar", "litestar"),
        ("_starlette_routes", "starlette"),
        ("_litestar_routes", "litestar"),
    ],
)
def test_missing_framework_names_pip_install(
    framework: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing an adapter without its framework raises ImportError naming the pip install to run."""
    for name in list(sys.modules):
        if name == package or name.startswith((package + ".", "asgi_kit.integrations.")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ImportError, match=f"pip install {package}"):
        importlib.import_module(f"asgi_kit.integrations.{framework}")


def test_package_imports_no_framework() -> None:
    """Importing asgi_kit.integrations itself imports no web framework."""
    import asgi_kit.integrations

    assert asgi_kit.integrations.__all__ == [
        "RouteFinder",
        "register_route_finder",
        "unregister_route_finder",
    ]
