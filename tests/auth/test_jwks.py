"""JWKS key sets against a real local aiohttp JWKS server (loopback sockets, no mocks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from asgi_kit.auth import (
    AuthMiddleware,
    CredentialStoreUnavailableError,
    JWKSKeySet,
    JWTConfig,
    JWTManager,
    UnknownKeyError,
)
from asgi_kit.testing import call_app, make_scope
from tests.auth.helpers import (
    AUDIENCE,
    ISSUER,
    Clock,
    b64,
    ec_key,
    ed_key,
    pem_private,
    raw_segment,
    rsa_key,
    whoami_app,
)


@dataclass
class JWKSServer:
    """A local JWKS endpoint whose document, status and hanging the test controls."""

    url: str = ""
    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    raw: bytes | None = None
    hang: asyncio.Event | None = None
    hits: int = 0
    other_hits: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def jwks_server() -> AsyncIterator[JWKSServer]:
    state = JWKSServer()

    async def jwks(request: web.Request) -> web.StreamResponse:
        state.hits += 1
        state.reached.set()
        if state.hang is not None:
            await state.hang.wait()
        if state.raw is not None:
            return web.Response(body=state.raw, content_type="application/json")
        return web.json_response({"keys": state.keys}, status=state.status)

    async def other(request: web.Request) -> web.Response:
        state.other_hits += 1
        return web.json_response({"keys": []})

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    app.router.add_get("/{tail:.*}", other)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        if state.hang is not None:
            state.hang.set()
        await runner.cleanup()


def rsa_jwk(kid: str, key: Any = None, **extra: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk((key or rsa_key()).public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig", **extra}


def signer(kid: str, key: Any = None) -> JWTManager:
    return JWTManager(
        JWTConfig(
            algorithm="RS256",
            private_key=pem_private(key or rsa_key()),
            key_id=kid,
            issuer=ISSUER,
            audience=AUDIENCE,
        )
    )


def verifier(server: JWKSServer, mono: Clock, **options: Any) -> JWTManager:
    jwks = JWKSKeySet(f"{server.url}/jwks.json", cooldown=options.pop("cooldown", 30), clock=mono, **options)
    return JWTManager(
        JWTConfig(algorithm="RS256", jwks_url=f"{server.url}/jwks.json", issuer=ISSUER, audience=AUDIENCE),
        jwks=jwks,
    )


async def test_token_verifies_with_key_from_jwks(jwks_server: JWKSServer) -> None:
    """A token whose kid is published in the JWKS verifies after one fetch."""
    jwks_server.keys = [rsa_jwk("k1")]
    manager = verifier(jwks_server, Clock(0))
    token = signer("k1").generate_token_pair("u", "o", "org_user").access_token
    assert (await manager.validate_jwt(token)).sub == "u"
    assert (await manager.validate_jwt(token)).sub == "u"
    assert jwks_server.hits == 1
    await manager.aclose()


async def test_thousand_unknown_kids_cause_at_most_one_fetch(jwks_server: JWKSServer) -> None:
    """1,000 tokens with unknown kids within a second cost at most one JWKS fetch."""
    jwks_server.keys = [rsa_jwk("k1")]
    mono = Clock(0)
    manager = verifier(jwks_server, mono)
    assert await manager.jwks.refresh()  # type: ignore[union-attr]
    assert jwks_server.hits == 1
    mono.advance(31)  # past the cooldown: one more fetch is allowed, and only one
    _, payload, signature = signer("k1").generate_token_pair("u", "o", "r").access_token.split(".")
    tokens = [
        f"{raw_segment({'alg': 'RS256', 'typ': 'at+jwt', 'kid': f'unknown-{i}'})}.{payload}.{signature}"
        for i in range(1000)
    ]
    started = time.perf_counter()
    results = await asyncio.gather(*(manager.validate_jwt(t) for t in tokens), return_exceptions=True)
    assert time.perf_counter() - started < 10
    assert all(isinstance(r, UnknownKeyError) for r in results)
    assert jwks_server.hits == 2
    results = await asyncio.gather(*(manager.validate_jwt(t) for t in tokens[:100]), return_exceptions=True)
    assert jwks_server.hits == 2  # still inside the cooldown
    await manager.aclose()


async def test_newly_published_key_is_picked_up(jwks_server: JWKSServer) -> None:
    """A key published after the first fetch is found once the cooldown allows a refetch."""
    jwks_server.keys = [rsa_jwk("k1")]
    mono = Clock(0)
    manager = verifier(jwks_server, mono, cooldown=5)
    old = signer("k1").generate_token_pair("u", "o", "r").access_token
    assert await manager.validate_jwt(old)
    new_key = rsa_key(3072)
    jwks_server.keys = [rsa_jwk("k1"), rsa_jwk("k2", new_key)]
    new = signer("k2", new_key).generate_token_pair("u2", "o", "r").access_token
    with pytest.raises(UnknownKeyError):
        await manager.validate_jwt(new)  # within the cooldown of the first fetch
    mono.advance(5)
    assert (await manager.validate_jwt(new)).sub == "u2"
    assert jwks_server.hits == 2
    await manager.aclose()


async def test_failed_refresh_keeps_last_good_set(jwks_server: JWKSServer) -> None:
    """A 500, a malformed document or duplicate members keep the keys already loaded."""
    jwks_server.keys = [rsa_jwk("k1")]
    mono = Clock(0)
    manager = verifier(jwks_server, mono)
    jwks = manager.jwks
    assert jwks is not None and await jwks.refresh()
    token = signer("k1").generate_token_pair("u", "o", "r").access_token
    for breakage in (
        {"status": 500},
        {"raw": b"not json"},
        {"raw": b'{"keys": [], "keys": []}'},
        {"raw": b"{}"},
    ):
        jwks_server.status, jwks_server.raw = 200, None
        for name, value in breakage.items():
            setattr(jwks_server, name, value)
        mono.advance(301)
        assert not await jwks.refresh()
        assert (await manager.validate_jwt(token)).sub == "u"
    await manager.aclose()


async def test_stale_set_refreshes_in_background(jwks_server: JWKSServer) -> None:
    """Past cache_ttl a known kid is answered at once while a refresh runs in the background."""
    jwks_server.keys = [rsa_jwk("k1")]
    mono = Clock(0)
    manager = verifier(jwks_server, mono, cache_ttl=60)
    token = signer("k1").generate_token_pair("u", "o", "r").access_token
    assert await manager.validate_jwt(token)
    mono.advance(61)
    assert await manager.validate_jwt(token)
    assert manager.jwks is not None and manager.jwks._inflight is not None
    await manager.jwks._inflight
    assert jwks_server.hits == 2
    await manager.aclose()


async def test_hanging_jwks_does_not_slow_unrelated_requests(jwks_server: JWKSServer) -> None:
    """While a JWKS fetch hangs, a known-kid request and an excluded route finish within 50 ms."""
    jwks_server.keys = [rsa_jwk("k1")]
    mono = Clock(0)
    manager = verifier(jwks_server, mono, timeout=30)
    token = signer("k1").generate_token_pair("u", "o", "r").access_token
    assert await manager.validate_jwt(token)
    jwks_server.hang = asyncio.Event()
    jwks_server.reached.clear()
    mono.advance(31)
    unknown = signer("nope", rsa_key()).generate_token_pair("u", "o", "r").access_token
    app = AuthMiddleware(whoami_app, jwt=manager, exclude_paths=["/health"], token_cache_size=0)
    stuck = asyncio.ensure_future(call_app(app, make_scope(headers=[("authorization", f"Bearer {unknown}")])))
    await asyncio.wait_for(jwks_server.reached.wait(), 5)  # the fetch has reached the server and hangs there
    for scope in (make_scope(headers=[("authorization", f"Bearer {token}")]), make_scope("/health")):
        started = time.perf_counter()
        response = await call_app(app, scope)
        assert response.status == 200
        assert time.perf_counter() - started < 0.05
    assert not stuck.done()
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    await manager.aclose()


async def test_never_loaded_jwks_gives_503(jwks_server: JWKSServer) -> None:
    """If the JWKS was never loaded and the fetch fails, the middleware answers 503."""
    jwks_server.status = 503
    manager = verifier(jwks_server, Clock(0))
    token = signer("k1").generate_token_pair("u", "o", "r").access_token
    with pytest.raises(CredentialStoreUnavailableError):
        await manager.validate_jwt(token)
    with pytest.raises(CredentialStoreUnavailableError):
        await manager.validate_jwt(token)  # within the cooldown, still unavailable
    response = await call_app(
        AuthMiddleware(whoami_app, jwt=manager), make_scope(headers=[("authorization", f"Bearer {token}")])
    )
    assert response.status == 503
    await manager.aclose()


async def test_embedded_key_urls_are_never_fetched(jwks_server: JWKSServer) -> None:
    """Tokens with jku/x5u pointing at a server cause no request to it."""
    jwks_server.keys = [rsa_jwk("k1")]
    manager = verifier(jwks_server, Clock(0))
    base = signer("k1")
    token = base.generate_token_pair("u", "o", "r").access_token
    _, payload, signature = token.split(".")
    for header in ("jku", "x5u"):
        forged_header = raw_segment(
            {"alg": "RS256", "typ": "at+jwt", "kid": "k1", header: f"{jwks_server.url}/evil"}
        )
        response = await call_app(
            AuthMiddleware(whoami_app, jwt=manager),
            make_scope(headers=[("authorization", f"Bearer {forged_header}.{payload}.{signature}")]),
        )
        assert response.status == 401
    assert jwks_server.other_hits == 0
    await manager.aclose()


async def test_unusable_jwks_entries_are_skipped(jwks_server: JWKSServer) -> None:
    """Symmetric, private, small, kid-less, foreign-alg and encryption keys are ignored."""
    small = rsa_key(1024)
    jwks_server.keys = [
        {"kty": "oct", "k": b64(b"k" * 32), "kid": "oct", "alg": "HS256"},
        {**rsa_jwk("priv"), "d": "AAAA"},
        rsa_jwk("small", small),
        {k: v for k, v in rsa_jwk("x").items() if k != "kid"},
        rsa_jwk("hs", alg="HS256"),
        rsa_jwk("enc", use="enc"),
        rsa_jwk("broken", n="!!"),
        "not-an-object",  # type: ignore[list-item]
        rsa_jwk("good"),
        rsa_jwk("good"),
        {**ECAlgorithm.to_jwk(ec_key().public_key(), as_dict=True), "kid": "ec", "alg": "ES256"},
        {**OKPAlgorithm.to_jwk(ed_key().public_key(), as_dict=True), "kid": "ed"},
        {**OKPAlgorithm.to_jwk(ed_key().public_key(), as_dict=True), "kid": "ed25519", "alg": "Ed25519"},
        {
            **OKPAlgorithm.to_jwk(Ed448PrivateKey.generate().public_key(), as_dict=True),
            "kid": "x448",
            "alg": "Ed25519",
        },
    ]
    jwks = JWKSKeySet(f"{jwks_server.url}/jwks.json", default_algorithm="EdDSA")
    assert await jwks.refresh()
    assert sorted(jwks._keys) == ["ec", "ed", "ed25519", "good"]
    assert jwks.cached("ed25519").algorithm == "Ed25519"  # type: ignore[union-attr]
    assert "good" in repr(jwks)
    assert jwks.cached("good") is not None
    await jwks.aclose()


def test_jwks_options_are_validated() -> None:
    """Bad URL, algorithms or timings fail at construction."""
    with pytest.raises(ValueError, match="jwks_url"):
        JWKSKeySet("file:///etc/passwd")
    with pytest.raises(ValueError, match="algorithms"):
        JWKSKeySet("https://x/jwks", algorithms=["HS256"])
    with pytest.raises(ValueError, match="default_algorithm"):
        JWKSKeySet("https://x/jwks", algorithms=["RS256"], default_algorithm="ES256")
    with pytest.raises(ValueError, match="jwks_cooldown"):
        JWKSKeySet("https://x/jwks", cooldown=0)


async def test_hmac_manager_with_jwks_accepts_both(jwks_server: JWKSServer) -> None:
    """An HS256 manager with a JWKS verifies its own tokens and RS256 tokens from the JWKS."""
    jwks_server.keys = [rsa_jwk("k1")]
    manager = JWTManager(
        JWTConfig(secret="h" * 32, jwks_url=f"{jwks_server.url}/jwks.json", issuer=ISSUER, audience=AUDIENCE)
    )
    own = manager.generate_token_pair("a", "o", "r").access_token
    foreign = signer("k1").generate_token_pair("b", "o", "r").access_token
    assert (await manager.validate_jwt(own)).sub == "a"
    assert (await manager.validate_jwt(foreign)).sub == "b"
    await manager.aclose()


async def test_oversized_jwks_document_is_refused(jwks_server: JWKSServer) -> None:
    """A JWKS document over the size cap is refused and the previous keys are kept."""
    jwks_server.keys = [rsa_jwk("k1")]
    mono = Clock(0)
    jwks = JWKSKeySet(f"{jwks_server.url}/jwks.json", clock=mono)
    assert await jwks.refresh()
    jwks_server.raw = b'{"keys": [], "pad": "' + b"x" * (600 * 1024) + b'"}'
    mono.advance(31)
    assert not await jwks.refresh()
    assert jwks.cached("k1") is not None
    await jwks.aclose()
