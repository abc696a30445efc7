"""``ConfigError``: every bad field at once, with where it came from, and no secret values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asgi_kit._asgi.exceptions import AsgiKitError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One invalid field: dotted name, the source that set it, and why it is wrong."""

    field: str
    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field} (from {self.source}): {self.reason}"


class ConfigError(AsgiKitError, ValueError):
    """Invalid configuration. ``problems`` lists every bad field; values are never included."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"invalid configuration ({count} problem{'s' if count != 1 else ''}):\n{lines}")

    @property
    def fields(self) -> list[str]:
        return [p.field for p in self.problems]

    @classmethod
    def from_validation_error(
        cls, exc: ValidationError, provenance: dict[tuple[str, ...], str]
    ) -> ConfigError:
        problems = []
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            loc = tuple(str(part) for part in error["loc"])
            # pydantic's message never holds the input once include_input=False.
            problems.append(FieldProblem(".".join(loc) or "-", _source_of(loc, provenance), error["msg"]))
        return cls(problems)


def _source_of(loc: tuple[str, ...], provenance: dict[tuple[str, ...], str]) -> str:
    lowered = tuple(part.lower() for part in loc)
    for end in range(len(lowered), 0, -1):
        where = provenance.get(lowered[:end])
        if where is not None:
            if where == "environment":
                return "environment variable " + "ASGI_KIT_" + "__".join(lowered[:end]).upper()
            return where
    return "defaults"


__all__ = ["ConfigError", "FieldProblem"]
