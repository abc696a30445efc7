"""The request a benchmark sends: a fresh ASGI scope per call in-process, HTTP/1.1 bytes end to end.

Written on the command line as ``'GET /path?query'``, ``'Name: value'`` headers and a body.
The scope is the one uvicorn builds for the same request over HTTP/1.1, so a layer sees in
the benchmark what it sees in production.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from asgi_kit._asgi.headers import header_name
from asgi_kit._asgi.types import Scope

Headers = tuple[tuple[bytes, bytes], ...]

_METHOD: Final = re.compile(r"[A-Z]+")
# What uvicorn reports for a local client and server; the e2e servers bind 127.0.0.1 too.
SERVER: Final = ("127.0.0.1", 8000)
CLIENT: Final = ("127.0.0.1", 51234)
DEFAULT_HOST: Final = b"127.0.0.1:8000"


@dataclass(frozen=True, slots=True)
class BenchRequest:
    """One HTTP request: method, path, query string, headers (lower-case names, no ``host``), body.

    ``host`` is the ``Host`` header of the in-process scope; end to end the header names the
    server actually loaded.
    """

    method: str = "GET"
    path: str = "/"
    query: bytes = b""
    headers: Headers = ()
    body: bytes = b""
    host: bytes = DEFAULT_HOST

    def __post_init__(self) -> None:
        if not _METHOD.fullmatch(self.method):
            raise ValueError(f"the method must be upper-case letters, got {self.method!r}")
        if not self.path.startswith("/"):
            raise ValueError(f"the path must start with '/', got {self.path!r}")
        if any(name == b"host" or name != name.lower() for name, _ in self.headers):
            raise ValueError("header names must be lower-case and exclude host (it is set per server)")

    @classmethod
    def parse(cls, line: str = "GET /", headers: Sequence[str] = (), body: str = "") -> BenchRequest:
        """``BenchRequest.parse('POST /v1/x?y=1', ['Authorization: Bearer t'], '{"a": 1}')``.

        A body adds its ``content-length`` (as a client does); ``Host`` among ``headers`` sets
        the in-process host.
        """
        method, _, target = line.strip().partition(" ")
        target = target.strip()
        if not target or " " in target:
            raise ValueError(f"a request is 'METHOD /path[?query]', got {line!r}")
        path, _, query = target.partition("?")
        host = DEFAULT_HOST
        pairs: list[tuple[bytes, bytes]] = []
        for header in headers:
            name, colon, value = header.partition(":")
            if not colon or not name.strip():
                raise ValueError(f"a header is 'Name: value', got {header!r}")
            encoded = (header_name(name, option="--header"), value.strip().encode("latin-1"))
            if encoded[0] == b"host":
                host = encoded[1]
            else:
                pairs.append(encoded)
        payload = body.encode()
        if payload and not any(name == b"content-length" for name, _ in pairs):
            pairs.append((b"content-length", str(len(payload)).encode("ascii")))
        return cls(method.upper(), path, query.encode("latin-1"), tuple(pairs), payload, host)

    @property
    def target(self) -> str:
        """``/path?query``, as on the request line."""
        return self.path + ("?" + self.query.decode("latin-1") if self.query else "")

    def __str__(self) -> str:
        return f"{self.method} {self.target}"

    def scope(self, extra_headers: Headers = (), extras: dict[str, Any] | None = None) -> Scope:
        """A fresh scope (its own headers list and state dict), ``extra_headers`` after the others."""
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "server": SERVER,
            "client": CLIENT,
            "scheme": "http",
            "method": self.method,
            "root_path": "",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": self.query,
            "headers": [(b"host", self.host), *self.headers, *extra_headers],
            "state": {},
        }
        if extras:
            scope.update(extras)
        return scope

    def http_bytes(self, port: int) -> bytes:
        """The request as a client sends it to ``127.0.0.1:port``."""
        lines = [f"{self.method} {self.target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines.extend(f"{name.decode('latin-1')}: {value.decode('latin-1')}" for name, value in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def describe(self) -> dict[str, Any]:
        """The request for a result document (header values are not kept: they may hold credentials)."""
        return {
            "method": self.method,
            "target": self.target,
            "headers": [name.decode("latin-1") for name, _ in self.headers],
            "body_bytes": len(self.body),
        }


__all__ = ["BenchRequest", "Headers"]
