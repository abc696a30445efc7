"""AuthMiddleware over raw ASGI: the contract, credentials handling, RFC 6750 answers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._asgi.principal import Credentials
from asgi_kit._asgi.types import ASGIApp, Message, Scope
from asgi_kit.auth import (
    APIKeyRecord,
    AuthMiddleware,
    InMemoryAPIKeyStore,
    JWTManager,
    generate_api_key,
    hash_api_key,
    parse_api_key,
)
from asgi_kit.auth.cache import VerifiedTokenCache
from asgi_kit.testing import MiddlewareContract, RecordingSend, StrictReceive, call_app, make_scope
from tests.auth.helpers import Clock, hs_manager, whoami_app

CHALLENGE = 'Bearer realm="api"'
INVALID = 'Bearer realm="api", error="invalid_token"'

_MANAGER = hs_manager()
_TOKEN = _MANAGER.generate_token_pair("user-1", "org-1", "org_user").access_token


class TestAuthContract(MiddlewareContract):
    """The standard middleware contract, with a valid bearer token on every request."""

    def make(self, app: ASGIApp, **options: Any) -> ASGIApp:
        return AuthMiddleware(app, jwt=_MANAGER, **options)

    def request_headers(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {_TOKEN}")]

    # No per-request state to compare: a cached token's principal and credentials are immutable
    # and shared by its requests. test_principal_is_per_request pins isolation across tokens.


def api_key_store(**changes: Any) -> tuple[str, InMemoryAPIKeyStore]:
    key = generate_api_key()
    record = APIKeyRecord(
        key_id=parse_api_key(key).key_id,
        org_id="org-9",
        user_id=None,
        role="org_user",
        key_hash=hash_api_key(key),
        scopes=("use_models",),
    )
    for name, value in changes.items():
        object.__setattr__(record, name, value)
    return key, InMemoryAPIKeyStore([record])


async def request(app: ASGIApp, *headers: tuple[str | bytes, str | bytes], **kwargs: Any) -> RecordingSend:
    return await call_app(app, make_scope(headers=list(headers), **kwargs))


def test_options_are_validated() -> None:
    """Missing credentials sources, wrong types, bad realm or header fail at construction."""
    with pytest.raises(ValueError, match="jwt=, api_keys="):
        AuthMiddleware(whoami_app)
    with pytest.raises(TypeError, match="jwt"):
        AuthMiddleware(whoami_app, jwt="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="api_keys"):
        AuthMiddleware(whoami_app, api_keys=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="realm"):
        AuthMiddleware(whoami_app, jwt=_MANAGER, realm="a\r\nb")
    with pytest.raises(TypeError, match="realm"):
        AuthMiddleware(whoami_app, jwt=_MANAGER, realm=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="header"):
        AuthMiddleware(whoami_app, api_keys=InMemoryAPIKeyStore(), api_key_header="bad header")
    with pytest.raises(ValueError, match="token_cache_size"):
        AuthMiddleware(whoami_app, jwt=_MANAGER, token_cache_size=-1)
    with pytest.raises(TypeError, match="exclude_paths"):
        AuthMiddleware(whoami_app, jwt=_MANAGER, exclude_paths="/health")


async def test_no_credentials_gets_401_with_bare_challenge() -> None:
    """No credentials: 401 problem with a challenge and no error code (RFC 6750 §3.1)."""
    response = await request(AuthMiddleware(whoami_app, jwt=_MANAGER))
    assert response.status == 401
    assert response.header("www-authenticate") == CHALLENGE
    assert response.header("content-type") == "application/problem+json"
    assert response.json()["status"] == 401


async def test_valid_jwt_sets_principal_and_credentials() -> None:
    """A valid bearer JWT reaches the app with scope["user"] and scope["auth"] set."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        await whoami_app(scope, receive, send)

    response = await request(AuthMiddleware(app, jwt=_MANAGER), ("authorization", f"Bearer {_TOKEN}"))
    assert response.status == 200
    assert response.json() == {"id": "user-1", "role": "org_user", "method": "jwt", "org": "org-1"}
    assert seen[0]["auth"].method == "jwt"
    assert seen[0]["user"].claims["sub"] == "user-1"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    """The auth scheme is matched case-insensitively."""
    app = AuthMiddleware(whoami_app, jwt=_MANAGER)
    assert (await request(app, ("authorization", f"{scheme} {_TOKEN}"))).status == 200


