"""The kit's stack around the FastAPI test app, as a ``module:attribute`` target for ``granian``."""

from __future__ import annotations

from asgi_kit import Stack
from asgi_kit.auth import AuthMiddleware, JWTConfig, JWTManager
from asgi_kit.errors import ProblemDetailsMiddleware
from asgi_kit.logging import RequestIDMiddleware
from asgi_kit.metrics import MetricsMiddleware
from asgi_kit.tracing import TracingMiddleware
from tests.harness.apps import build_app

SECRET = "granian-process-secret-" + "x" * 32
jwt = JWTManager(JWTConfig(secret=SECRET, issuer="https://issuer.test", audience="granian"))

app = (
    Stack()
    .use(RequestIDMiddleware)
    .use(TracingMiddleware)
    .use(MetricsMiddleware, path="/metrics", exclude_paths=["/metrics"])
    .use(ProblemDetailsMiddleware, reraise=False)
    .use(AuthMiddleware, jwt=jwt, exclude_paths=["/metrics"])
    .wrap(build_app("fastapi"))
)
