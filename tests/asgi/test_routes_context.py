"""Route-template resolver, request-scoped context and principal accessors."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from asgi_kit._asgi.context import (
    TraceIds,
    get_request_id,
    get_trace_ids,
    scope_request_id,
    trace_ids_var,
    with_request_id,
)
from asgi_kit._asgi.optional import require
from asgi_kit._asgi.principal import Credentials, Principal, credentials_of, get_principal, set_principal
from asgi_kit._asgi.routes import UNMATCHED_ROUTE, resolve_route_template, route_template_or_unmatched
from asgi_kit.testing import call_app, make_scope
from tests.harness.apps import FRAMEWORKS, build_app


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("path", "template"),
    [("/ok", "/ok"), ("/items/42", "/items/{item_id}"), ("/nope/123", None)],
)
async def test_route_template_under_every_framework(framework: str, path: str, template: str | None) -> None:
    """After the app ran, the resolver finds the matched template, or None for a 404."""
    scope = make_scope(path)
    await call_app(build_app(framework), scope)
    resolved = resolve_route_template(scope)
    if template is None:
        assert resolved is None
        assert route_template_or_unmatched(scope) == UNMATCHED_ROUTE
    else:
        # Starlette/Litestar keep the converter in the template ("{item_id:int}"); both are templates.
        assert resolved is not None
        assert resolved.split(":")[0].rstrip("}") == template.rstrip("}")


def test_resolver_sources_and_custom_resolver() -> None:
    """Explicit key, Litestar's path_template and a route object are read in that order."""
    assert resolve_route_template({"asgi_kit.route": "/x", "path_template": "/y"}) == "/x"
    assert resolve_route_template({"path_template": "/y"}) == "/y"
    assert resolve_route_template({"route": SimpleNamespace(path="/z")}) == "/z"
    assert resolve_route_template({"route": SimpleNamespace(path=None)}) is None
    assert route_template_or_unmatched({}, lambda scope: "/custom") == "/custom"


async def test_request_id_context_is_reset() -> None:
    """with_request_id sets the id for the block only, and tasks see their own value."""
    assert get_request_id() is None
    with with_request_id("abc"):
        assert get_request_id() == "abc"

        async def inner() -> str | None:
            return get_request_id()

        assert await asyncio.create_task(inner()) == "abc"
    assert get_request_id() is None


def test_trace_ids_and_scope_request_id() -> None:
    """Trace ids come from their contextvar; the scope id from dict or object state."""
    assert get_trace_ids() is None
    token = trace_ids_var.set(TraceIds("a" * 32, "b" * 16, "00-" + "a" * 32 + "-" + "b" * 16 + "-01"))
    try:
        assert get_trace_ids() is not None
    finally:
        trace_ids_var.reset(token)
    assert scope_request_id({"state": {"request_id": "r1"}}) == "r1"
    assert scope_request_id({"state": SimpleNamespace(request_id="r2")}) == "r2"
    assert scope_request_id({}) is None
    assert scope_request_id({"state": {"request_id": 5}}) is None


def test_principal_storage_matches_starlette_shape() -> None:
    """The principal goes in scope['user'], its scopes in scope['auth'].scopes."""
    scope: dict[str, object] = {}
    assert get_principal(scope) is None
    principal = Principal(user_id="u1", org_id="o1", role="org_admin", auth_method="jwt", scopes=("read",))
    set_principal(scope, principal)
    assert get_principal(scope) is principal
    assert scope["auth"] == Credentials(scopes=("read",), method="jwt")
    assert principal.is_authenticated
    assert principal.display_name == "u1" == principal.identity
    key_principal = Principal(user_id=None, org_id="o1", role="org_user", auth_method="api_key", key_id="k1")
    assert key_principal.identity == "k1"
    assert "claims" not in repr(principal)
    scope["user"] = "not a principal"
    assert get_principal(scope) is None


def test_equal_credentials_are_shared_and_bounded() -> None:
    """credentials_of hands out one immutable Credentials per (scopes, method), within a bound."""
    from asgi_kit._asgi import principal as module

    first = Principal(user_id="a", org_id=None, role="r", auth_method="jwt")
    second = Principal(user_id="b", org_id="o", role="r", auth_method="jwt")
    assert credentials_of(first) is credentials_of(second) == Credentials(scopes=(), method="jwt")
    listed = Principal(user_id="c", org_id=None, role="r", auth_method="jwt", scopes=["x"])  # type: ignore[arg-type]
    assert credentials_of(listed).scopes == ["x"]  # unhashable by hand: built, not shared
    for index in range(module._CREDENTIALS_KEPT + 10):
        credentials_of(Principal(user_id="d", org_id=None, role="r", auth_method="jwt", scopes=(str(index),)))
    assert len(module._CREDENTIALS) <= module._CREDENTIALS_KEPT


def test_require_names_the_extra() -> None:
    """A missing optional dependency names the pip install to run."""
    with pytest.raises(ImportError, match=r"pip install 'asgi-kit\[metrics\]'"):
        require("definitely_not_installed_module", "metrics")
    assert require("json", "config").__name__ == "json"
