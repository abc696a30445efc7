"""``RequirePermission``: refuse a request whose principal lacks a permission.

Place it inside ``AuthMiddleware`` (which sets the principal), around the app or a mounted
sub-app. It reads ``scope["user"]`` through :func:`asgi_kit._asgi.principal.get_principal`
(never request headers) and writes nothing. Answers, as ``application/problem+json`` (OpenAI's
error shape on the routes marked as OpenAI-compatible):

- **401** (``WWW-Authenticate: Bearer realm="..."``) when there is no principal;
- **403** (``WWW-Authenticate: Bearer realm="...", error="insufficient_scope", scope="<perm>"``)
  when the principal's role does not grant the permission under the policy, or when the
  principal carries scopes (a scoped API key, a JWT ``scope`` claim) that do not include it.

Websocket handshakes get the same decision (a denial response, or close 1008 before accept).
``OPTIONS`` passes by default, as in ``AuthMiddleware``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from asgi_kit._asgi.challenge import bearer_challenge
from asgi_kit._asgi.options import check_instance, check_str
from asgi_kit._asgi.principal import Principal, get_principal
from asgi_kit._asgi.types import ASGIApp, Receive, Scope, Send
from asgi_kit.errors import FORBIDDEN, UNAUTHORIZED, ProblemDetails, deny_websocket, write_problem_details
from asgi_kit.rbac.roles import DEFAULT_POLICY, Policy

_PERMISSION: Final = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")


def is_allowed(principal: Principal, permission: str, policy: Policy = DEFAULT_POLICY) -> bool:
    """Role grants it, and the principal's scopes (when it has any) include it."""
    if not policy.has_permission(principal.role, permission):
        return False
    return not principal.scopes or permission in principal.scopes


class RequirePermission:
    """Let a request through only if its principal holds ``permission``.

    Args:
        app: the ASGI app to guard.
        permission: a :class:`~asgi_kit.rbac.Permission` or a custom permission name.
        policy: the role -> permissions mapping (default: the platform's).
        realm: the ``realm`` of the ``WWW-Authenticate`` challenge.
        allow_options: let ``OPTIONS`` (CORS preflights) through.
    """

    def __init__(
        self,
        app: ASGIApp,
        permission: str,
        *,
        policy: Policy = DEFAULT_POLICY,
        realm: str = "api",
        allow_options: bool = True,
    ) -> None:
        _check_options(permission, policy)
        self.app = app
        self.permission = str(permission)
        self._policy = policy
        # The roles the policy grants the permission, resolved once (a Policy is immutable): a
        # request then costs a set lookup instead of the is_allowed -> has_permission calls.
        self._roles = frozenset(role for role in policy if policy.has_permission(role, self.permission))
        self._allow_options = bool(allow_options)
        self._unauthorized: tuple[ProblemDetails, list[tuple[bytes, bytes]]] = (
            UNAUTHORIZED,
            [(b"www-authenticate", bearer_challenge(realm))],
        )
        forbidden = bearer_challenge(realm, error="insufficient_scope", scope=self.permission)
        self._forbidden: tuple[ProblemDetails, list[tuple[bytes, bytes]]] = (
            FORBIDDEN,
            [(b"www-authenticate", forbidden)],
        )

    def __repr__(self) -> str:
        return f"RequirePermission({self.permission!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or (
            self._allow_options and kind == "http" and scope.get("method") == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        principal = get_principal(scope)
        # is_allowed(principal, self.permission, self._policy), with the role check precomputed.
        if (
            principal is not None
            and principal.role in self._roles
            and (not principal.scopes or self.permission in principal.scopes)
        ):
            await self.app(scope, receive, send)
            return
        problem, headers = self._unauthorized if principal is None else self._forbidden
        if kind == "http":
            await write_problem_details(send, problem, headers, scope=scope)
        else:
            await deny_websocket(scope, send, problem, headers)


def require_permission(permission: str, *, policy: Policy = DEFAULT_POLICY) -> Callable[[ASGIApp], ASGIApp]:
    """Decorate a raw ASGI callable: ``@require_permission(Permission.USE_MODELS)``."""
    _check_options(permission, policy)  # fail at decoration time, not at the first request

    def decorate(app: ASGIApp) -> ASGIApp:
        return RequirePermission(app, permission, policy=policy)

    return decorate


def _check_options(permission: object, policy: object) -> None:
    if _PERMISSION.fullmatch(check_str("permission", permission)) is None:
        raise ValueError(f"permission must be a permission name like 'use_models', got {permission!r}")
    check_instance("policy", policy, Policy, "a Policy")


__all__ = ["RequirePermission", "is_allowed", "require_permission"]
