"""Authorization: roles, permissions, policies and ``RequirePermission`` (no extra needed).

Independent of :mod:`asgi_kit.auth`: it reads the principal that any authentication layer
stored in ``scope["user"]``.
"""

from asgi_kit._asgi.principal import Principal, get_principal
from asgi_kit.rbac.middleware import RequirePermission, is_allowed, require_permission
from asgi_kit.rbac.roles import DEFAULT_POLICY, Permission, Policy, Role, can_access_resource, has_permission

__all__ = [
    "DEFAULT_POLICY",
    "Permission",
    "Policy",
    "Principal",
    "RequirePermission",
    "Role",
    "can_access_resource",
    "get_principal",
    "has_permission",
    "is_allowed",
    "require_permission",
]
