"""The one stack every framework example wraps its app with.

Run any of the examples with uvicorn from the repository root, e.g.
``uvicorn examples.fastapi_app:app``, then call it with the printed development token:
``curl -H "Authorization: Bearer $TOKEN" localhost:8000/hello``.

This module also exposes ``stack`` and a bare ``app`` apart, for ``asgi-kit bench`` to measure
what the stack costs and each layer's share (``python -m examples.kit_stack`` prints a token):

    asgi-kit bench --app examples.kit_stack:app --stack examples.kit_stack:stack \
        --header "Authorization: Bearer $(python -m examples.kit_stack)"
"""

from __future__ import annotations

import json
import os
import sys

from asgi_kit import ROUTE_SCOPE_KEY, Stack, answer_lifespan
from asgi_kit.auth import AuthMiddleware, JWTConfig, JWTManager, get_principal
from asgi_kit.errors import NOT_FOUND, ProblemDetailsMiddleware, ProblemError
from asgi_kit.guards import SecurityHeadersMiddleware
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware, new_logger
from asgi_kit.metrics import MetricsMiddleware, register_metrics
from asgi_kit.types import Receive, Scope, Send

# A development secret; a real service reads it from settings (ASGI_KIT_JWT__SECRET).
SECRET = os.environ.get("EXAMPLE_JWT_SECRET", "example-only-secret-change-me-0123456789")
PUBLIC = ["/metrics"]


def kit_stack(service: str) -> tuple[Stack, JWTManager]:
    """Request id, access log, metrics (served at /metrics), problem details, security headers, JWT auth."""
    jwt = JWTManager(JWTConfig(secret=SECRET, issuer="https://example.invalid", audience=service))
    stack = (
        Stack()
        .use(RequestIDMiddleware)
        .use(LoggingMiddleware, logger=new_logger(service), exclude_paths=PUBLIC)
        .use(MetricsMiddleware, metrics=register_metrics(service), path="/metrics")
        .use(ProblemDetailsMiddleware)
        .use(SecurityHeadersMiddleware)
        .use(AuthMiddleware, jwt=jwt, exclude_paths=PUBLIC)
    )
    return stack, jwt


def print_dev_token(jwt: JWTManager) -> str:
    """Mint a development token and show it, so the example can be called right away."""
    token = jwt.generate_token_pair("dev-user", "dev-org", "org_admin").access_token
    if "pytest" not in sys.modules:
        print(f"development token: {token}", file=sys.stderr)
    return token


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app: ``GET /`` says hello to whoever the stack authenticated."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    if scope["path"] != "/":
        raise ProblemError(NOT_FOUND)
    scope[ROUTE_SCOPE_KEY] = "/"  # the route template, for metrics and logs
    principal = get_principal(scope)
    body = json.dumps({"hello": principal.identity if principal else None}).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


stack, jwt = kit_stack("kit-stack-example")

if __name__ == "__main__":
    print(jwt.generate_token_pair("dev-user", "dev-org", "org_admin").access_token)
