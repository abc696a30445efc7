"""``SecurityHeadersMiddleware``: browser-hardening response headers with safe defaults.

Every header is rendered to bytes once, in ``__init__``; per response the layer only checks
which of them the app already set and appends the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from asgi_kit._asgi.headers import header_name
from asgi_kit._asgi.options import check_bool, check_instance
from asgi_kit._asgi.paths import PathFilter
from asgi_kit._asgi.types import ASGIApp, Message, Receive, Scope, Send

#: Two years, sub-domains included, no ``preload`` (preloading is a commitment to make on purpose).
DEFAULT_HSTS: Final = "max-age=63072000; includeSubDomains"


def _encode(option: str, value: object) -> bytes | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"{option} must be a string or None, got {type(value).__name__}")
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"{option} must not contain CR, LF or NUL")
    try:
        return value.strip().encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{option} must be latin-1 text") from None


class SecurityHeadersMiddleware:
    """Add security headers to every HTTP response the app has not already given them.

    Place it near the outside of the stack so the kit's own error responses (401, 413, 429,
    500 ...) get the headers too. It never overrides a header the app set (compared by name,
    case-insensitively), so a route that needs a looser ``Content-Security-Policy`` sets its own.

    ``Strict-Transport-Security`` is only sent on ``https`` requests by default (a browser
    ignores it over plain HTTP, and sending it there is a misconfiguration). Behind a proxy that
    terminates TLS, let the server rewrite the scheme (``uvicorn --proxy-headers
    --forwarded-allow-ips=...``) or pass ``hsts_https_only=False``.

    Reads ``scope["scheme"]``; writes response headers only. Websocket and lifespan scopes pass
    through untouched. Each header option takes a string, or ``None``/``""`` to leave it out.

    Args:
        app: the wrapped ASGI app.
        hsts: ``Strict-Transport-Security``.
        hsts_https_only: send HSTS only when ``scope["scheme"]`` is ``https``.
        content_type_options: ``X-Content-Type-Options``.
        referrer_policy: ``Referrer-Policy``.
        frame_options: ``X-Frame-Options``.
        content_security_policy: ``Content-Security-Policy`` (off by default: a policy depends on
            the app; ``"default-src 'none'; frame-ancestors 'none'"`` suits a JSON API).
        permissions_policy: ``Permissions-Policy``.
        cross_origin_opener_policy: ``Cross-Origin-Opener-Policy``.
        cross_origin_resource_policy: ``Cross-Origin-Resource-Policy`` (off by default: it blocks
            other sites embedding the responses).
        cross_origin_embedder_policy: ``Cross-Origin-Embedder-Policy``.
        extra_headers: more headers to add, name to value, with the same never-override rule.
        exclude_paths: exact paths (or ``/prefix/*``) whose responses are left untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: str | None = DEFAULT_HSTS,
        hsts_https_only: bool = True,
        content_type_options: str | None = "nosniff",
        referrer_policy: str | None = "strict-origin-when-cross-origin",
        frame_options: str | None = "DENY",
        content_security_policy: str | None = None,
        permissions_policy: str | None = None,
        cross_origin_opener_policy: str | None = "same-origin",
        cross_origin_resource_policy: str | None = None,
        cross_origin_embedder_policy: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        exclude_paths: Sequence[str] = (),
    ) -> None:
        check_bool("hsts_https_only", hsts_https_only)
        if extra_headers is not None:
            check_instance("extra_headers", extra_headers, Mapping, "a mapping of header name to value")
        options = {
            b"x-content-type-options": ("content_type_options", content_type_options),
            b"referrer-policy": ("referrer_policy", referrer_policy),
            b"x-frame-options": ("frame_options", frame_options),
            b"content-security-policy": ("content_security_policy", content_security_policy),
            b"permissions-policy": ("permissions_policy", permissions_policy),
            b"cross-origin-opener-policy": ("cross_origin_opener_policy", cross_origin_opener_policy),
            b"cross-origin-resource-policy": ("cross_origin_resource_policy", cross_origin_resource_policy),
            b"cross-origin-embedder-policy": ("cross_origin_embedder_policy", cross_origin_embedder_policy),
        }
        named = {name: _encode(option, value) for name, (option, value) in options.items()}
        for name, value in (extra_headers or {}).items():
            named[header_name(name, option="extra_headers")] = _encode(f"extra_headers[{name!r}]", value)
        headers = tuple((name, value) for name, value in named.items() if value is not None)
        hsts_value = _encode("hsts", hsts)
        hsts_header = () if hsts_value is None else ((b"strict-transport-security", hsts_value),)
        self.app = app
        self._exclude = PathFilter(exclude_paths)
        # Two precomputed header sets: one for plain-HTTP requests, one for https.
        self._https_headers: tuple[tuple[bytes, bytes], ...] = hsts_header + headers
        self._http_headers: tuple[tuple[bytes, bytes], ...] = (
            headers if hsts_https_only else self._https_headers
        )
        self._names = frozenset(name for name, _ in self._https_headers)

    def __repr__(self) -> str:
        names = ", ".join(name.decode() for name, _ in self._https_headers)
        return f"SecurityHeadersMiddleware(headers=[{names}], exclude_paths={self._exclude!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exclude.matches(scope):
            await self.app(scope, receive, send)
            return
        added = self._https_headers if scope.get("scheme") == "https" else self._http_headers
        if not added:
            await self.app(scope, receive, send)
            return

        names = self._names

        async def send_with_security_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_missing(message.get("headers") or (), added, names)
            await send(message)

        await self.app(scope, receive, send_with_security_headers)


def _with_missing(
    headers: Iterable[tuple[bytes, bytes]], added: tuple[tuple[bytes, bytes], ...], names: frozenset[bytes]
) -> list[tuple[bytes, bytes]]:
    """The app's ``headers``, then each of ``added`` whose name the app did not set (any case)."""
    try:
        for name, _ in headers:
            if name.lower() in names:
                break
        else:
            # The usual case, an app that set none of ours: one lookup per header, instead of a
            # set of every header name built per response (a quarter of this layer's cost).
            return [*headers, *added]
    except (TypeError, AttributeError):  # a bytearray or memoryview name: the general path below
        pass
    present = {bytes(name).lower() for name, _ in headers}
    return [*headers, *(h for h in added if h[0] not in present)]


__all__ = ["DEFAULT_HSTS", "SecurityHeadersMiddleware"]
