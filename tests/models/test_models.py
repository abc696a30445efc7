"""Shared pydantic models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from asgi_kit.models import APIKey, Organization, Status, Usage, User


def test_organization_budget_helpers() -> None:
    """Remaining tokens are never negative; no budget means unlimited."""
    org = Organization(
        id="o1", name="acme", display_name="Acme", budget_tokens_monthly=100, tokens_used_current_month=40
    )
    assert org.tokens_remaining == 60 and not org.over_budget
    org.tokens_used_current_month = 150
    assert org.tokens_remaining == 0 and org.over_budget
    free = Organization(id="o2", name="free", display_name="Free")
    assert free.tokens_remaining is None and not free.over_budget
    assert free.model_dump()["status"] == Status.ACTIVE


def test_invalid_fields_are_named() -> None:
    """Bad input names the field."""
    with pytest.raises(ValidationError, match="email"):
        User(id="u1", org_id="o1", email="not-an-email", role="org_user")
    with pytest.raises(ValidationError, match="budget_tokens_monthly"):
        Organization(id="o", name="x", display_name="X", budget_tokens_monthly=-1)
    with pytest.raises(ValidationError, match="name"):
        Organization(id="o", name="Bad Name", display_name="X")


def test_api_key_never_serialises_its_hash() -> None:
    """The hash is kept for checks but absent from dumps, JSON and repr."""
    key = APIKey(id="k1", org_id="o1", key_hash="deadbeef" * 8, scopes=("chat",))
    assert "key_hash" not in key.model_dump()
    assert "deadbeef" not in key.model_dump_json()
    assert "deadbeef" not in repr(key)
    assert key.key_hash.get_secret_value().startswith("deadbeef")


def test_api_key_activity() -> None:
    """Expired or revoked keys are inactive."""
    now = datetime.now(UTC)
    assert APIKey(id="k", org_id="o", key_hash="h").is_active(now)
    assert not APIKey(id="k", org_id="o", key_hash="h", expires_at=now - timedelta(seconds=1)).is_active(now)
    assert not APIKey(id="k", org_id="o", key_hash="h", revoked_at=now).is_active(now)
    assert APIKey(id="k", org_id="o", key_hash="h", revoked_at=now + timedelta(days=1)).is_active(now)


def test_usage_totals_and_timestamp() -> None:
    """Total tokens are computed and the timestamp is RFC 3339 UTC."""
    usage = Usage(
        org_id="o",
        model="gpt-4o",
        prompt_tokens=10,
        completion_tokens=5,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    data = usage.model_dump()
    assert data["total_tokens"] == 15
    assert data["created_at"] == "2026-01-02T03:04:05Z"
    with pytest.raises(ValidationError, match="prompt_tokens"):
        Usage(org_id="o", model="m", prompt_tokens=-1)
