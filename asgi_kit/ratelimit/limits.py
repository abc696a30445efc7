"""What is limited and how much: :class:`Quota` values and the subjects they apply to.

A *subject* is what a count is kept for: ``"key"`` (the caller's API key, or the user of a
JWT), ``"org"`` (the caller's organization), ``"user"``, ``"client"`` (the client address) or
any name given a function ``(scope) -> str | None``. A request is checked against the quota of
every subject it has; a subject function that returns ``None`` (an anonymous request has no
key) leaves that subject out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from asgi_kit._asgi.options import check_int
from asgi_kit._asgi.principal import Principal, get_principal
from asgi_kit._asgi.types import Scope

SubjectFunc: TypeAlias = Callable[[Scope], "str | None"]
QuotaLookup: TypeAlias = Callable[[str, str, Scope], "Quota | Awaitable[Quota | None] | None"]
"""``(subject kind, subject id, scope) -> Quota | None``, sync or async: a quota from the key's or
organization's own record, or ``None`` for the configured one."""


@dataclass(frozen=True, slots=True)
class Quota:
    """Requests and tokens a subject may use per window; ``None`` leaves that dimension unlimited."""

    requests: int | None = None
    tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests", "tokens"):
            value = getattr(self, name)
            if value is not None:
                check_int(name, value, minimum=1)  # None: no limit

    @property
    def unlimited(self) -> bool:
        return self.requests is None and self.tokens is None


def key_subject(scope: Scope) -> str | None:
    """The API key's id, or ``user:<id>`` for a JWT principal; ``None`` when anonymous."""
    principal = scope.get("user")  # get_principal inlined: this runs on every limited request
    if not isinstance(principal, Principal):
        return None
    if principal.key_id:
        return principal.key_id
    return f"user:{principal.user_id}" if principal.user_id else None


def org_subject(scope: Scope) -> str | None:
    principal = get_principal(scope)
    return principal.org_id or None if principal is not None else None


def user_subject(scope: Scope) -> str | None:
    principal = get_principal(scope)
    return principal.user_id or None if principal is not None else None


def client_subject(scope: Scope) -> str | None:
    """The client address the server saw (put ``ProxyHeadersMiddleware`` first behind a proxy)."""
    client = scope.get("client")
    return str(client[0]) if client else None


BUILTIN_SUBJECTS: Final[dict[str, SubjectFunc]] = {
    "key": key_subject,
    "org": org_subject,
    "user": user_subject,
    "client": client_subject,
}

__all__ = [
    "BUILTIN_SUBJECTS",
    "Quota",
    "QuotaLookup",
    "SubjectFunc",
    "client_subject",
    "key_subject",
    "org_subject",
    "user_subject",
]
