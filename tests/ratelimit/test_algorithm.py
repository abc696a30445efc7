"""The sliding-window log against a brute-force model: never over the limit in any window."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_kit.ratelimit import Check, SlidingWindowLog
from asgi_kit.ratelimit.algorithm import NEVER

WINDOW = 1000

steps = st.lists(
    st.tuples(st.integers(min_value=0, max_value=1500), st.integers(min_value=0, max_value=12)),
    min_size=1,
    max_size=120,
)


def used_at(log: list[tuple[int, int]], now: int, window: int) -> int:
    """Brute force: the cost admitted in (now - window, now]."""
    return sum(cost for stamp, cost in log if now - window < stamp <= now)


@settings(max_examples=300, deadline=None)
@given(
    steps=steps,
    limit=st.integers(min_value=1, max_value=10),
    second_limit=st.integers(min_value=1, max_value=40),
)
def test_never_more_than_the_limit_in_any_window(
    steps: list[tuple[int, int]], limit: int, second_limit: int
) -> None:
    """Every admission keeps every window <= limit; refusals count nothing; remaining/reset/retry match the model."""
    algo = SlidingWindowLog()
    now = 0
    first: list[tuple[int, int]] = []
    second: list[tuple[int, int]] = []
    for advance, cost in steps:
        now += advance
        checks = [Check("a", limit, cost, WINDOW), Check("b", second_limit, 1, WINDOW)]
        decision = algo.acquire(checks, now)
        fits_a = used_at(first, now, WINDOW) + cost <= limit
        fits_b = used_at(second, now, WINDOW) + 1 <= second_limit
        assert decision.allowed == (fits_a and fits_b)
        if decision.allowed:
            if cost:
                first.append((now, cost))
            second.append((now, 1))
        for log, check, result in zip((first, second), checks, decision.results, strict=True):
            used = used_at(log, now, WINDOW)
            assert result.remaining == max(check.limit - used, 0)
            live = [stamp for stamp, _ in log if stamp > now - WINDOW]
            assert result.reset_ms == (max(live) + WINDOW - now if live else 0)
            if decision.allowed or used + check.cost <= check.limit:
                assert result.retry_ms == 0
            elif check.cost > check.limit:
                assert result.retry_ms == NEVER
            else:
                # the first moment an expiry makes room, found by trying every expiry time
                waits = sorted({stamp + WINDOW - now for stamp, _ in log if stamp > now - WINDOW})
                expected = next(w for w in waits if used_at(log, now + w, WINDOW) + check.cost <= check.limit)
                assert result.retry_ms == expected
    # the invariant itself, over every window that ends at an admission
    for log, check_limit in ((first, limit), (second, second_limit)):
        for stamp, _ in log:
            assert used_at(log, stamp, WINDOW) <= check_limit


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 700), st.integers(0, 30), st.integers(0, 60)), min_size=1, max_size=60
    )
)
def test_corrections_change_what_the_window_counts(steps: list[tuple[int, int, int]]) -> None:
    """A settled reservation counts its real total until its entry leaves the window, then nothing."""
    algo = SlidingWindowLog()
    limit = 100
    now = 0
    model: list[list[int]] = []
    for advance, reserve, actual in steps:
        now += advance
        check = Check("t", limit, reserve, WINDOW)
        decision = algo.acquire([check], now)
        if decision.allowed and reserve:
            entry = [now, reserve]
            model.append(entry)
            now += advance // 2
            algo.adjust(decision, 0, check, actual - reserve, now)
            if entry[0] > now - WINDOW:
                entry[1] = actual
        used = sum(cost for stamp, cost in model if stamp > now - WINDOW)
        probe = algo.acquire([Check("t", limit, 0, WINDOW)], now)
        assert probe.results[0].remaining == max(limit - used, 0)


def test_keys_are_independent_and_bounded() -> None:
    """Different keys count apart; past max_keys the least recently used key is forgotten."""
    algo = SlidingWindowLog(max_keys=2)
    for key in ("a", "b"):
        assert algo.acquire([Check(key, 1, 1, WINDOW)], 0).allowed
    assert not algo.acquire([Check("a", 1, 1, WINDOW)], 1).allowed
    assert algo.acquire([Check("c", 1, 1, WINDOW)], 2).allowed  # evicts "b", the least recently used
    assert len(algo) == 2
    assert algo.acquire([Check("b", 1, 1, WINDOW)], 3).allowed


def test_adjust_after_expiry_or_refusal_is_a_no_op() -> None:
    """Correcting an entry that left the window, or a refused decision, changes nothing."""
    algo = SlidingWindowLog()
    check = Check("k", 10, 5, WINDOW)
    admitted = algo.acquire([check], 0)
    algo.adjust(admitted, 0, check, +100, WINDOW)  # the entry has just left the window
    assert algo.acquire([Check("k", 10, 0, WINDOW)], WINDOW).results[0].remaining == 10
    refused = algo.acquire([Check("k", 1, 5, WINDOW)], WINDOW)
    assert not refused.allowed and refused.results[0].retry_ms == NEVER
    algo.adjust(refused, 0, check, 3, WINDOW)
    assert algo.acquire([Check("k", 10, 0, WINDOW)], WINDOW).results[0].remaining == 10