async def test_failures_share_one_body() -> None:
    """Every invalid credential gives the same status, headers and body."""
    key, store = api_key_store()
    app = AuthMiddleware(whoami_app, jwt=_MANAGER, api_keys=store)
    cases = [
        ("authorization", "Basic dXNlcjpwYXNz"),
        ("authorization", "Bearer"),
        ("authorization", "Bearer not-a-jwt"),
        ("authorization", f"Bearer {_TOKEN[:-3]}"),
        ("authorization", "Bearer " + key[:-1] + ("A" if key[-1] != "A" else "B")),
        ("x-api-key", "sk_live_nonsense"),
        ("authorization", "Bearer a b"),
    ]
    responses = [await request(app, case) for case in cases]
    assert {r.status for r in responses} == {401}
    assert {r.body for r in responses} == {responses[0].body}
    assert {tuple(r.headers) for r in responses} == {tuple(responses[0].headers)}
    assert responses[0].header("www-authenticate") == INVALID
    for r, case in zip(responses, cases, strict=True):
        assert case[1].encode() not in r.body


@pytest.mark.parametrize(
    "headers",
    [
        [("authorization", f"Bearer {_TOKEN}"), ("authorization", f"Bearer {_TOKEN}")],
        [("authorization", f"Bearer {_TOKEN}"), ("authorization", "Bearer other")],
        [("x-api-key", "a"), ("x-api-key", "b")],
        [("authorization", f"Bearer {_TOKEN}"), ("x-api-key", "sk_live_x")],
    ],
)
async def test_repeated_or_conflicting_credentials_get_400(headers: list[tuple[str, str]]) -> None:
    """Two Authorization headers, two key headers, or both kinds: 400 invalid_request, never first-wins."""
    app = AuthMiddleware(whoami_app, jwt=_MANAGER, api_keys=InMemoryAPIKeyStore())
    response = await request(app, *headers)
    assert response.status == 400
    assert response.header("www-authenticate") == 'Bearer realm="api", error="invalid_request"'


async def test_key_header_ignored_when_api_keys_disabled() -> None:
    """With JWT only, an X-API-Key header is not a credential and does not conflict."""
    app = AuthMiddleware(whoami_app, jwt=_MANAGER)
    response = await request(app, ("authorization", f"Bearer {_TOKEN}"), ("x-api-key", "whatever"))
    assert response.status == 200


async def test_api_key_in_header_and_as_bearer() -> None:
    """An API key works in X-API-Key and as Authorization: Bearer (OpenAI clients)."""
    key, store = api_key_store()
    app = AuthMiddleware(whoami_app, jwt=_MANAGER, api_keys=store)
    for header in (("x-api-key", key), ("authorization", f"Bearer {key}")):
        response = await request(app, header)
        assert response.status == 200
        assert response.json()["method"] == "api_key"
        assert response.json()["org"] == "org-9"


async def test_api_keys_only_sends_bearer_to_the_key_path() -> None:
    """Without a JWT manager every bearer credential is treated as an API key."""
    key, store = api_key_store()
    app = AuthMiddleware(whoami_app, api_keys=store)
    assert (await request(app, ("authorization", f"Bearer {key}"))).status == 200
    assert (await request(app, ("authorization", f"Bearer {_TOKEN}"))).status == 401


@pytest.mark.parametrize("junk", ["a b", "tok\x00en", "é.x.y", "a\tb", "=.=.=", "abc%2F.def.ghi", "~~~"])
async def test_bearer_outside_the_token_alphabets_is_refused_before_any_store(junk: str) -> None:
    """Bytes no JWT or API key can hold get the uniform 401, and never reach the key store."""
    key, store = api_key_store()
    looked_up: list[str] = []
    original = store.get_api_key

    async def counting(key_id: str) -> APIKeyRecord | None:
        looked_up.append(key_id)
        return await original(key_id)

    store.get_api_key = counting  # type: ignore[method-assign]
    for app in (
        AuthMiddleware(whoami_app, jwt=_MANAGER, api_keys=store),
        AuthMiddleware(whoami_app, api_keys=store),
    ):
        for value in (f"Bearer {junk}", f"Bearer sk_live_{junk}"):
            scope = make_scope(headers=[(b"authorization", value.encode("utf-8"))])
            response = await call_app(app, scope)
            assert response.status == 401
            assert response.header("www-authenticate") == INVALID
    assert looked_up == []
    assert (await request(AuthMiddleware(whoami_app, api_keys=store), ("x-api-key", key))).status == 200


