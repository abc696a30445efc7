"""Keys, a settable clock, and token forging helpers shared by the auth tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from asgi_kit._asgi.types import Receive, Scope, Send
from asgi_kit.auth import JWTConfig, JWTManager, get_principal

SECRET = "s3cret-for-tests-only-0123456789abcdef"  # 38 bytes >= 32 (HS256)
ISSUER = "https://issuer.example"
AUDIENCE = "asgi-kit-tests"
NOW = 1_800_000_000.0


class Clock:
    """A clock tests move by hand (never sleep)."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def pem_private(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pem_public(key: Any) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@cache
def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@cache
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def hs_manager(clock: Clock | None = None, **overrides: Any) -> JWTManager:
    options: dict[str, Any] = {"secret": SECRET, "issuer": ISSUER, "audience": AUDIENCE, **overrides}
    return JWTManager(JWTConfig(**options), clock=clock or Clock())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_segment(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def forge_hs(header: Any, payload: Any, secret: bytes | str = SECRET, *, raw: bool = False) -> str:
    """A token signed with HMAC-SHA256 over arbitrary header/payload (dicts, or raw JSON text)."""
    h = b64(header.encode()) if raw else raw_segment(header)
    p = b64(payload.encode()) if raw else raw_segment(payload)
    key = secret.encode() if isinstance(secret, str) else secret
    signature = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(signature)}"


def good_claims(clock: Clock, **changes: Any) -> dict[str, Any]:
    now = int(clock())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "jti-1",
        "type": "access",
        "sub": "user-1",
        "org_id": "org-1",
        "role": "org_user",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not _DROP}


_DROP = object()
DROP: Any = _DROP


def header_for(manager: JWTManager, **changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": "HS256", "typ": "at+jwt", "kid": manager._kid}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not _DROP}


async def whoami_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the principal's identity, role and method as JSON."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    principal = get_principal(scope)
    body = json.dumps(
        None
        if principal is None
        else {
            "id": principal.identity,
            "role": principal.role,
            "method": principal.auth_method,
            "org": principal.org_id,
        }
    ).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})
