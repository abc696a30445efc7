"""The one stack every framework example wraps its app with.

Run any of the examples with uvicorn from the repository root, e.g.
``uvicorn examples.fastapi_app:app``, then call it with the printed development token:
``curl -H "Authorization: Bearer $TOKEN" localhost:8000/hello``.
"""

from __future__ import annotations

import os
import sys

from asgi_kit import Stack
from asgi_kit.auth import AuthMiddleware, JWTConfig, JWTManager
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.guards import SecurityHeadersMiddleware
from asgi_kit.logging import LoggingMiddleware, RequestIDMiddleware, new_logger
from asgi_kit.metrics import MetricsMiddleware, register_metrics

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