async def test_store_outage_gives_503_not_401() -> None:
    """A key store that raises gives a 503 problem."""

    class BrokenStore(InMemoryAPIKeyStore):
        async def get_api_key(self, key_id: str) -> APIKeyRecord | None:
            raise ConnectionError("database down")

    key = generate_api_key()
    response = await request(AuthMiddleware(whoami_app, api_keys=BrokenStore()), ("x-api-key", key))
    assert response.status == 503
    assert response.header("retry-after") == "5"
    assert b"database" not in response.body


async def test_revocation_store_outage_gives_503() -> None:
    """A revocation store that raises gives 503, even for a cached token."""

    class BrokenRevocations:
        async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
            raise ConnectionError("down")

    manager = hs_manager()
    token = manager.generate_token_pair("u", "o", "r").access_token
    manager.revocation_store = BrokenRevocations()  # type: ignore[assignment]
    response = await request(AuthMiddleware(whoami_app, jwt=manager), ("authorization", f"Bearer {token}"))
    assert response.status == 503


async def test_options_pass_by_default_and_can_be_required() -> None:
    """OPTIONS passes unauthenticated by default; allow_options=False authenticates it."""
    assert (await request(AuthMiddleware(whoami_app, jwt=_MANAGER), method="OPTIONS")).status == 200
    strict = AuthMiddleware(whoami_app, jwt=_MANAGER, allow_options=False)
    assert (await request(strict, method="OPTIONS")).status == 401


async def test_allow_anonymous_lets_missing_but_not_bad_credentials_through() -> None:
    """allow_anonymous passes requests without credentials, but still refuses bad ones."""
    app = AuthMiddleware(whoami_app, jwt=_MANAGER, allow_anonymous=True)
    anonymous = await request(app)
    assert anonymous.status == 200 and anonymous.json() is None
    assert (await request(app, ("authorization", "Bearer bad"))).status == 401


async def test_exclude_paths_are_exact() -> None:
    """/health is excluded; /healthz and /health/x are not."""
    app = AuthMiddleware(whoami_app, jwt=_MANAGER, exclude_paths=["/health"])
    assert (await request(app, path="/health")).status == 200
    assert (await request(app, path="/healthz")).status == 401
    assert (await request(app, path="/health/x")).status == 401


@pytest.mark.parametrize(
    ("patterns", "path", "root_path", "excluded"),
    [
        (["/health"], "/health", "", True),
        (["/health"], "/api/health", "/api", True),  # the route path, under a mount
        (["/health"], "/health", "/api", True),  # a server that did not prepend root_path
        (["/health"], "/api/healthz", "/api", False),
        (["/health", "/static/*"], "/static/a.css", "", True),
        (["/health", "/static/*"], "/health", "", True),
        (["/health", "/static/*"], "/staticfiles", "", False),
        (["/static/*"], "/api/static/a.css", "/api", True),
        ([], "/health", "/api", False),
    ],
)
async def test_exclusion_matches_the_path_filter(
    patterns: list[str], path: str, root_path: str, excluded: bool
) -> None:
    """The inline exact-path test answers as PathFilter does, with subtrees and a root_path."""
    app = AuthMiddleware(whoami_app, jwt=_MANAGER, exclude_paths=patterns)
    scope = make_scope(root_path=root_path)
    scope["path"] = path  # the full path as the server sent it (root_path included, or not)
    response = await call_app(app, scope)
    assert response.status == (200 if excluded else 401)


