"""Tokens from identity providers: minted by an independent JOSE library, verified through a local JWKS.

joserfc signs the tokens in the shapes Keycloak and Auth0 issue by default; the kit reads them
under a :class:`ProviderProfile` and refuses them under the strict default profile.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OKPKey, RSAKey

from asgi_kit.auth import (
    AuthMiddleware,
    InvalidTokenError,
    JWKSKeySet,
    JWTConfig,
    JWTManager,
    ProviderProfile,
)
from asgi_kit.auth.errors import InvalidClaimError, WrongTokenTypeError
from asgi_kit.testing import call_app, make_scope
from tests.auth.helpers import whoami_app
from tests.auth.test_jwks import JWKSServer, jwks_server

__all__ = ["jwks_server"]  # the fixture, imported for this module's tests

KEYCLOAK_ISSUER = "http://127.0.0.1:8080/realms/platform"
AUTH0_ISSUER = "https://platform.eu.auth0.com/"
API = "https://api.platform.example"
ROLES = "https://platform.example/roles"

KEYCLOAK = ProviderProfile(
    roles_claim="realm_access.roles",
    role_map={"platform-admin": "org_admin", "platform-user": "org_user"},
    org_claim="organization",
)
AUTH0 = ProviderProfile(roles_claim=ROLES, default_role="org_user", org_claim="org_id")


def rsa_signing_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def keycloak_claims(now: int, **changes: Any) -> dict[str, Any]:
    """An access token as Keycloak issues it by default (plus an organization mapper)."""
    claims = {
        "exp": now + 300,
        "iat": now,
        "auth_time": now,
        "jti": str(uuid.uuid4()),
        "iss": KEYCLOAK_ISSUER,
        "aud": [API, "account"],
        "sub": "f3a1c1d2-0b5e-4c1e-9f0a-3f7d2a9c8b11",
        "typ": "Bearer",
        "azp": "platform-console",
        "sid": str(uuid.uuid4()),
        "acr": "1",
        "realm_access": {"roles": ["offline_access", "default-roles-platform", "platform-admin"]},
        "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
        "scope": "openid email profile",
        "email_verified": True,
        "preferred_username": "ada",
        "organization": "org_acme",
    }
    claims.update(changes)
    return claims


def auth0_claims(now: int, **changes: Any) -> dict[str, Any]:
    """An access token as Auth0 issues it by default for an API (no jti; roles by a namespaced Action claim)."""
    claims = {
        "iss": AUTH0_ISSUER,
        "sub": "auth0|65f0c0ffee",
        "aud": [API, f"{AUTH0_ISSUER}userinfo"],
        "iat": now,
        "exp": now + 86_400,
        "scope": "openid profile email read:usage",
        "azp": "Zx9abcdefghijklmnop",
        "org_id": "org_kR2x",
        ROLES: ["platform-user"],
    }
    claims.update(changes)
    return claims


def mint(key: RSAKey | OKPKey, claims: dict[str, Any], *, typ: str | None = "JWT", alg: str = "RS256") -> str:
    header: dict[str, Any] = {"alg": alg, "kid": key.kid}
    if typ is not None:
        header["typ"] = typ
    return jose_jwt.encode(header, claims, key, algorithms=[alg])


def manager_for(
    server: JWKSServer, issuer: str, provider: ProviderProfile | None, algorithm: str = "RS256"
) -> JWTManager:
    url = f"{server.url}/jwks.json"
    return JWTManager(
        JWTConfig(algorithm=algorithm, jwks_url=url, issuer=issuer, audience=API, provider=provider),
        jwks=JWKSKeySet(url, algorithms=[algorithm], default_algorithm=algorithm),
    )


async def whoami(manager: JWTManager, token: str) -> tuple[int | None, Any]:
    app = AuthMiddleware(whoami_app, jwt=manager)
    response = await call_app(app, make_scope(headers=[(b"authorization", f"Bearer {token}".encode())]))
    return response.status, json.loads(response.body) if response.status == 200 else None


async def test_keycloak_token_is_read_through_the_profile(jwks_server: JWKSServer) -> None:
    """A Keycloak-shaped token: role from realm_access.roles through the map, organization from its mapper."""
    key = rsa_signing_key("kc-1")
    jwks_server.keys = [key.as_dict(private=False)]
    manager = manager_for(jwks_server, KEYCLOAK_ISSUER, KEYCLOAK)
    token = mint(key, keycloak_claims(int(time.time())))
    status, body = await whoami(manager, token)
    assert status == 200
    assert (body["role"], body["org"], body["method"]) == ("org_admin", "org_acme", "jwt")
    claims = await manager.validate_jwt(token)
    assert (claims.role, claims.org_id, claims.type, claims.scopes) == (
        "org_admin",
        "org_acme",
        "access",
        ("openid", "email", "profile"),
    )
    await manager.aclose()


async def test_auth0_token_without_jti_is_read_through_the_profile(jwks_server: JWKSServer) -> None:
    """An Auth0-shaped token: aud a list, no jti, roles under a namespaced claim, scopes from scope."""
    key = rsa_signing_key("a0-1")
    jwks_server.keys = [key.as_dict(private=False)]
    manager = manager_for(jwks_server, AUTH0_ISSUER, AUTH0)
    token = mint(key, auth0_claims(int(time.time())))
    status, body = await whoami(manager, token)
    assert status == 200 and (body["role"], body["org"]) == ("platform-user", "org_kR2x")
    claims = await manager.validate_jwt(token)
    assert claims.jti is None and "read:usage" in claims.scopes
    without_roles = mint(key, auth0_claims(int(time.time()), **{ROLES: []}))
    assert (await manager.validate_jwt(without_roles)).role == "org_user"  # default_role
    await manager.aclose()


@pytest.mark.parametrize(
    ("issuer", "claims"),
    [(KEYCLOAK_ISSUER, keycloak_claims), (AUTH0_ISSUER, auth0_claims)],
    ids=["keycloak", "auth0"],
)
async def test_provider_tokens_are_refused_by_the_strict_profile(
    jwks_server: JWKSServer, issuer: str, claims: Any
) -> None:
    """Without a profile, providers' tokens are refused (typ JWT, no type claim, no string role)."""
    key = rsa_signing_key("k")
    jwks_server.keys = [key.as_dict(private=False)]
    strict = manager_for(jwks_server, issuer, None)
    now = int(time.time())
    for token in (mint(key, claims(now)), mint(key, claims(now), typ="at+jwt")):
        status, _ = await whoami(strict, token)
        assert status == 401
        with pytest.raises(InvalidTokenError):
            await strict.validate_jwt(token)
    await strict.aclose()


