"""Shared pydantic models of the platform (contract §10)."""

from asgi_kit.models.entities import APIKey, Organization, Status, Usage, User, utcnow

__all__ = ["APIKey", "Organization", "Status", "Usage", "User", "utcnow"]
