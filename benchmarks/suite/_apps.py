"""The bare apps every variant is measured against, and the synthetic request.

The request is a realistic ``GET /items/42?verbose=1`` with ``Authorization: Bearer <HS256 JWT>``
and the headers a browser or SDK sends; tokens are minted here with the standard library so
that the token pool costs nothing to import and is the same for every variant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from asgi_kit._asgi.lifespan import answer_lifespan
from asgi_kit._asgi.routes import ROUTE_SCOPE_KEY, RouteLookup
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.bench.request import BenchRequest

PATH: Final = "/items/42"
ROUTE: Final = "/items/{item_id}"
BODY: Final = b'{"item_id":42}'
_START_HEADERS: Final = ((b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode()))

SECRET: Final = "asgi-kit-bench-secret-0123456789abcdef-0123456789abcdef"
ISSUER: Final = "https://bench.asgi-kit.invalid"
AUDIENCE: Final = "asgi-kit-bench"
ROLE: Final = "org_admin"
ORG: Final = "org-0"  # the organization of the pre-set principal and of the run's API key
# The kit's default access-token lifetime (its maximum unless configured otherwise).
TOKEN_LIFETIME: Final = 900

BASE_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"host", b"api.example.com"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) asgi-kit-bench/1.0"),
    (b"accept", b"application/json"),
    (b"accept-encoding", b"gzip, deflate, br"),
)
#: The suite's request without its credential (each request adds its ``authorization``).
REQUEST: Final = BenchRequest("GET", PATH, b"verbose=1", BASE_HEADERS[1:], host=BASE_HEADERS[0][1])


class SkipVariant(Exception):
    """A variant cannot run here: its layer or peer library is not importable (yet)."""


def load(module: str, *names: str) -> tuple[Any, ...]:
    """Import ``names`` from ``module`` lazily; a missing module or name skips the variant."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise SkipVariant(f"{module} is not importable ({exc})") from exc
    found = []
    for name in names:
        if not hasattr(mod, name):
            raise SkipVariant(f"{module}.{name} does not exist yet")
        found.append(getattr(mod, name))
    return tuple(found)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


_DEFAULT_JWT_HEADER: Final = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
_header_cache: list[bytes] = []


def jwt_header() -> bytes:
    """The encoded JOSE header the kit's ``JWTManager`` writes (``typ``, ``kid``), else a plain one.

    Borrowed from one token the kit mints, so the pool looks exactly like the kit's own
    access tokens; PyJWT accepts the same header.
    """
    if not _header_cache:
        header = _DEFAULT_JWT_HEADER
        try:
            manager_cls, config_cls = load("asgi_kit.auth", "JWTManager", "JWTConfig")
            config = config_cls(algorithm="HS256", secret=SECRET, issuer=ISSUER, audience=AUDIENCE)
            pair = manager_cls(config).generate_token_pair("user-0", "org-0", ROLE)
            header = pair.access_token.split(".", 1)[0].encode("ascii")
        except (SkipVariant, TypeError, ValueError, AttributeError):
            pass
        _header_cache.append(header)
    return _header_cache[0]


