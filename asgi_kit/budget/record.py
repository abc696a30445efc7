"""One settled upstream call, as the ledger, its spool and its sinks see it.

Its own module because the meter builds records and the ledger stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One settled upstream call. ``request_id`` makes it idempotent in every sink.

    ``estimated`` is true when the upstream never reported usage and the tokens were counted
    by the meter (prompt estimate plus completion tokens received).
    """

    request_id: str
    org_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    user_id: str | None = None
    api_key_id: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_json(self) -> dict[str, Any]:
        """The spool's form of the record."""
        return {
            "request_id": self.request_id,
            "org_id": self.org_id,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "user_id": self.user_id,
            "api_key_id": self.api_key_id,
            "created_at": self.created_at.isoformat(),
            "estimated": self.estimated,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageRecord:
        return cls(
            request_id=str(data["request_id"]),
            org_id=str(data["org_id"]),
            model=str(data["model"]),
            prompt_tokens=int(data["prompt_tokens"]),
            completion_tokens=int(data["completion_tokens"]),
            user_id=data.get("user_id"),
            api_key_id=data.get("api_key_id"),
            created_at=datetime.fromisoformat(data["created_at"]),
            estimated=bool(data.get("estimated", False)),
        )


__all__ = ["UsageRecord"]
