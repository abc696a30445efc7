"""End to end under uvicorn with httpx, for every framework: 401, 403, 200 with the principal."""

from __future__ import annotations

import httpx
import pytest

from asgi_kit._asgi.types import ASGIApp
from asgi_kit.auth import APIKeyRecord, AuthMiddleware, InMemoryAPIKeyStore, generate_api_key, hash_api_key
from asgi_kit.auth import parse_api_key as parse
from asgi_kit.rbac import Permission, RequirePermission
from tests.auth.helpers import hs_manager
from tests.harness.apps import FRAMEWORKS, build_app
from tests.harness.servers import serve

pytestmark = pytest.mark.integration


def protected(framework: str) -> tuple[ASGIApp, dict[str, str]]:
    manager = hs_manager(clock=None)
    key = generate_api_key()
    store = InMemoryAPIKeyStore(
        [
            APIKeyRecord(
                key_id=parse(key).key_id,
                org_id="org-k",
                user_id=None,
                role="org_user",
                key_hash=hash_api_key(key),
            )
        ]
    )
    inner = RequirePermission(build_app(framework), Permission.USE_MODELS)
    app = AuthMiddleware(inner, jwt=manager, api_keys=store, exclude_paths=["/items/1"])
    credentials = {
        "user": manager.generate_token_pair("alice", "org-1", "org_user").access_token,
        "guest": manager.generate_token_pair("bob", "org-1", "guest").access_token,
        "key": key,
    }
    return app, credentials


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_auth_and_rbac_end_to_end(framework: str) -> None:
    """401 with WWW-Authenticate, 403 insufficient_scope, 200 with the principal in the handler."""
    app, creds = protected(framework)
    with serve(app, "uvicorn") as served, httpx.Client(base_url=served.url, timeout=10) as client:
        anonymous = client.get("/ok")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="api"'
        assert anonymous.headers["content-type"] == "application/problem+json"

        bad = client.get("/ok", headers={"Authorization": "Bearer not.a.token"})
        assert bad.status_code == 401
        assert bad.headers["www-authenticate"] == 'Bearer realm="api", error="invalid_token"'
        assert "not.a.token" not in bad.text

        forbidden = client.get("/ok", headers={"Authorization": f"Bearer {creds['guest']}"})
        assert forbidden.status_code == 403
        assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]

        ok = client.get("/ok", headers={"Authorization": f"Bearer {creds['user']}"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["user"] == "alice"

        with_key = client.get("/ok", headers={"X-API-Key": creds["key"]})
        assert with_key.status_code == 200
        assert with_key.json()["user"] == parse(creds["key"]).key_id

        assert client.options("/ok").status_code != 401
        # An excluded path skips authentication; RBAC then finds no principal and asks for one.
        excluded = client.get("/items/1")
        assert excluded.status_code == 401
        assert excluded.headers["www-authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("framework", "server"), [("bare", "uvicorn"), ("starlette", "uvicorn"), ("bare", "hypercorn")]
)
def test_websocket_handshake_is_refused_without_credentials(framework: str, server: str) -> None:
    """A websocket handshake without credentials is refused before accept; with a token it works."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    app, creds = protected(framework)
    with serve(app, server) as served:
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{served.ws_url}/ws", open_timeout=5)
        denial = refused.value.response
        # Servers with the websocket.http.response extension send our 401 problem; others answer 403.
        assert denial.status_code in (401, 403)
        if denial.status_code == 401:
            assert denial.headers["www-authenticate"] == 'Bearer realm="api"'
            assert denial.headers["content-type"] == "application/problem+json"
        with connect(
            f"{served.ws_url}/ws",
            open_timeout=5,
            additional_headers={"Authorization": f"Bearer {creds['user']}"},
        ) as socket:
            socket.send("hi")
            assert socket.recv(timeout=5) == "hi"
