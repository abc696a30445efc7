"""Property tests of the budget period arithmetic and the cache bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from asgi_kit.budget import BudgetState, month_start, next_month_start
from asgi_kit.budget.cache import BudgetCache

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))


@given(moments)
def test_period_contains_the_moment(when: datetime) -> None:
    """Every moment lies in [month_start, next_month_start) and the next period starts a month on."""
    start = month_start(when)
    end = next_month_start(start)
    assert datetime(start.year, start.month, 1, tzinfo=UTC) <= when < end
    assert end.day == 1 and 28 <= (end.date() - start).days <= 31
    assert month_start(end - timedelta(microseconds=1)) == start


@given(st.one_of(st.none(), st.integers(0, 10**12)), st.integers(0, 10**12))
def test_state_remaining_and_exceeded_agree(limit: int | None, used: int) -> None:
    """remaining is never negative, and exceeded exactly when remaining hits zero."""
    state = BudgetState(limit=limit, used=used, period_start=month_start(datetime.now(UTC)))
    if limit is None:
        assert state.remaining is None and not state.exceeded
    else:
        assert state.remaining == max(limit - used, 0)
        assert state.exceeded == (state.remaining == 0)


@given(st.integers(1, 20), st.lists(st.sampled_from([f"o{i}" for i in range(40)]), max_size=200))
def test_cache_never_exceeds_its_bound(max_entries: int, orgs: list[str]) -> None:
    """However many organizations pass through, the cache holds at most max_entries."""
    cache = BudgetCache(1.0, max_entries, lambda: 0.0)
    for org in orgs:
        cache.put(org, None)
        assert len(cache) <= max_entries
        assert cache.get(org) == (True, None)