@pytest.mark.parametrize("profile", [None, KEYCLOAK], ids=["strict", "provider"])
async def test_application_at_jwt_is_accepted_in_both_profiles(
    jwks_server: JWKSServer, profile: ProviderProfile | None
) -> None:
    """typ application/at+jwt (RFC 9068 §4) is at+jwt, under the strict profile and the provider one."""
    key = rsa_signing_key("k")
    jwks_server.keys = [key.as_dict(private=False)]
    manager = manager_for(jwks_server, KEYCLOAK_ISSUER, profile)
    now = int(time.time())
    claims = (
        keycloak_claims(now)
        if profile
        else {"iss": KEYCLOAK_ISSUER, "aud": API, "sub": "u", "jti": "j", "iat": now, "exp": now + 600}
        | {"type": "access", "role": "org_user"}
    )
    if profile is None:
        manager = JWTManager(
            JWTConfig(
                algorithm="RS256",
                jwks_url=f"{jwks_server.url}/jwks.json",
                issuer=KEYCLOAK_ISSUER,
                audience=API,
                max_lifetime=600,
            )
        )
    token = mint(key, claims, typ="application/at+jwt")
    assert (await manager.validate_jwt(token)).sub == claims["sub"]
    await manager.aclose()


async def test_ed25519_tokens_from_an_independent_library(jwks_server: JWKSServer) -> None:
    """A token joserfc signs with the RFC 9864 name Ed25519 verifies through a JWKS entry bound to it."""
    key = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1", "use": "sig", "alg": "Ed25519"})
    jwks_server.keys = [key.as_dict(private=False)]
    manager = manager_for(jwks_server, AUTH0_ISSUER, AUTH0, algorithm="Ed25519")
    token = mint(key, auth0_claims(int(time.time())), alg="Ed25519")
    assert (await manager.validate_jwt(token)).sub == "auth0|65f0c0ffee"
    await manager.aclose()


