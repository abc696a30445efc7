"""JWTs, API keys and RBAC around a bare ASGI app.

Run it and try it (the token and key are printed at start-up; this is a development demo)::

    python examples/auth_example.py
    curl -i http://127.0.0.1:8000/me                                   # 401, WWW-Authenticate: Bearer realm="api"
    curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/me  # 200 {"user": "alice", ...}
    curl -i -H "X-API-Key: $KEY" http://127.0.0.1:8000/me              # 200 as the key
    curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/admin/orgs   # 403 insufficient_scope
"""

from __future__ import annotations

import json
import secrets

from asgi_kit import Stack
from asgi_kit.auth import (
    APIKeyRecord,
    AuthMiddleware,
    InMemoryAPIKeyStore,
    JWTConfig,
    JWTManager,
    generate_api_key,
    get_principal,
    hash_api_key,
    parse_api_key,
)
from asgi_kit.rbac import Permission, RequirePermission
from asgi_kit.types import ASGIApp, Receive, Scope, Send


async def me(scope: Scope, receive: Receive, send: Send) -> None:
    principal = get_principal(scope)
    payload = (
        None
        if principal is None
        else {"user": principal.identity, "org": principal.org_id, "role": principal.role}
    )
    body = json.dumps(payload).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


def router(admin: ASGIApp) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/admin/"):
            await admin(scope, receive, send)
        else:
            await me(scope, receive, send)

    return app


def build_app() -> tuple[ASGIApp, dict[str, str]]:
    """The protected app and a demo token and key."""
    jwt = JWTManager(JWTConfig(secret=secrets.token_bytes(32), issuer="asgi-kit-example", audience="example"))
    key = generate_api_key()
    store = InMemoryAPIKeyStore(
        [
            APIKeyRecord(
                key_id=parse_api_key(key).key_id,
                org_id="org-1",
                user_id=None,
                role="org_admin",
                key_hash=hash_api_key(key),
            )
        ]
    )
    admin = RequirePermission(me, Permission.CREATE_ORG)
    app = Stack().use(AuthMiddleware, jwt=jwt, api_keys=store, exclude_paths=["/health"]).wrap(router(admin))
    token = jwt.generate_token_pair("alice", "org-1", "org_user").access_token
    return app, {"TOKEN": token, "KEY": key}


if __name__ == "__main__":
    import uvicorn

    application, demo = build_app()
    for name, value in demo.items():
        print(f"export {name}={value}")
    uvicorn.run(application, host="127.0.0.1", port=8000)
