"""The authenticated principal and where it is stored in the scope.

``scope["user"]`` holds the :class:`Principal` (``request.user`` in Starlette, FastAPI and
Litestar) and ``scope["auth"]`` holds :class:`Credentials` whose ``scopes`` Starlette's
``requires()`` reads. Defined on the ground floor so authorization, budgets and logging read
the principal without importing the authentication layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from asgi_kit._asgi.types import Scope

AuthMethod = Literal["jwt", "api_key"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user with a JWT, or a program with an API key."""

    user_id: str | None
    org_id: str | None
    role: str
    auth_method: AuthMethod
    key_id: str | None = None
    claims: Mapping[str, Any] | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()

    # Starlette's BaseUser protocol, so ``request.user.is_authenticated`` works there.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.user_id or self.key_id or ""

    @property
    def identity(self) -> str:
        return self.user_id or self.key_id or ""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What ``scope["auth"]`` holds: the principal's scopes (Starlette ``AuthCredentials`` shape)."""

    scopes: tuple[str, ...] = ()
    method: AuthMethod | None = None


def get_principal(scope: Scope) -> Principal | None:
    """The principal ``AuthMiddleware`` stored, or ``None`` for an anonymous request."""
    user = scope.get("user")
    return user if isinstance(user, Principal) else None


# Credentials are immutable and their values repeat (most principals carry no scopes), so equal
# ones are shared instead of built per request. Bounded: scopes come from tokens.
_CREDENTIALS: dict[tuple[tuple[str, ...], str], Credentials] = {}
_CREDENTIALS_KEPT = 256


def credentials_of(principal: Principal) -> Credentials:
    """The :class:`Credentials` that go with ``principal`` in ``scope["auth"]``."""
    key = (principal.scopes, principal.auth_method)
    try:
        credentials = _CREDENTIALS.get(key)
    except TypeError:  # scopes given as a list by hand: unhashable, so not shared
        return Credentials(scopes=principal.scopes, method=principal.auth_method)
    if credentials is None:
        credentials = Credentials(scopes=principal.scopes, method=principal.auth_method)
        if len(_CREDENTIALS) >= _CREDENTIALS_KEPT:
            _CREDENTIALS.clear()
        _CREDENTIALS[key] = credentials
    return credentials


def set_principal(scope: Scope, principal: Principal, credentials: Credentials | None = None) -> None:
    """Store ``principal`` and its credentials (built from it unless a ready, equal one is given).

    Both are immutable, so one pair can be shared by every request of a cached token.
    """
    scope["user"] = principal
    scope["auth"] = credentials_of(principal) if credentials is None else credentials


__all__ = ["AuthMethod", "Credentials", "Principal", "credentials_of", "get_principal", "set_principal"]