@pytest.mark.parametrize(
    ("changes", "typ", "error"),
    [
        pytest.param(
            {"realm_access": {"roles": ["offline_access"]}}, "JWT", InvalidClaimError, id="no-mapped-role"
        ),
        pytest.param({"realm_access": {"roles": "platform-admin"}}, "JWT", None, id="role-as-string"),
        pytest.param({"realm_access": {"roles": [1, 2]}}, "JWT", InvalidClaimError, id="roles-not-strings"),
        pytest.param(
            {"realm_access": ["platform-admin"]}, "JWT", InvalidClaimError, id="path-through-a-list"
        ),
        pytest.param({"organization": 7}, "JWT", InvalidClaimError, id="org-not-a-string"),
        pytest.param({"type": "refresh"}, "JWT", WrongTokenTypeError, id="type-claim-refresh"),
        pytest.param({"type": "access"}, "JWT", None, id="type-claim-access"),
        pytest.param({"jti": None}, "JWT", InvalidClaimError, id="jti-null"),
        pytest.param({"scope": 5}, "JWT", InvalidClaimError, id="scope-not-a-string"),
        pytest.param({}, "refresh+jwt", WrongTokenTypeError, id="typ-refresh"),
        pytest.param({}, "jose", WrongTokenTypeError, id="typ-other"),
        pytest.param({}, None, None, id="typ-absent"),
        pytest.param({"exp": "soon"}, "JWT", InvalidClaimError, id="exp-string"),
        pytest.param({"aud": ["account"]}, "JWT", InvalidTokenError, id="aud-list-without-us"),
        pytest.param({"iss": KEYCLOAK_ISSUER + "/"}, "JWT", InvalidTokenError, id="iss-trailing-slash"),
    ],
)
async def test_provider_profile_table(
    jwks_server: JWKSServer, changes: dict[str, Any], typ: str | None, error: type[Exception] | None
) -> None:
    """The provider profile reads only the configured shapes; everything else is refused with a reason."""
    key = rsa_signing_key("k")
    jwks_server.keys = [key.as_dict(private=False)]
    manager = manager_for(jwks_server, KEYCLOAK_ISSUER, KEYCLOAK)
    claims = keycloak_claims(int(time.time()))
    claims.update(changes)
    if "scope" in changes and not isinstance(changes["scope"], str):
        claims["scp"] = claims.pop("scope")  # a non-string scope is refused however it is named
    token = mint(key, claims, typ=typ)
    if error is None:
        assert (await manager.validate_jwt(token)).role == "org_admin"
    else:
        with pytest.raises(error):
            await manager.validate_jwt(token)
    await manager.aclose()


def test_lifetime_bound_and_typ_required() -> None:
    """A provider's lifetime bound applies; require_typ refuses a token without typ; options are checked."""
    secret = "s" * 32
    clock_now = 1_900_000_000
    strict_typ = JWTManager(
        JWTConfig(
            secret=secret,
            issuer="i",
            audience="a",
            provider=ProviderProfile(require_typ=True, max_lifetime=3600, default_role="r"),
        ),
        clock=lambda: clock_now,
    )
    from tests.auth.helpers import forge_hs

    base = {"iss": "i", "aud": "a", "sub": "u", "iat": clock_now, "exp": clock_now + 3600}
    kid = strict_typ._kid
    assert strict_typ.verify_sync(forge_hs({"alg": "HS256", "typ": "JWT", "kid": kid}, base, secret=secret))
    with pytest.raises(WrongTokenTypeError):
        strict_typ.verify_sync(forge_hs({"alg": "HS256", "kid": kid}, base, secret=secret))
    with pytest.raises(InvalidClaimError):
        strict_typ.verify_sync(
            forge_hs(
                {"alg": "HS256", "typ": "JWT", "kid": kid}, {**base, "exp": clock_now + 3601}, secret=secret
            )
        )
    with pytest.raises(TypeError, match="typ"):
        ProviderProfile(typ="JWT")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="role_map"):
        ProviderProfile(role_map={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="role_map"):
        ProviderProfile(role_map={"a": ""})
    with pytest.raises(ValueError, match="roles_claim"):
        ProviderProfile(roles_claim="")
    with pytest.raises(TypeError, match="roles_claim"):
        ProviderProfile(roles_claim=["roles"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="org_claim"):
        ProviderProfile(org_claim="")
    with pytest.raises(TypeError, match="org_claim"):
        ProviderProfile(org_claim=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="default_role"):
        ProviderProfile(default_role="")
    with pytest.raises(ValueError, match="scope_claims"):
        ProviderProfile(scope_claims=("scope", ""))
    with pytest.raises(TypeError, match="scope_claims"):
        ProviderProfile(scope_claims="scope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_lifetime"):
        ProviderProfile(max_lifetime=0)
    with pytest.raises(ValueError, match="typ"):
        ProviderProfile(typ=(), require_typ=True)
    with pytest.raises(TypeError, match="provider"):
        JWTConfig(secret=secret, issuer="i", audience="a", provider={"roles_claim": "x"})  # type: ignore[arg-type]