def mint_token(
    index: int, *, secret: str = SECRET, lifetime: int = TOKEN_LIFETIME, now: int | None = None
) -> str:
    """An HS256 access token shaped like the kit's own (``sub``, ``org_id``, ``role``, ``type``, ``jti``)."""
    issued = int(time.time()) if now is None else now
    claims = {
        "sub": f"user-{index % 1000}",
        "org_id": f"org-{index % 50}",
        "role": ROLE,
        "type": "access",
        "jti": f"{os.urandom(8).hex()}{index:x}",
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = jwt_header() + b"." + payload
    signature = _b64(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode("ascii")


def bearer_values(count: int, *, cold: bool) -> list[bytes]:
    """``count`` Authorization header values: all distinct (cold) or one token reused (cached)."""
    if cold:
        now = int(time.time())
        return [b"Bearer " + mint_token(i, now=now).encode() for i in range(count)]
    value = b"Bearer " + mint_token(0).encode()
    return [value] * count


def api_key_record(key: str) -> Any:
    """The stored record of ``key`` (hash only): organization ``org-0``, role ``org_user``, no user."""
    record_cls, parse, hash_key = load("asgi_kit.auth", "APIKeyRecord", "parse_api_key", "hash_api_key")
    return record_cls(
        key_id=parse(key).key_id, org_id=ORG, user_id=None, role="org_user", key_hash=hash_key(key)
    )


def api_key_values(count: int, key: str) -> list[bytes]:
    """``count`` Authorization values carrying one API key, as OpenAI-style clients send it."""
    return [b"Bearer " + key.encode("ascii")] * count


def request_scope(authorization: bytes, extras: dict[str, Any] | None = None) -> Scope:
    """A fresh scope as uvicorn builds it for ``GET /items/42?verbose=1`` over HTTP/1.1."""
    return REQUEST.scope(((b"authorization", authorization),), extras)


def authorized_request(authorization: bytes) -> BenchRequest:
    """The suite's request carrying one ``Authorization`` value (what the e2e loaders send)."""
    return replace(REQUEST, headers=(*REQUEST.headers, (b"authorization", authorization)))


async def bare_asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The pure-ASGI base: answers 200 with a small JSON body and names its route, as routers do."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    scope["asgi_kit.route"] = ROUTE
    await send({"type": "http.response.start", "status": 200, "headers": list(_START_HEADERS)})
    await send({"type": "http.response.body", "body": BODY})


class Passthrough:
    """The floor: a pure-ASGI middleware that does nothing but call the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class LabelBeforeRouting:
    """Matches the request against a FastAPI/Starlette/Litestar router, as for a 401's label.

    The layers label a request rejected before routing by asking the app's router through
    :class:`~asgi_kit._asgi.routes.RouteLookup`; the bench request is served (the suite
    checks every answer), so this layer asks first, against ``router_app``, then calls ``app``.
    The stored answer is dropped first so that nested copies each match afresh: ten copies
    around the bare app make the cost ten times larger than the noise of one request.
    """

    def __init__(self, app: ASGIApp, *, router_app: Any) -> None:
        self.app = app
        self._lookup = RouteLookup(router_app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.pop(ROUTE_SCOPE_KEY, None)
        self._lookup(scope)
        await self.app(scope, receive, send)


class OtelSdkFloor:
    """The OpenTelemetry SDK's own minimum per traced request, as a reference for tracing layers.

    It makes only the calls any layer that records a sampled server span must make: start a
    ``SERVER`` span as a new trace, make it the current context for the app, end it. With
    ``semconv=True`` it also hands the SDK the attributes and the route name the kit's
    ``TracingMiddleware`` records for the bench request, as constants prepared once (nothing
    read from the request): what the SDK charges for them. What a tracing layer costs above
    that is its own work.
    """

    def __init__(self, app: ASGIApp, *, tracer_provider: Any, semconv: bool = False) -> None:
        attach, detach, context_cls = load("opentelemetry.context", "attach", "detach", "Context")
        span_kind, set_span_in_context = load("opentelemetry.trace", "SpanKind", "set_span_in_context")
        self.app = app
        self._tracer = tracer_provider.get_tracer("asgi_kit.bench.floor")
        self._attach, self._detach = attach, detach
        self._set_span_in_context = set_span_in_context
        self._root = context_cls()
        self._server = span_kind.SERVER
        self._attributes: dict[str, Any] | None = None
        if semconv:  # read off the bench request itself, so the two never drift apart
            scope = request_scope(b"")
            headers = dict(scope["headers"])
            self._attributes = {
                "http.request.method": scope["method"],
                "url.path": scope["path"],
                "url.scheme": scope["scheme"],
                "network.protocol.version": scope["http_version"],
                "server.address": headers[b"host"].decode("latin-1"),
                "server.port": 80,  # the scheme's default: the Host header names no port
                "client.address": scope["client"][0],
                "user_agent.original": headers[b"user-agent"].decode("latin-1"),
                "url.query": scope["query_string"].decode("latin-1"),
            }
        self._named = f"GET {ROUTE}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = self._tracer.start_span("GET", self._root, self._server, self._attributes)
        token = self._attach(self._set_span_in_context(span))
        try:
            await self.app(scope, receive, send)
        finally:
            self._detach(token)
            if self._attributes is not None:
                span.update_name(self._named)
                span.set_attribute("http.route", ROUTE)
                span.set_attribute("http.response.status_code", 200)
            span.end()


def passthroughs(app: ASGIApp, copies: int) -> ASGIApp:
    """``copies`` nested passthroughs around ``app``."""
    for _ in range(copies):
        app = Passthrough(app)
    return app


def bare_fastapi_app(dependencies: Sequence[Any] = ()) -> Any:
    """The FastAPI base: one async route ``GET /items/{item_id}`` returning the same JSON."""
    (fastapi_cls,) = load("fastapi", "FastAPI")
    app = fastapi_cls(openapi_url=None, docs_url=None, redoc_url=None)

    async def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    app.add_api_route(ROUTE, read_item, methods=["GET"], dependencies=list(dependencies))
    return app


def bare_starlette_app() -> Any:
    """The Starlette base: one async route ``GET /items/{item_id}`` returning the same JSON."""
    starlette_cls, route_cls, response_cls = (
        load("starlette.applications", "Starlette")[0],
        load("starlette.routing", "Route")[0],
        load("starlette.responses", "JSONResponse")[0],
    )

    async def read_item(request: Any) -> Any:
        return response_cls({"item_id": int(request.path_params["item_id"])})

    return starlette_cls(routes=[route_cls(ROUTE, read_item)])


__all__ = [
    "AUDIENCE",
    "BASE_HEADERS",
    "BODY",
    "ISSUER",
    "ORG",
    "PATH",
    "REQUEST",
    "ROLE",
    "ROUTE",
    "SECRET",
    "LabelBeforeRouting",
    "OtelSdkFloor",
    "Passthrough",
    "SkipVariant",
    "api_key_record",
    "api_key_values",
    "authorized_request",
    "bare_asgi_app",
    "bare_fastapi_app",
    "bare_starlette_app",
    "bearer_values",
    "load",
    "mint_token",
    "passthroughs",
    "request_scope",
]
