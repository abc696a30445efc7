"""One renderer, two shapes: problem+json by default, OpenAI's error on routes marked OpenAI-compatible."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.auth import AuthMiddleware, InMemoryAPIKeyStore
from asgi_kit.budget import BudgetMiddleware, InMemoryBudgetStore
from asgi_kit.demo.router import Router
from asgi_kit.errors import (
    BAD_REQUEST,
    BUDGET_EXCEEDED,
    ERROR_FORMAT_KEY,
    FORBIDDEN,
    GATEWAY_TIMEOUT,
    INTERNAL_SERVER_ERROR,
    NOT_FOUND,
    OPENAI_ERROR_TYPES,
    PAYLOAD_TOO_LARGE,
    SERVICE_UNAVAILABLE,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    UNPROCESSABLE_CONTENT,
    ProblemDetailsMiddleware,
    ProblemError,
    deny_websocket,
    error_format,
    mark_openai,
    new_problem_details,
    render_error,
    write_problem_details,
)
from asgi_kit.guards import BodyLimitMiddleware, TimeoutMiddleware
from asgi_kit.models import Usage
from asgi_kit.rbac import RequirePermission
from asgi_kit.testing import RecordingSend, StrictReceive, call_app, make_scope

OPENAI = "application/json"
PROBLEM = "application/problem+json"


def openai_layer(app: ASGIApp) -> ASGIApp:
    return ProblemDetailsMiddleware(app, reraise=False, openai_paths=["/v1/*"])


def answering(problem: Any, headers: Any = None) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await write_problem_details(send, problem, headers, scope=scope)

    return app


@pytest.mark.parametrize(
    ("problem", "status", "type_", "code"),
    [
        (BAD_REQUEST, 400, "invalid_request_error", None),
        (UNAUTHORIZED, 401, "invalid_request_error", None),
        (
            UNAUTHORIZED.with_extensions(code="invalid_api_key"),
            401,
            "invalid_request_error",
            "invalid_api_key",
        ),
        (FORBIDDEN, 403, "invalid_request_error", "insufficient_permissions"),
        (NOT_FOUND.with_extensions(code="model_not_found"), 404, "invalid_request_error", "model_not_found"),
        (PAYLOAD_TOO_LARGE, 413, "invalid_request_error", "request_too_large"),
        (UNPROCESSABLE_CONTENT, 422, "invalid_request_error", None),
        (TOO_MANY_REQUESTS, 429, "requests", "rate_limit_exceeded"),
        (BUDGET_EXCEEDED, 429, "insufficient_quota", "insufficient_quota"),
        (INTERNAL_SERVER_ERROR, 500, "server_error", None),
        (new_problem_details(502), 502, "server_error", "upstream_error"),
        (SERVICE_UNAVAILABLE, 503, "server_error", "service_unavailable"),
        (GATEWAY_TIMEOUT, 504, "server_error", "timeout"),
        (new_problem_details(418), 418, "invalid_request_error", None),
        (new_problem_details(507), 507, "server_error", None),
    ],
)
async def test_status_type_and_code_table(problem: Any, status: int, type_: str, code: str | None) -> None:
    """Each status gets OpenAI's type and code; a problem's own code wins over the status's."""
    send = await call_app(openai_layer(answering(problem)), path="/v1/x")
    assert (send.status, send.header("content-type")) == (status, OPENAI)
    error = send.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == (type_, code)
    assert error["message"] == (problem.detail or problem.title)


async def test_marked_route_openai_unmarked_problem() -> None:
    """/v1/* is rendered in OpenAI's shape; another path of the same app stays problem+json."""
    app = openai_layer(answering(BAD_REQUEST.with_detail("bad 'n'").with_extensions(param="n", code="x")))
    marked = await call_app(app, path="/v1/chat/completions")
    assert marked.json() == {
        "error": {"message": "bad 'n'", "type": "invalid_request_error", "param": "n", "code": "x"}
    }
    plain = await call_app(app, make_scope("/admin", state={"request_id": "rid-1"}))
    assert plain.header("content-type") == PROBLEM
    assert plain.json()["param"] == "n" and plain.json()["request_id"] == "rid-1"


async def test_mark_follows_root_path_and_subtree_rules() -> None:
    """The mark uses PathFilter: a mounted app's route path, never /v10 or dot segments."""
    app = openai_layer(answering(NOT_FOUND))
    assert (await call_app(app, make_scope("/v1/models", root_path="/api"))).header("content-type") == OPENAI
    assert (await call_app(app, path="/v10/models")).header("content-type") == PROBLEM
    assert (await call_app(app, path="/v1/../admin")).header("content-type") == PROBLEM


async def test_head_headers_and_framing_kept() -> None:
    """HEAD has no body; Content-Length, no-store and the layer's headers are kept in OpenAI's shape."""
    headers = {"WWW-Authenticate": 'Bearer realm="api"', "Retry-After": "7", "x-should-retry": "false"}
    app = openai_layer(answering(UNAUTHORIZED, headers))
    get = await call_app(app, path="/v1/models")
    head = await call_app(app, path="/v1/models", method="HEAD")
    assert int(get.header("content-length") or 0) == len(get.body) > 0
    assert head.body == b"" and head.header("content-length") == get.header("content-length")
    for send in (get, head):
        assert send.header("cache-control") == "no-store"
        assert send.header("www-authenticate") == 'Bearer realm="api"'
        assert send.header("retry-after") == "7"
        assert send.header("x-should-retry") == "false"


