"""Type-checked, not run: the handler mappings fit each framework's ``exception_handlers=``
and the guards fit each framework's middleware API (``mypy --strict tests/integrations``)."""

from __future__ import annotations

from fastapi import FastAPI
from litestar import Litestar
from starlette.applications import Starlette
from starlette.middleware import Middleware

from asgi_kit.guards import BodyLimitMiddleware, SecurityHeadersMiddleware, TimeoutMiddleware
from asgi_kit.integrations.fastapi import problem_exception_handlers as fastapi_handlers
from asgi_kit.integrations.litestar import problem_exception_handlers as litestar_handlers
from asgi_kit.integrations.starlette import problem_exception_handlers as starlette_handlers


def build() -> tuple[Starlette, FastAPI, Litestar]:
    starlette = Starlette(
        exception_handlers=starlette_handlers(),
        middleware=[
            Middleware(SecurityHeadersMiddleware, frame_options="SAMEORIGIN"),
            Middleware(TimeoutMiddleware, timeout=30),
            Middleware(BodyLimitMiddleware, max_body_size=1024),
        ],
    )
    fastapi = FastAPI(exception_handlers=fastapi_handlers())
    fastapi.add_middleware(TimeoutMiddleware, timeout=30)
    fastapi.add_middleware(BodyLimitMiddleware, max_body_size=1024)
    litestar = Litestar(route_handlers=[], exception_handlers=litestar_handlers())
    return starlette, fastapi, litestar