async def test_cache_is_keyed_on_the_whole_authorization_value() -> None:
    """A cache hit needs the exact header bytes; another spelling of the same token is verified anew."""
    manager = hs_manager()
    token = manager.generate_token_pair("u", "o", "r").access_token
    app = AuthMiddleware(whoami_app, jwt=manager)
    for value in (f"Bearer {token}", f"bearer {token}", f"Bearer {token}", f"Bearer {token}x"):
        for _ in range(2):  # admitted on the second sighting
            await request(app, ("authorization", value))
    assert app._cache is not None and len(app._cache) == 2
    assert (await request(app, ("authorization", f"Bearer {token}x"))).status == 401


async def test_cached_token_shares_one_immutable_identity() -> None:
    """Requests with one cached token get the same frozen principal and credentials objects."""
    app = AuthMiddleware(whoami_app, jwt=_MANAGER)
    scopes = [make_scope(headers=[("authorization", f"Bearer {_TOKEN}")]) for _ in range(3)]
    for scope in scopes:
        await call_app(app, scope)
    # verified twice (admitted on the second sighting), then served from the cache
    assert scopes[1]["user"] is scopes[2]["user"] and scopes[1]["auth"] is scopes[2]["auth"]
    assert scopes[0]["user"] == scopes[2]["user"]
    assert scopes[1]["auth"] == Credentials(scopes=(), method="jwt")
    with pytest.raises(AttributeError):
        scopes[1]["auth"].scopes = ("admin",)


async def test_head_request_gets_no_body() -> None:
    """A refused HEAD request gets the headers and no body."""
    response = await request(AuthMiddleware(whoami_app, jwt=_MANAGER), method="HEAD")
    assert response.status == 401 and response.body == b""


async def _websocket(app: ASGIApp, headers: list[tuple[str, str]], **extra: Any) -> list[Message]:
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(
        app(make_scope("/ws", type="websocket", headers=headers, **extra), inbox.get, send), 5
    )
    return sent


async def test_websocket_without_credentials_is_closed_1008_before_accept() -> None:
    """A websocket handshake without credentials is closed with 1008 and never accepted."""
    sent = await _websocket(AuthMiddleware(whoami_app, jwt=_MANAGER), [])
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_websocket_denial_response_when_supported() -> None:
    """With the websocket.http.response extension, a 401 problem is sent as the denial."""
    app = AuthMiddleware(whoami_app, jwt=_MANAGER)
    sent = await _websocket(app, [("authorization", "Bearer x")], extensions={"websocket.http.response": {}})
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 401
    assert (b"www-authenticate", INVALID.encode()) in sent[0]["headers"]
    assert sent[1]["type"] == "websocket.http.response.body"


async def test_websocket_with_token_is_accepted() -> None:
    """A websocket handshake with a valid token reaches the app."""
    sent = await _websocket(AuthMiddleware(whoami_app, jwt=_MANAGER), [("authorization", f"Bearer {_TOKEN}")])
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]


async def test_cached_token_is_still_revocation_checked() -> None:
    """A cached token stops working as soon as its jti is revoked."""
    manager = hs_manager()
    pair = manager.generate_token_pair("u", "o", "r")
    app = AuthMiddleware(whoami_app, jwt=manager)
    header = ("authorization", f"Bearer {pair.access_token}")
    for _ in range(3):
        assert (await request(app, header)).status == 200
    assert app._cache is not None and len(app._cache) == 1
    await manager.revoke(await manager.validate_jwt(pair.access_token))
    assert (await request(app, header)).status == 401


async def test_cached_token_expires_with_the_token() -> None:
    """A cache hit is not served past the token's exp."""
    clock = Clock()
    manager = hs_manager(clock)
    token = manager.generate_token_pair("u", "o", "r").access_token
    app = AuthMiddleware(whoami_app, jwt=manager)
    assert (await request(app, ("authorization", f"Bearer {token}"))).status == 200
    clock.advance(900)
    assert (await request(app, ("authorization", f"Bearer {token}"))).status == 401


