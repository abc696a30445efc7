"""Shared pydantic v2 models of the platform: organizations, users, API keys, usage."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, SecretStr, computed_field, field_serializer

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
TokenCount = Annotated[int, Field(ge=0)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Status(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_assignment=True)


class Organization(_Model):
    id: Identifier
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    display_name: Annotated[str, Field(min_length=1, max_length=200)]
    budget_tokens_monthly: TokenCount | None = None
    tokens_used_current_month: TokenCount = 0
    status: Status = Status.ACTIVE
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_remaining(self) -> int | None:
        """Tokens left this month; ``None`` when the organization has no budget."""
        if self.budget_tokens_monthly is None:
            return None
        return max(self.budget_tokens_monthly - self.tokens_used_current_month, 0)

    @property
    def over_budget(self) -> bool:
        return (
            self.budget_tokens_monthly is not None
            and self.tokens_used_current_month >= self.budget_tokens_monthly
        )


class User(_Model):
    id: Identifier
    org_id: Identifier
    email: EmailStr
    role: Annotated[str, Field(min_length=1, max_length=64)]
    status: Status = Status.ACTIVE
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class APIKey(_Model):
    """An API key record. ``key_hash`` is kept for verification but never serialised."""

    id: Identifier
    org_id: Identifier
    user_id: Identifier | None = None
    name: Annotated[str, Field(max_length=200)] = ""
    key_hash: SecretStr = Field(exclude=True, repr=False)
    pepper_version: int | None = Field(default=None, ge=0)
    role: Annotated[str, Field(min_length=1, max_length=64)] = "org_user"
    scopes: tuple[str, ...] = ()
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or self.expires_at > now


class Usage(_Model):
    org_id: Identifier
    user_id: Identifier | None = None
    api_key_id: Identifier | None = None
    model: Annotated[str, Field(min_length=1, max_length=200)]
    prompt_tokens: TokenCount
    completion_tokens: TokenCount = 0
    created_at: datetime = Field(default_factory=utcnow)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @field_serializer("created_at")
    def _rfc3339(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


__all__ = ["APIKey", "Organization", "Status", "Usage", "User", "utcnow"]
