"""RequirePermission and require_permission over raw ASGI."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_kit._asgi.principal import Principal, set_principal
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send
from asgi_kit.rbac import (
    DEFAULT_POLICY,
    Permission,
    Policy,
    RequirePermission,
    Role,
    is_allowed,
    require_permission,
)
from asgi_kit.testing import MiddlewareContract, RecordingSend, call_app, make_scope


def principal(role: str = Role.ORG_USER, scopes: tuple[str, ...] = (), method: Any = "jwt") -> Principal:
    return Principal(user_id="u", org_id="o", role=role, auth_method=method, scopes=scopes)


def with_principal(app: ASGIApp, who: Principal | None) -> ASGIApp:
    """An outer layer standing in for AuthMiddleware: it sets the principal."""

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        if who is not None and scope["type"] in ("http", "websocket"):
            set_principal(scope, who)
        await app(scope, receive, send)

    return outer


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class TestRequirePermissionContract(MiddlewareContract):
    """The standard contract, with an org user allowed to use models."""

    supports_exclude_paths = False

    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        return with_principal(RequirePermission(app, Permission.USE_MODELS, **options), principal())


def test_options_are_validated() -> None:
    """Bad permission names, policies and realms fail at construction (and at decoration)."""
    with pytest.raises(ValueError, match="permission"):
        RequirePermission(ok_app, "Not A Permission")
    with pytest.raises(TypeError, match="policy"):
        RequirePermission(ok_app, Permission.USE_MODELS, policy={})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="realm"):
        RequirePermission(ok_app, Permission.USE_MODELS, realm="")
    with pytest.raises(TypeError, match="realm"):
        RequirePermission(ok_app, Permission.USE_MODELS, realm=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="permission"):
        require_permission("")
    assert repr(RequirePermission(ok_app, Permission.USE_MODELS)) == "RequirePermission('use_models')"


async def test_no_principal_is_401_with_challenge() -> None:
    """Without a principal the answer is 401 with a bare Bearer challenge."""
    response = await call_app(RequirePermission(ok_app, Permission.USE_MODELS))
    assert response.status == 401
    assert response.header("www-authenticate") == 'Bearer realm="api"'
    assert response.header("content-type") == "application/problem+json"


async def test_missing_permission_is_403_insufficient_scope() -> None:
    """A principal whose role lacks the permission gets 403 with error="insufficient_scope"."""
    app = with_principal(RequirePermission(ok_app, Permission.CREATE_ORG, realm="platform"), principal())
    response = await call_app(app)
    assert response.status == 403
    assert response.header("www-authenticate") == (
        'Bearer realm="platform", error="insufficient_scope", scope="create_org"'
    )
    assert response.json()["status"] == 403


async def test_allowed_role_reaches_the_app() -> None:
    """A principal whose role grants the permission reaches the app."""
    app = with_principal(RequirePermission(ok_app, Permission.CREATE_ORG), principal(Role.SYSTEM_ADMIN))
    assert (await call_app(app)).body == b"ok"


async def test_scoped_principal_needs_the_scope_too() -> None:
    """A principal with scopes (a scoped API key) needs the permission among them as well."""
    key_principal = principal(Role.ORG_ADMIN, scopes=("use_models",), method="api_key")
    assert is_allowed(key_principal, Permission.USE_MODELS)
    assert not is_allowed(key_principal, Permission.CREATE_API_KEY)
    assert is_allowed(principal(Role.ORG_ADMIN), Permission.CREATE_API_KEY, DEFAULT_POLICY)
    app = with_principal(RequirePermission(ok_app, Permission.CREATE_API_KEY), key_principal)
    assert (await call_app(app)).status == 403


async def test_role_header_is_ignored() -> None:
    """A role claimed in a request header never grants anything."""
    app = with_principal(RequirePermission(ok_app, Permission.CREATE_ORG), principal())
    response = await call_app(app, make_scope(headers=[("x-role", "system_admin"), ("role", "system_admin")]))
    assert response.status == 403


async def test_options_pass_unless_disabled() -> None:
    """OPTIONS passes by default; allow_options=False checks it too."""
    assert (await call_app(RequirePermission(ok_app, Permission.USE_MODELS), method="OPTIONS")).status == 200
    strict = RequirePermission(ok_app, Permission.USE_MODELS, allow_options=False)
    assert (await call_app(strict, method="OPTIONS")).status == 401


async def test_decorator_wraps_raw_callables() -> None:
    """require_permission(...) wraps a raw ASGI callable with the same checks."""

    @require_permission(Permission.MANAGE_BUDGET)
    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await ok_app(scope, receive, send)

    assert (await call_app(with_principal(endpoint, principal(Role.ORG_ADMIN)))).status == 200
    assert (await call_app(with_principal(endpoint, principal(Role.ORG_USER)))).status == 403


async def _websocket(app: ASGIApp, **extra: Any) -> list[Message]:
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(app(make_scope("/ws", type="websocket", **extra), inbox.get, send), 5)
    return sent


async def test_websocket_forbidden_is_closed_or_denied() -> None:
    """A forbidden websocket is closed 1008 before accept, or denied with a 403 when supported."""
    app = with_principal(RequirePermission(ok_app, Permission.CREATE_ORG), principal())
    assert await _websocket(app) == [{"type": "websocket.close", "code": 1008}]
    denied = await _websocket(app, extensions={"websocket.http.response": {}})
    assert denied[0]["type"] == "websocket.http.response.start" and denied[0]["status"] == 403
    assert denied[1]["type"] == "websocket.http.response.body"


async def test_head_gets_no_body() -> None:
    """A refused HEAD request carries no body."""
    response = await call_app(RequirePermission(ok_app, Permission.USE_MODELS), method="HEAD")
    assert isinstance(response, RecordingSend) and response.status == 401 and response.body == b""


_PERMISSIONS = [*Permission, "custom.read"]
_POLICIES = [DEFAULT_POLICY, DEFAULT_POLICY.with_role("auditor", ["custom.read"]), Policy({})]


@settings(max_examples=200)
@given(
    st.sampled_from(_POLICIES),
    st.sampled_from(_PERMISSIONS),
    st.sampled_from([*Role, "auditor", "nobody"]),
    st.lists(st.sampled_from(_PERMISSIONS), max_size=3).map(tuple),
)
async def test_property_decision_is_is_allowed(
    policy: Policy, permission: str, role: str, scopes: tuple[str, ...]
) -> None:
    """The layer (with its roles resolved once) lets a request through exactly when is_allowed says so."""
    who = principal(role, scopes)
    app = with_principal(RequirePermission(ok_app, permission, policy=policy), who)
    response = await call_app(app)
    assert (response.status == 200) == is_allowed(who, permission, policy)
    assert response.status in (200, 403)
