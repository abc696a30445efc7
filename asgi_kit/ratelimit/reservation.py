"""The token reservation a request holds, settled once with the real total.

It has the usage meter's reservation shape (a synchronous ``settle(tokens)``, called exactly
once), so a gateway hands it to the meter as it hands a budget reservation (wrapping both when
both are used). Settling corrects every tokens count the request was checked against by
``tokens - reserved``; with Redis the correction runs in the background, bounded, and
``settle`` returns at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from asgi_kit._asgi.types import Scope
from asgi_kit.ratelimit.algorithm import Check, Decision
from asgi_kit.ratelimit.backends import RateLimitBackend

RESERVATION_STATE_KEY: Final = "ratelimit_reservation"


class TokenReservation:
    """Tokens counted for a request before it ran (``reserved``); :meth:`settle` corrects them."""

    __slots__ = ("_backend", "_checks", "_decision", "_settled", "reserved")

    def __init__(
        self,
        backend: RateLimitBackend,
        decision: Decision,
        checks: Sequence[tuple[int, Check]],
        reserved: int,
    ) -> None:
        self._backend = backend
        self._decision = decision
        self._checks = tuple(checks)
        self._settled = False
        self.reserved = reserved

    def __repr__(self) -> str:
        return f"TokenReservation(reserved={self.reserved}, settled={self._settled})"

    @property
    def settled(self) -> bool:
        return self._settled

    def settle(self, tokens: int) -> None:
        """Count ``tokens`` (the call's real total) instead of the reservation. Later calls do nothing."""
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise TypeError("tokens must be an int")
        if tokens < 0:
            raise ValueError("tokens must not be negative")
        if self._settled:
            return
        self._settled = True
        delta = tokens - self.reserved
        if delta:
            for index, check in self._checks:
                self._backend.adjust(self._decision, index, check, delta)


def get_token_reservation(scope: Scope) -> TokenReservation | None:
    """The reservation ``RateLimitMiddleware`` took for this request, or ``None``."""
    state = scope.get("state")
    found = state.get(RESERVATION_STATE_KEY) if isinstance(state, dict) else None
    return found if isinstance(found, TokenReservation) else None


__all__ = ["RESERVATION_STATE_KEY", "TokenReservation", "get_token_reservation"]
