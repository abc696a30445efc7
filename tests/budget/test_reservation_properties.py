"""Property tests of reservations: no interleaving of reserve/settle across processes overruns a budget."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from asgi_kit.budget import (
    BudgetReservation,
    BudgetReservations,
    InMemoryBudgetStore,
    InMemoryLeaseStore,
    ReservationRefusedError,
    lease_grant,
)
from asgi_kit.models import Usage

amounts = st.integers(0, 10**9)


@given(st.one_of(st.none(), amounts), amounts, amounts, amounts, amounts, amounts)
def test_grant_respects_the_budget_and_the_keep(
    limit: int | None, used: int, leased: int, a: int, b: int, c: int
) -> None:
    """A grant is never below keep, at most want, and past keep it never makes used + leases exceed the limit."""
    keep, need, want = sorted((a, b, c))
    granted = lease_grant(limit, used, leased, keep=keep, need=need, want=want)
    assert keep <= granted <= want
    if limit is not None and granted > keep:
        assert used + leased + granted <= limit
        assert granted >= need


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


reserve = st.tuples(st.just("reserve"), st.integers(0, 2), st.integers(1, 5) | st.integers(1, 400))
settle = st.tuples(
    st.just("settle"), st.integers(0, 10**6), st.sampled_from([1.0, 0.0, 0.5]) | st.floats(0, 1)
)
# (op, process or index, amount or fraction); reserve and settle twice as often as the rest
operations = st.lists(
    st.one_of(
        reserve,
        settle,
        reserve,
        settle,
        st.tuples(st.just("flush"), st.integers(0, 10**6), st.just(0.0)),
        st.tuples(st.just("tick"), st.integers(0, 10), st.just(0.0)),
        st.tuples(st.just("yield"), st.integers(1, 3), st.just(0.0)),  # background top-ups run
    ),
    max_size=120,
)


async def scenario(budget: int, lease_tokens: int, delayed: bool, ops: list[tuple[str, int, float]]) -> None:
    clock = Clock()
    budgets = InMemoryBudgetStore([("acme", budget)])
    leases = InMemoryLeaseStore(budgets, clock=clock)
    delay = 5.0 if delayed else 0.0
    procs = [
        BudgetReservations(
            leases,
            lease_tokens=lease_tokens,
            lease_ttl=60,
            idle_return=15,
            recording_delay=delay,
            clock=clock,
        )
        for _ in range(3)
    ]
    open_calls: list[BudgetReservation] = []
    unwritten: list[int] = []  # settled usage the "ledger" has not flushed yet (delayed mode)

    async def write(tokens: int) -> None:
        await budgets.record_usage(Usage(org_id="acme", model="m", prompt_tokens=tokens))

    async def flush_all() -> None:
        while unwritten:
            await write(unwritten.pop())

    for op, n, fraction in ops:
        if op == "reserve":
            with contextlib.suppress(ReservationRefusedError):
                open_calls.append(await procs[n].reserve("acme", int(fraction)))  # the amount
        elif op == "settle" and open_calls:
            call = open_calls.pop(n % len(open_calls))
            used = int(call.tokens * fraction)  # the upstream used at most the worst case
            if delayed:
                unwritten.append(used)  # the ledger records it within recording_delay
            else:
                await write(used)  # recorded before settle
            call.settle(used)
        elif op == "flush" and unwritten:
            await write(unwritten.pop(n % len(unwritten)))
        elif op == "yield":
            for _ in range(n):
                await asyncio.sleep(0)
        elif op == "tick":
            await flush_all()  # the ledger's bounded flush delay: nothing outlives recording_delay
            clock.now += n
            for proc in procs:
                await proc.maintain()
        state = await budgets.get_budget("acme")
        assert state is not None
        assert state.used + sum(unwritten) <= budget, (state.used, unwritten)
    for call in open_calls:
        call.release()
    await flush_all()
    clock.now += delay  # settled usage is confirmed once recording_delay has passed
    for proc in procs:
        await proc.aclose()
    assert leases.leases("acme") == {}


@settings(max_examples=300, deadline=None)
# settled usage dropped from the lease before the ledger wrote it would be spent twice
@example(1, 1, True, [("reserve", 0, 1), ("settle", 0, 1.0), ("reserve", 0, 1), ("settle", 0, 1.0)])
@given(
    st.integers(0, 20) | st.integers(0, 1500), st.just(1) | st.integers(1, 2000), st.booleans(), operations
)
def test_no_interleaving_overruns_the_budget(
    budget: int, lease_tokens: int, delayed: bool, ops: list[tuple[str, int, Any]]
) -> None:
    """Three processes reserving, settling (recorded before, or within recording_delay after) never pass the budget."""
    asyncio.run(scenario(budget, lease_tokens, delayed, [(op, n, float(x)) for op, n, x in ops]))