async def test_explicit_error_type_and_forced_format() -> None:
    """error_type names the type; format= forces a shape whatever the scope says."""
    problem = new_problem_details(400, detail="x", error_type="invalid_request_error", code="c")
    scope = make_scope("/anything")
    assert error_format(scope) == "problem"
    content_type, body = render_error(problem, scope, format="openai")
    assert content_type == b"application/json" and b'"code":"c"' in body
    mark_openai(scope)
    assert scope[ERROR_FORMAT_KEY] == "openai" and error_format(scope) == "openai"
    assert render_error(problem, scope, format="problem")[0] == b"application/problem+json"
    assert set(OPENAI_ERROR_TYPES) >= {400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 504}


async def test_unhandled_exception_is_server_error_in_openai_shape() -> None:
    """An exception on a marked route is a 500 server_error with no internals."""

    async def boom(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("postgresql://user:s3cr3t@db")

    send = await call_app(openai_layer(boom), path="/v1/chat/completions")
    assert send.status == 500
    assert send.json()["error"]["type"] == "server_error"
    assert b"s3cr3t" not in send.body and b"RuntimeError" not in send.body


async def test_problem_error_keeps_its_param_and_headers() -> None:
    """A raised ProblemError renders as OpenAI's error with its param, and keeps its headers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ProblemError(
            BAD_REQUEST.with_detail("no").with_extensions(param="messages[0].content"), {"x-a": "1"}
        )

    send = await call_app(openai_layer(app), path="/v1/chat/completions")
    assert send.json()["error"]["param"] == "messages[0].content" and send.header("x-a") == "1"


def test_openai_paths_validated() -> None:
    """openai_paths must be absolute path patterns, never a bare string."""
    with pytest.raises(TypeError, match="openai_paths"):
        ProblemDetailsMiddleware(answering(NOT_FOUND), openai_paths="/v1/*")
    with pytest.raises(ValueError, match="openai_paths"):
        ProblemDetailsMiddleware(answering(NOT_FOUND), openai_paths=["v1"])


async def test_websocket_denial_follows_the_mark() -> None:
    """A websocket denial response uses the request's format too."""
    scope = make_scope("/v1/realtime", type="websocket", extensions={"websocket.http.response": {}})
    mark_openai(scope)
    send = RecordingSend()
    await deny_websocket(scope, send, UNAUTHORIZED, [(b"www-authenticate", b"Bearer")])
    start = send.messages[0]
    assert start["type"] == "websocket.http.response.start"
    assert (b"content-type", b"application/json") in start["headers"]


# -- every kit layer that answers an error goes through the renderer ------------------------------


def principal(role: str = "org_user") -> Principal:
    return Principal(user_id="u", org_id="org", role=role, auth_method="api_key", key_id="k")


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def with_principal(app: ASGIApp, role: str = "org_user") -> ASGIApp:
    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        set_principal(scope, principal(role))
        await app(scope, receive, send)

    return outer


async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
    await asyncio.sleep(5)


async def over_budget() -> InMemoryBudgetStore:
    store = InMemoryBudgetStore([("org", 10)])
    await store.record_usage(Usage(org_id="org", model="m", prompt_tokens=10, completion_tokens=1))
    return store


@pytest.mark.parametrize("marked", [True, False])
async def test_every_layer_renders_through_the_mark(marked: bool) -> None:
    """Auth 401, RBAC 403, budget 429, body limit 413, timeout 504, router 404/405: one shape per route."""
    path = "/v1/chat/completions" if marked else "/admin/chat"
    cases: list[tuple[ASGIApp, dict[str, Any], int, str | None]] = [
        (AuthMiddleware(ok_app, api_keys=InMemoryAPIKeyStore([])), {}, 401, None),
        (
            AuthMiddleware(ok_app, api_keys=InMemoryAPIKeyStore([])),
            {"headers": [("authorization", "Bearer sk_live_AAAAAAAAAAAA_" + "B" * 43)]},
            401,
            "invalid_api_key",
        ),
        (with_principal(RequirePermission(ok_app, "manage_org_users")), {}, 403, "insufficient_permissions"),
        (with_principal(BudgetMiddleware(ok_app, store=await over_budget())), {}, 429, "insufficient_quota"),
        (BodyLimitMiddleware(ok_app, max_body_size=4), {"body": [b"12345"]}, 413, "request_too_large"),
        (TimeoutMiddleware(slow_app, timeout=0.05), {}, 504, "timeout"),
        (Router({"/elsewhere": {"GET": ok_app}}), {}, 404, None),
        (Router({path: {"POST": ok_app}}), {}, 405, None),
    ]
    for app, options, status, code in cases:
        body = options.pop("body", [b""])
        scope = make_scope(path, **options)
        send = RecordingSend()
        await openai_layer(app)(scope, StrictReceive(body), send)
        assert send.status == status, (app, send.messages)
        if marked:
            assert send.header("content-type") == OPENAI, app
            assert send.json()["error"]["code"] == code, app
        else:
            assert send.header("content-type") == PROBLEM, app
            assert send.json()["status"] == status
