"""Roles, permissions, policies and tenant isolation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.rbac import DEFAULT_POLICY, Permission, Policy, Role, can_access_resource, has_permission


def test_role_and_permission_values_are_snake_case() -> None:
    """Role and Permission values are the documented snake_case strings."""
    assert [r.value for r in Role] == ["system_admin", "org_admin", "org_user"]
    assert {"create_org", "manage_org_users", "view_org_usage", "create_api_key"} <= {
        p.value for p in Permission
    }
    assert all(p.value == p.value.lower() and " " not in p.value for p in Permission)


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        (Role.SYSTEM_ADMIN, Permission.CREATE_ORG, True),
        (Role.SYSTEM_ADMIN, Permission.VIEW_ALL_USAGE, True),
        (Role.ORG_ADMIN, Permission.CREATE_ORG, False),
        (Role.ORG_ADMIN, Permission.MANAGE_ORG_USERS, True),
        (Role.ORG_ADMIN, Permission.CREATE_API_KEY, True),
        (Role.ORG_ADMIN, Permission.VIEW_ALL_USAGE, False),
        (Role.ORG_USER, Permission.USE_MODELS, True),
        (Role.ORG_USER, Permission.CREATE_API_KEY, False),
        (Role.ORG_USER, Permission.VIEW_ORG_USAGE, False),
    ],
)
def test_default_policy(role: Role, permission: Permission, allowed: bool) -> None:
    """The platform policy: system admin everything, org admin its org, org user models."""
    assert role.has_permission(permission) is allowed
    assert has_permission(role, permission) is allowed
    assert has_permission(role.value, permission.value) is allowed


def test_system_admin_has_every_permission() -> None:
    """Every permission, including ones added later, belongs to the system admin."""
    assert DEFAULT_POLICY.permissions_of(Role.SYSTEM_ADMIN) == {p.value for p in Permission}


def test_custom_roles_and_permissions() -> None:
    """A policy can add custom roles and permissions; unknown roles have none."""
    policy = DEFAULT_POLICY.with_role("auditor", [Permission.VIEW_ALL_USAGE, "export_reports"])
    assert policy.has_permission("auditor", "export_reports")
    assert has_permission("auditor", Permission.VIEW_ALL_USAGE, policy)
    assert not has_permission("auditor", Permission.VIEW_ALL_USAGE)
    assert not policy.has_permission("nobody", Permission.USE_MODELS)
    assert "auditor" in policy.roles and "auditor" in list(policy)
    assert policy != DEFAULT_POLICY and policy == DEFAULT_POLICY.with_role(
        "auditor", ["view_all_usage", "export_reports"]
    )
    assert hash(policy) == hash(DEFAULT_POLICY.with_role("auditor", ["export_reports", "view_all_usage"]))
    assert "auditor" in repr(policy)
    assert policy != "not a policy"


@pytest.mark.parametrize(
    "grants",
    [{"Bad Role": []}, {"ok": ["Not Valid"]}, {"": []}, {"ok": ["9lives"]}],
)
def test_policy_refuses_bad_names(grants: dict[str, list[object]]) -> None:
    """Role and permission names must be lower-case identifiers."""
    with pytest.raises(ValueError, match="names must match"):
        Policy(grants)  # type: ignore[arg-type]


def test_policy_type_errors() -> None:
    """Grants must be a mapping of collections, not strings."""
    with pytest.raises(TypeError, match="mapping"):
        Policy([("a", ["b"])])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="collection"):
        Policy({"a": "use_models"})
    with pytest.raises(TypeError, match="permissions of 'ok' must hold strings"):
        Policy({"ok": [5]})  # type: ignore[list-item]
    with pytest.raises(TypeError, match="role names must be a str"):
        Policy({5: []})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("role", "user_org", "resource_org", "allowed"),
    [
        (Role.SYSTEM_ADMIN, None, "org-1", True),
        (Role.SYSTEM_ADMIN, "org-2", "org-1", True),
        (Role.ORG_ADMIN, "org-1", "org-1", True),
        (Role.ORG_ADMIN, "org-2", "org-1", False),
        (Role.ORG_USER, "org-1", "org-1", True),
        (Role.ORG_USER, None, None, False),
        (Role.ORG_USER, "org-1", None, False),
        ("custom", "org-1", "org-1", True),
        (Role.ORG_USER, "org-1", "org-10", False),
        (Role.ORG_USER, "org-1", "ORG-1", False),
    ],
)
def test_can_access_resource(
    role: str, user_org: str | None, resource_org: str | None, allowed: bool
) -> None:
    """System admins reach every organization; everyone else only their own, exactly."""
    assert can_access_resource(role, user_org, resource_org) is allowed


@given(st.text(max_size=20), st.text(max_size=20) | st.none(), st.text(max_size=20) | st.none())
def test_non_admin_access_requires_exact_org_match(
    role: str, user_org: str | None, resource_org: str | None
) -> None:
    """Property: unless system admin, access iff both orgs are set and equal."""
    expected = role == "system_admin" or (user_org is not None and user_org == resource_org)
    assert can_access_resource(role, user_org, resource_org) is expected