async def test_cache_hit_skips_verification() -> None:
    """A repeated token is served from the cache, not verified again."""
    manager = hs_manager()
    token = manager.generate_token_pair("u", "o", "r").access_token
    calls = 0
    original = manager.verify

    async def counting_verify(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(*args, **kwargs)

    original_sync = manager.verify_sync

    def counting_verify_sync(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original_sync(*args, **kwargs)

    manager.verify = counting_verify  # type: ignore[method-assign]
    manager.verify_sync = counting_verify_sync  # type: ignore[method-assign]
    app = AuthMiddleware(whoami_app, jwt=manager)
    for _ in range(5):
        assert (await request(app, ("authorization", f"Bearer {token}"))).status == 200
    assert calls == 2  # admitted to the cache on its second sighting
    uncached = AuthMiddleware(whoami_app, jwt=manager, token_cache_size=0)
    for _ in range(2):
        assert (await request(uncached, ("authorization", f"Bearer {token}"))).status == 200
    assert calls == 4


def test_verified_token_cache_is_bounded_and_expiry_aware() -> None:
    """The cache drops the oldest entry when full and expired entries on lookup."""
    clock = Clock()
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(2, clock=clock, admit_repeated=False)
    cache.put(b"a", 1, clock() + 10)
    cache.put(b"b", 2, clock() + 100)
    cache.put(b"c", 3, clock() + 100)
    assert (cache.get(b"a"), cache.get(b"b"), cache.get(b"c")) == (None, 2, 3)
    clock.advance(100)
    assert cache.get(b"b") is None and len(cache) == 1
    cache.clear()
    assert len(cache) == 0
    disabled: VerifiedTokenCache[int] = VerifiedTokenCache(0)
    disabled.put(b"a", 1, clock() + 10)
    assert disabled.get(b"a") is None
    with pytest.raises(ValueError, match="token_cache_size"):
        VerifiedTokenCache(-1)


def test_token_cache_admits_a_token_on_its_second_sighting() -> None:
    """One-shot tokens stay out of the cache; a repeated one gets in on its second put."""
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(10)
    cache.put(b"t", 1, time.time() + 60)
    assert cache.get(b"t") is None and len(cache) == 0
    cache.put(b"t", 1, time.time() + 60)
    assert cache.get(b"t") == 1
    cache.clear()
    cache.put(b"t", 1, time.time() + 60)
    assert cache.get(b"t") is None  # clear() forgets the sightings too


def test_token_cache_keeps_most_one_shot_tokens_out() -> None:
    """A long stream of distinct tokens: at most about a quarter slip in, and the cache stays bounded."""
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(1_000_000)
    tokens = 200_000
    for index in range(tokens):
        cache.put(b"Bearer token-%d" % index, index, time.time() + 60)
    assert len(cache) < tokens * 0.3
    bounded: VerifiedTokenCache[int] = VerifiedTokenCache(100)
    for index in range(10_000):
        for _ in range(2):
            bounded.put(b"%d" % index, index, time.time() + 60)
    assert len(bounded) == 100 and bounded.get(b"9999") == 9999


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=300), st.binary(min_size=1, max_size=40))
def test_token_put_twice_is_always_cached(noise: list[bytes], token: bytes) -> None:
    """Whatever other tokens came before, a token verified twice in a row is then a hit."""
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(1_000)
    for other in noise:
        cache.put(other, 0, time.time() + 60)
    cache.put(token, 7, time.time() + 60)
    cache.put(token, 7, time.time() + 60)
    assert cache.get(token) == 7


async def test_principal_is_per_request() -> None:
    """Interleaved requests with different tokens each see their own principal."""
    manager: JWTManager = hs_manager()
    tokens = [manager.generate_token_pair(f"user-{i}", "o", "r").access_token for i in range(2)]
    arrived = [asyncio.Event(), asyncio.Event()]
    seen: dict[int, str] = {}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        index = int(scope["path"][-1])
        arrived[index].set()
        await arrived[1 - index].wait()
        seen[index] = scope["user"].user_id
        await whoami_app(scope, receive, send)

    layer = AuthMiddleware(app, jwt=manager)
    await asyncio.gather(
        *(
            layer(
                make_scope(f"/p{i}", headers=[("authorization", f"Bearer {t}")]),
                StrictReceive(),
                RecordingSend(),
            )
            for i, t in enumerate(tokens)
        )
    )
    assert seen == {0: "user-0", 1: "user-1"}
