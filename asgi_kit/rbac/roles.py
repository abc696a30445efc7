"""Roles, permissions and the policy that maps one to the other.

Roles are plain strings on the principal (the auth layer stores whatever the verified
claims or the API-key record say), so custom roles work: give them permissions in a
:class:`Policy`. Roles are never read from request headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from asgi_kit._asgi.options import check_instance, check_str, check_strings

_NAME: Final = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")


class Permission(StrEnum):
    """What the platform lets a principal do."""

    CREATE_ORG = "create_org"
    MANAGE_ORGS = "manage_orgs"
    VIEW_ALL_USAGE = "view_all_usage"
    MANAGE_ORG_USERS = "manage_org_users"
    VIEW_ORG_USAGE = "view_org_usage"
    MANAGE_BUDGET = "manage_budget"
    CREATE_API_KEY = "create_api_key"
    REVOKE_API_KEY = "revoke_api_key"
    LIST_API_KEYS = "list_api_keys"
    USE_MODELS = "use_models"
    VIEW_OWN_USAGE = "view_own_usage"


class Role(StrEnum):
    """The platform's built-in roles."""

    SYSTEM_ADMIN = "system_admin"
    ORG_ADMIN = "org_admin"
    ORG_USER = "org_user"

    def has_permission(self, permission: str) -> bool:
        """Whether :data:`DEFAULT_POLICY` grants ``permission`` to this role."""
        return DEFAULT_POLICY.has_permission(self, permission)


def _check_name(kind: str, value: object) -> str:
    if _NAME.fullmatch(check_str(f"{kind} names", value, allow_empty=True)) is None:
        raise ValueError(f"{kind} names must match [a-z][a-z0-9_.:-]{{0,63}}, got {value!r}")
    return str(value)


class Policy:
    """An immutable ``role -> permissions`` mapping. Unknown roles have no permission."""

    __slots__ = ("_grants",)

    def __init__(self, grants: Mapping[str, Iterable[str]]) -> None:
        check_instance("grants", grants, Mapping, "a mapping of role -> permissions")
        table: dict[str, frozenset[str]] = {}
        for role, permissions in grants.items():
            names = check_strings(f"permissions of {role!r}", permissions)
            table[_check_name("role", role)] = frozenset(_check_name("permission", p) for p in names)
        self._grants: Mapping[str, frozenset[str]] = MappingProxyType(table)

    def __repr__(self) -> str:
        return f"Policy({ {role: sorted(perms) for role, perms in self._grants.items()}!r})"

    def __iter__(self) -> Iterator[str]:
        return iter(self._grants)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and dict(self._grants) == dict(other._grants)

    def __hash__(self) -> int:
        return hash(frozenset(self._grants.items()))

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self._grants)

    def permissions_of(self, role: str) -> frozenset[str]:
        return self._grants.get(role, frozenset())

    def has_permission(self, role: str, permission: str) -> bool:
        perms = self._grants.get(role)
        return perms is not None and permission in perms

    def with_role(self, role: str, permissions: Iterable[str]) -> Policy:
        """A copy with ``role`` granted exactly ``permissions`` (added or replaced)."""
        return Policy({**self._grants, role: frozenset(permissions)})


_ORG_ADMIN_PERMISSIONS: Final = frozenset(
    {
        Permission.MANAGE_ORG_USERS,
        Permission.VIEW_ORG_USAGE,
        Permission.MANAGE_BUDGET,
        Permission.CREATE_API_KEY,
        Permission.REVOKE_API_KEY,
        Permission.LIST_API_KEYS,
        Permission.USE_MODELS,
        Permission.VIEW_OWN_USAGE,
    }
)

#: The platform's policy: system admins may do everything; org admins run their organization;
#: org users call models and see their own usage.
DEFAULT_POLICY: Final = Policy(
    {
        Role.SYSTEM_ADMIN: frozenset(Permission),
        Role.ORG_ADMIN: _ORG_ADMIN_PERMISSIONS,
        Role.ORG_USER: frozenset({Permission.USE_MODELS, Permission.VIEW_OWN_USAGE}),
    }
)


def has_permission(role: str, permission: str, policy: Policy = DEFAULT_POLICY) -> bool:
    """Whether ``policy`` grants ``permission`` to ``role``."""
    return policy.has_permission(role, permission)


def can_access_resource(user_role: str, user_org_id: str | None, resource_org_id: str | None) -> bool:
    """Tenant isolation: a system admin reaches every organization, anyone else only their own.

    A principal without an organization (or a resource without one) is refused unless the
    principal is a system admin.
    """
    if user_role == Role.SYSTEM_ADMIN:
        return True
    return user_org_id is not None and resource_org_id is not None and user_org_id == resource_org_id


__all__ = ["DEFAULT_POLICY", "Permission", "Policy", "Role", "can_access_resource", "has_permission"]
