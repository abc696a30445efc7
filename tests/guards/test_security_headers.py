"""SecurityHeadersMiddleware: safe defaults, HSTS on https only, never overrides the app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.guards import SecurityHeadersMiddleware
from asgi_kit.guards.security_headers import DEFAULT_HSTS
from asgi_kit.testing import MiddlewareContract, call_app, make_scope
from tests.harness.apps import build_app
from tests.harness.servers import serve

DEFAULTS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


class TestSecurityHeadersContract(MiddlewareContract):
    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        return SecurityHeadersMiddleware(app, **options)


def app_with_headers(*headers: tuple[bytes, bytes]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def test_defaults_on_plain_http_without_hsts() -> None:
    """On http the safe defaults are added and HSTS is not."""
    send = await call_app(SecurityHeadersMiddleware(app_with_headers()))
    assert {k.decode(): v.decode() for k, v in send.headers} == DEFAULTS


async def test_hsts_on_https() -> None:
    """On https the defaults and HSTS are added."""
    send = await call_app(SecurityHeadersMiddleware(app_with_headers()), make_scope(scheme="https"))
    assert send.header("strict-transport-security") == DEFAULT_HSTS
    for name, value in DEFAULTS.items():
        assert send.header(name) == value


async def test_hsts_on_http_when_asked() -> None:
    """hsts_https_only=False sends HSTS on plain http too (TLS terminated by a proxy)."""
    layer = SecurityHeadersMiddleware(app_with_headers(), hsts_https_only=False, hsts="max-age=60")
    send = await call_app(layer)
    assert send.header("strict-transport-security") == "max-age=60"


async def test_app_headers_are_never_overridden() -> None:
    """A header the app set, in any case, is kept as is and not duplicated; the app's headers keep their order."""
    app = app_with_headers(
        (b"X-Frame-Options", b"SAMEORIGIN"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")
    )
    send = await call_app(SecurityHeadersMiddleware(app))
    assert send.headers[:3] == [
        (b"X-Frame-Options", b"SAMEORIGIN"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
    assert len([k for k, _ in send.headers if k.lower() == b"x-frame-options"]) == 1
    assert send.header("x-content-type-options") == "nosniff"


@pytest.mark.parametrize("name", [bytearray(b"X-Frame-Options"), memoryview(b"x-frame-options")])
async def test_header_names_of_other_byte_types_are_still_recognised(name: Any) -> None:
    """A header name given as a bytearray or memoryview still keeps the layer from adding its own."""
    send = await call_app(SecurityHeadersMiddleware(app_with_headers((name, b"SAMEORIGIN"))))
    assert [bytes(k).lower() for k, _ in send.headers].count(b"x-frame-options") == 1
    assert send.header("x-content-type-options") == "nosniff"


async def test_options_set_disable_and_extend() -> None:
    """Each header can be changed or turned off, and extra headers follow the same rule."""
    layer = SecurityHeadersMiddleware(
        app_with_headers((b"x-custom", b"app")),
        frame_options=None,
        referrer_policy="",
        content_security_policy="default-src 'none'",
        permissions_policy="camera=()",
        cross_origin_resource_policy="same-site",
        cross_origin_embedder_policy="require-corp",
        extra_headers={"X-Custom": "kit", "X-Robots-Tag": "noindex"},
    )
    send = await call_app(layer)
    assert send.header("x-frame-options") is None and send.header("referrer-policy") is None
    assert send.header("content-security-policy") == "default-src 'none'"
    assert send.header("permissions-policy") == "camera=()"
    assert send.header("cross-origin-resource-policy") == "same-site"
    assert send.header("cross-origin-embedder-policy") == "require-corp"
    assert send.header_values("x-custom") == ["app"]
    assert send.header("x-robots-tag") == "noindex"


async def test_everything_off_passes_through() -> None:
    """With every header turned off the app's response is untouched."""
    layer = SecurityHeadersMiddleware(
        app_with_headers((b"x-app", b"1")),
        hsts=None,
        content_type_options=None,
        referrer_policy=None,
        frame_options=None,
        cross_origin_opener_policy=None,
    )
    send = await call_app(layer, make_scope(scheme="https"))
    assert send.headers == [(b"x-app", b"1")]


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"hsts": 5}, TypeError, "hsts"),
        ({"frame_options": "DENY\r\nx: y"}, ValueError, "frame_options"),
        ({"referrer_policy": "café☃"}, ValueError, "referrer_policy"),
        ({"hsts_https_only": "yes"}, TypeError, "hsts_https_only"),
        ({"extra_headers": [("a", "b")]}, TypeError, "extra_headers"),
        ({"extra_headers": {"bad name": "x"}}, ValueError, "extra_headers"),
        ({"extra_headers": {"x-ok": "a\nb"}}, ValueError, "extra_headers"),
    ],
)
def test_bad_options_fail_at_construction(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Wrong types, CR/LF injection and invalid names are refused when the layer is built, naming the option."""
    with pytest.raises(error, match=match):
        SecurityHeadersMiddleware(app_with_headers(), **options)


def test_repr_lists_headers() -> None:
    """The repr lists the header names the layer adds."""
    assert "x-frame-options" in repr(SecurityHeadersMiddleware(app_with_headers()))


@pytest.mark.parametrize("framework", ["starlette", "fastapi", "litestar"])
async def test_headers_on_framework_responses(framework: str) -> None:
    """Responses of real framework apps, including their 404s, get the headers."""
    transport = httpx.ASGITransport(app=SecurityHeadersMiddleware(build_app(framework)))
    async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
        for path in ("/ok", "/missing"):
            response = await client.get(path)
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["strict-transport-security"] == DEFAULT_HSTS


@pytest.mark.integration
def test_headers_over_real_http() -> None:
    """Over real HTTP the headers arrive with the app's own headers untouched."""
    layer = SecurityHeadersMiddleware(build_app("bare"), content_security_policy="default-src 'none'")
    with serve(layer, "uvicorn") as served:
        response = httpx.get(served.url + "/ok", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-security-policy"] == "default-src 'none'"
    assert response.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in response.headers
