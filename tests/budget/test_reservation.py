"""BudgetReservations against the in-memory lease store: reserve, settle, refuse, renew, return."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from asgi_kit.budget import (
    BudgetLease,
    BudgetLeaseStore,
    BudgetReservations,
    BudgetStoreUnavailableError,
    InMemoryBudgetStore,
    InMemoryLeaseStore,
    LeaseSnapshot,
    ReservationRefusedError,
)
from asgi_kit.budget.reservation import default_holder
from asgi_kit.models import Usage


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """A lease store that fails while ``down`` is set, and can hold each statement for ``delay``."""

    def __init__(self, inner: InMemoryLeaseStore, delay: float = 0.0) -> None:
        self.inner = inner
        self.down = False
        self.delay = delay
        self.calls = 0

    async def lease(
        self, org_id: str, holder: str, *, keep: int, need: int, want: int, ttl: float
    ) -> BudgetLease | None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise BudgetStoreUnavailableError()
        return await self.inner.lease(org_id, holder, keep=keep, need=need, want=want, ttl=ttl)

    async def release(self, org_id: str, holder: str) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise BudgetStoreUnavailableError()
        await self.inner.release(org_id, holder)


def stores(
    budget: int | None = 1000, clock: Clock | None = None
) -> tuple[InMemoryBudgetStore, InMemoryLeaseStore]:
    budgets = InMemoryBudgetStore([("acme", budget)])
    return budgets, InMemoryLeaseStore(budgets, clock=clock or Clock())


async def spend(budgets: InMemoryBudgetStore, tokens: int) -> None:
    await budgets.record_usage(Usage(org_id="acme", model="m", prompt_tokens=tokens))


async def test_reservations_cost_one_statement_per_chunk() -> None:
    """Fifty reservations that fit in the lease cost one statement, not fifty."""
    budgets, leases = stores(100_000)
    async with BudgetReservations(leases, lease_tokens=5000) as reservations:
        taken = [await reservations.reserve("acme", 100) for _ in range(50)]
        assert reservations.statements == 1 and leases.calls == 1
        assert reservations.reservations == 50
        assert reservations.snapshot("acme") == LeaseSnapshot(
            held=5100, reserved=5000, pending=0, confirmed=0
        )
        for reservation in taken:
            await spend(budgets, 40)
            reservation.settle(40)
        assert reservations.snapshot("acme").free == 5100 - 50 * 40


async def test_settle_returns_the_difference_and_is_idempotent() -> None:
    """settle() converts the worst case into the real usage once; a second settle or release is ignored."""
    _, leases = stores(100_000)
    async with BudgetReservations(leases, lease_tokens=1000) as reservations:
        reservation = await reservations.reserve("acme", 300)
        assert reservation.settled is None and "tokens=300" in repr(reservation)
        reservation.settle(120)
        reservation.settle(300)
        reservation.release()
        assert reservation.settled == 120
        assert reservations.snapshot("acme") == LeaseSnapshot(held=1300, reserved=0, pending=0, confirmed=120)


async def test_release_gives_everything_back() -> None:
    """release() of a call that never happened returns its whole worst case to the lease."""
    _, leases = stores(100_000)
    async with BudgetReservations(leases, lease_tokens=1000) as reservations:
        reservation = await reservations.reserve("acme", 300)
        reservation.release()
        assert reservation.settled == 0
        assert reservations.snapshot("acme").free == 1300


@pytest.mark.parametrize(("value", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
async def test_settle_rejects_bad_amounts(value: Any, error: type[Exception]) -> None:
    """A negative or non-int settle amount is an error, and the reservation stays open."""
    _, leases = stores(100_000)
    async with BudgetReservations(leases) as reservations:
        reservation = await reservations.reserve("acme", 10)
        with pytest.raises(error, match="tokens"):
            reservation.settle(value)
        assert reservation.settled is None


async def test_refusal_exactly_at_the_edge() -> None:
    """The whole budget can be reserved, one token more is refused, and settled usage frees the rest."""
    budgets, leases = stores(1000)
    async with BudgetReservations(leases, lease_tokens=10_000, refusal_ttl=0) as reservations:
        whole = await reservations.reserve("acme", 1000)
        with pytest.raises(ReservationRefusedError) as refused:
            await reservations.reserve("acme", 1)
        assert (refused.value.requested, refused.value.available, refused.value.limit) == (1, 0, 1000)
        assert refused.value.org_id == "acme"
        await spend(budgets, 600)
        whole.settle(600)
        assert (await reservations.reserve("acme", 400)).tokens == 400
        with pytest.raises(ReservationRefusedError):
            await reservations.reserve("acme", 1)


async def test_refusal_is_reused_without_a_statement() -> None:
    """Within refusal_ttl a refused size is refused again without a statement; afterwards it asks again."""
    clock = Clock()
    _, leases = stores(1000, clock)
    async with BudgetReservations(leases, refusal_ttl=1.0, clock=clock) as reservations:
        with pytest.raises(ReservationRefusedError):
            await reservations.reserve("acme", 2000)
        calls = leases.calls
        for _ in range(20):
            with pytest.raises(ReservationRefusedError):
                await reservations.reserve("acme", 2000)
        assert leases.calls == calls
        assert (await reservations.reserve("acme", 10)).tokens == 10  # a smaller amount is asked for
        assert leases.calls == calls + 1
        clock.now += 1.5
        with pytest.raises(ReservationRefusedError):
            await reservations.reserve("acme", 2000)
        assert leases.calls == calls + 2


async def test_unknown_organization_is_refused() -> None:
    """An organization the store does not know has nothing to reserve from."""
    _, leases = stores()
    async with BudgetReservations(leases) as reservations:
        with pytest.raises(ReservationRefusedError) as refused:
            await reservations.reserve("nobody", 1)
        assert refused.value.limit == 0


async def test_unlimited_organization_needs_no_lease() -> None:
    """An unlimited organization's reservations always succeed, hold no lease, and are rechecked."""
    clock = Clock()
    budgets, leases = stores(None, clock)
    async with BudgetReservations(leases, lease_ttl=30, clock=clock) as reservations:
        for _ in range(10):
            (await reservations.reserve("acme", 10**9)).settle(5)
        assert leases.calls == 1 and leases.leases("acme") == {}
        budgets.set_budget("acme", 100)
        clock.now += 11  # lease_ttl / 3: the answer is asked again
        with pytest.raises(ReservationRefusedError):
            await reservations.reserve("acme", 1000)


async def test_renewal_keeps_the_lease_alive() -> None:
    """maintain() renews a held lease every lease_ttl / 3, so it outlives its first ttl."""
    clock = Clock()
    _, leases = stores(100_000, clock)
    async with BudgetReservations(leases, lease_ttl=30, idle_return=None, clock=clock) as reservations:
        reservation = await reservations.reserve("acme", 100)
        for _ in range(6):
            clock.now += 10
            await reservations.maintain()
        assert reservations.statements == 7
        assert leases.leases("acme") == {reservations.holder: reservations.snapshot("acme").held}
        reservation.settle(0)


async def test_a_lease_that_cannot_be_renewed_stops_serving() -> None:
    """While the store is down the lease serves until its local expiry, then reservations get the outage."""
    clock = Clock()
    _, inner = stores(100_000, clock)
    store = Flaky(inner)
    async with BudgetReservations(store, lease_ttl=30, idle_return=None, clock=clock) as reservations:
        (await reservations.reserve("acme", 100)).settle(100)
        store.down = True
        clock.now += 20
        await reservations.maintain()  # renewal fails, logged, retried later
        (await reservations.reserve("acme", 100)).settle(100)  # the lease is still valid
        clock.now += 11
        with pytest.raises(BudgetStoreUnavailableError):
            await reservations.reserve("acme", 100)
        store.down = False


async def test_idle_lease_is_returned_then_forgotten() -> None:
    """After idle_return with nothing open the lease goes back to the store; the entry is then dropped."""
    clock = Clock()
    budgets, leases = stores(100_000, clock)
    async with BudgetReservations(leases, idle_return=5, clock=clock) as reservations:
        reservation = await reservations.reserve("acme", 100)
        clock.now += 10
        await reservations.maintain()
        assert leases.leases("acme") != {}  # a call is open: no return
        await spend(budgets, 70)
        reservation.settle(70)
        clock.now += 6
        await reservations.maintain()
        assert leases.leases("acme") == {}
        assert reservations.snapshot("acme") == LeaseSnapshot(0, 0, 0, 0)
        clock.now += 6
        await reservations.maintain()
        assert "acme" not in reservations._leases
        assert (await reservations.reserve("acme", 100)).tokens == 100  # a new lease on demand


async def test_close_returns_leases_and_keeps_open_calls_charged() -> None:
    """aclose() returns the free part; a call still open stays charged until the lease expires."""
    clock = Clock()
    _, leases = stores(100_000, clock)
    reservations = BudgetReservations(leases, lease_ttl=30, clock=clock)
    await reservations.reserve("acme", 100)
    await reservations.aclose()
    await reservations.aclose()  # idempotent
    assert leases.leases("acme") == {reservations.holder: 100}
    clock.now += 31
    assert leases.leases("acme") == {}
    with pytest.raises(RuntimeError, match="closed"):
        await reservations.reserve("acme", 1)


async def test_close_when_the_store_is_down_logs_and_finishes(caplog: pytest.LogCaptureFixture) -> None:
    """A lease that cannot be returned at close is left to expire, with a warning naming the error type."""
    _, inner = stores(100_000)
    store = Flaky(inner)
    reservations = BudgetReservations(store)
    (await reservations.reserve("acme", 100)).settle(1)
    store.down = True
    with caplog.at_level(logging.WARNING, logger="asgi_kit.budget"):
        await reservations.aclose()
    assert "BudgetStoreUnavailableError" in caplog.text


async def test_recording_delay_keeps_settled_usage_in_the_lease() -> None:
    """Usage settled less than recording_delay ago stays in the lease the store holds; later it is dropped."""
    clock = Clock()
    budgets, leases = stores(100_000, clock)
    async with BudgetReservations(leases, lease_tokens=1000, recording_delay=2, clock=clock) as reservations:
        reservation = await reservations.reserve("acme", 500)
        reservation.settle(200)
        assert reservations.snapshot("acme") == LeaseSnapshot(held=1500, reserved=0, pending=200, confirmed=0)
        await reservations.reserve("acme", 1300)  # needs a top-up: the pending 200 are kept
        assert leases.leases("acme")[reservations.holder] >= 200 + 1300
        await spend(budgets, 200)  # the ledger's flush, within recording_delay
        clock.now += 2
        assert reservations.snapshot("acme").confirmed == 200


async def test_more_than_reserved_is_owed_to_the_lease() -> None:
    """Settling more than was reserved takes the excess from the lease; the next statement covers the open calls."""
    budgets, leases = stores(10_000)
    async with BudgetReservations(leases, lease_tokens=100) as reservations:
        first = await reservations.reserve("acme", 100)
        second = await reservations.reserve("acme", 50)
        await spend(budgets, 400)
        first.settle(400)
        assert reservations.snapshot("acme").free < 0
        third = await reservations.reserve("acme", 10)
        snapshot = reservations.snapshot("acme")
        assert snapshot.reserved == 60 and snapshot.free >= 0
        second.release()
        third.release()


async def test_concurrent_reservations_share_one_top_up() -> None:
    """Many reservations arriving at an empty lease wait for one statement instead of sending their own."""
    _, inner = stores(100_000)
    store = Flaky(inner, delay=0.05)
    async with BudgetReservations(store, lease_tokens=5000) as reservations:
        taken = await asyncio.gather(*(reservations.reserve("acme", 100) for _ in range(40)))
        assert store.calls == 1 or reservations.snapshot("acme").free < 1250  # + a background top-up
        assert store.calls <= 2
        assert sum(r.tokens for r in taken) == 4000 <= reservations.snapshot("acme").held


async def test_reservations_during_a_top_up_stay_covered() -> None:
    """A reservation taken from the lease while its top-up statement is in flight is still in the lease after it."""
    _, inner = stores(100_000)
    store = Flaky(inner, delay=0.05)
    async with BudgetReservations(store, lease_tokens=1000) as reservations:
        await reservations.reserve("acme", 900)  # held 1900, free 1000
        big = asyncio.create_task(reservations.reserve("acme", 1500))  # needs a top-up
        await asyncio.sleep(0.01)
        small = await reservations.reserve("acme", 800)  # from the free part, during the statement
        await big
        snapshot = reservations.snapshot("acme")
        assert snapshot.reserved == 900 + 1500 + small.tokens <= snapshot.held
        assert inner.leases("acme")[reservations.holder] == snapshot.held


async def test_two_processes_split_a_small_budget() -> None:
    """A second holder gets what the first left; chunks shrink near the end; an idle return frees the rest."""
    clock = Clock()
    budgets, leases = stores(1000, clock)
    one = BudgetReservations(leases, lease_tokens=10_000, idle_return=5, clock=clock, holder="one")
    two = BudgetReservations(leases, lease_tokens=10_000, idle_return=5, clock=clock, holder="two")
    first = await one.reserve("acme", 100)
    assert one.snapshot("acme").held == 550  # 100 + half of the 900 left
    second = await two.reserve("acme", 100)
    assert two.snapshot("acme").held == 275  # 100 + half of the 350 left
    with pytest.raises(ReservationRefusedError):
        await two.reserve("acme", 400)  # one's lease holds slack: refused early, never over
    await spend(budgets, 100)
    first.settle(100)
    clock.now += 6
    await one.maintain()
    assert leases.leases("acme") == {"two": 275}
    clock.now += 2
    assert (await two.reserve("acme", 400)).tokens == 400
    second.release()
    await one.aclose()
    await two.aclose()


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"lease_tokens": 0}, ValueError, "lease_tokens"),
        ({"lease_tokens": 1.5}, TypeError, "lease_tokens"),
        ({"lease_ttl": 0}, ValueError, "lease_ttl"),
        ({"lease_ttl": 7200}, ValueError, "lease_ttl"),
        ({"lease_ttl": "60"}, TypeError, "lease_ttl"),
        ({"idle_return": -1}, ValueError, "idle_return"),
        ({"idle_return": float("nan")}, ValueError, "idle_return"),
        ({"recording_delay": True}, TypeError, "recording_delay"),
        ({"recording_delay": 60}, ValueError, "recording_delay"),
        ({"refusal_ttl": 61}, ValueError, "refusal_ttl"),
        ({"default_max_tokens": 0}, ValueError, "default_max_tokens"),
        ({"holder": ""}, ValueError, "holder"),
        ({"holder": 7}, TypeError, "holder"),
        ({"holder": "x" * 201}, ValueError, "holder"),
    ],
)
def test_options_are_validated(options: dict[str, Any], error: type[Exception], name: str) -> None:
    """Every bad option is refused at construction with an error naming it."""
    _, leases = stores()
    with pytest.raises(error, match=name):
        BudgetReservations(leases, **options)


def test_store_must_be_a_lease_store() -> None:
    """A BudgetStore without lease methods is refused at construction."""
    with pytest.raises(TypeError, match="BudgetLeaseStore"):
        BudgetReservations(InMemoryBudgetStore())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="BudgetStore"):
        InMemoryLeaseStore(object())  # type: ignore[arg-type]


async def test_reserve_rejects_bad_arguments() -> None:
    """An empty organization id or a negative amount is an error, not a reservation."""
    _, leases = stores()
    async with BudgetReservations(leases) as reservations:
        with pytest.raises(ValueError, match="org_id"):
            await reservations.reserve("", 1)
        with pytest.raises(ValueError, match="tokens"):
            await reservations.reserve("acme", -1)


def test_worst_case_uses_the_default_when_max_tokens_is_missing() -> None:
    """worst_case is prompt + max_tokens, or prompt + default_max_tokens when the request sets none."""
    _, leases = stores()
    reservations = BudgetReservations(leases, default_max_tokens=512)
    assert reservations.worst_case(100, 50) == 150
    assert reservations.worst_case(100, None) == 612
    with pytest.raises(ValueError, match="max_tokens"):
        reservations.worst_case(100, -1)
    assert "lease_tokens=10000" in repr(reservations)


def test_holder_ids_are_unique_per_instance() -> None:
    """The default holder names the host and pid and differs between two reservers in one process."""
    import os

    assert default_holder() != default_holder()
    assert f":{os.getpid()}:" in default_holder()


def test_in_memory_lease_store_is_a_lease_store() -> None:
    """InMemoryLeaseStore satisfies the runtime-checkable BudgetLeaseStore protocol."""
    _, leases = stores()
    assert isinstance(leases, BudgetLeaseStore)


async def test_background_task_renews_and_returns() -> None:
    """Without anyone calling maintain(), the background task returns an idle lease by itself."""
    _, leases = stores(100_000)
    async with BudgetReservations(leases, lease_ttl=1, idle_return=0.1) as reservations:
        (await reservations.reserve("acme", 10)).settle(0)
        for _ in range(100):
            if not leases.leases("acme"):
                break
            await asyncio.sleep(0.02)
        assert leases.leases("acme") == {}


async def test_snapshot_of_an_organization_without_a_lease_is_empty() -> None:
    """snapshot() of an organization this process never reserved for is all zeros."""
    _, leases = stores()
    reservations = BudgetReservations(leases)
    assert reservations.snapshot("other") == LeaseSnapshot(0, 0, 0, 0)
    assert reservations.snapshot("other").free == 0


async def test_a_reservation_during_an_idle_return_waits_for_it() -> None:
    """A reservation that arrives while the idle lease is being returned waits, then takes a fresh lease."""
    clock = Clock()
    _, inner = stores(100_000, clock)
    store = Flaky(inner, delay=0.05)
    async with BudgetReservations(store, lease_tokens=1000, idle_return=5, clock=clock) as reservations:
        (await reservations.reserve("acme", 100)).settle(0)
        clock.now += 6
        returning = asyncio.create_task(reservations.maintain())
        await asyncio.sleep(0.01)
        reservation = await reservations.reserve("acme", 100)  # free on paper, but being returned
        await returning
        assert reservation.tokens == 100
        assert inner.leases("acme")[reservations.holder] == reservations.snapshot("acme").held >= 100


async def test_maintenance_skips_a_lease_whose_statement_is_in_flight() -> None:
    """maintain() leaves alone a lease that a reservation is topping up: that statement renews it."""
    clock = Clock()
    _, inner = stores(100_000, clock)
    store = Flaky(inner, delay=0.05)
    async with BudgetReservations(store, lease_ttl=30, idle_return=None, clock=clock) as reservations:
        topping_up = asyncio.create_task(reservations.reserve("acme", 100))
        await asyncio.sleep(0.01)
        clock.now += 20
        await reservations.maintain()
        await topping_up
        assert store.calls == 1


async def test_a_waiter_on_a_forgotten_entry_starts_over() -> None:
    """A reservation waiting on an entry the maintenance dropped retries with a fresh entry."""
    _, leases = stores(100_000)
    async with BudgetReservations(leases) as reservations:
        (await reservations.reserve("acme", 10)).settle(0)
        old = reservations._leases["acme"]
        old.valid_until = float("-inf")  # force the slow path
        async with old.lock:
            waiting = asyncio.create_task(reservations.reserve("acme", 10))
            await asyncio.sleep(0.01)
            old.retired = True
            del reservations._leases["acme"]
        reservation = await waiting
        assert reservations._leases["acme"] is not old and reservation.tokens == 10


@pytest.mark.parametrize(
    ("amounts", "ttl", "error"),
    [((1, 2, 3), 0, ValueError), ((True, 2, 3), 1, TypeError), ((3, 2, 1), 1, ValueError)],
)
async def test_lease_requests_are_checked(
    amounts: tuple[int, int, int], ttl: float, error: type[Exception]
) -> None:
    """A lease store refuses amounts out of order, non-int amounts and a non-positive ttl."""
    _, leases = stores()
    keep, need, want = amounts
    with pytest.raises(error):
        await leases.lease("acme", "h", keep=keep, need=need, want=want, ttl=ttl)


async def test_a_lease_running_low_is_topped_up_in_the_background() -> None:
    """Below a quarter of lease_tokens free, a background statement grows the lease before anyone waits."""
    _, leases = stores(100_000)
    async with BudgetReservations(leases, lease_tokens=1000) as reservations:
        await reservations.reserve("acme", 100)  # held 1100
        await reservations.reserve("acme", 800)  # free 200 < 250: a top-up is scheduled
        assert reservations.statements == 1
        await asyncio.sleep(0.01)
        assert reservations.statements == 2
        assert reservations.snapshot("acme").free >= 1000


async def test_background_top_ups_stop_when_the_budget_is_nearly_spent() -> None:
    """When a top-up finds no more budget, the next reservations do not each send another statement."""
    _, leases = stores(1000)
    async with BudgetReservations(leases, lease_tokens=1000, refusal_ttl=5) as reservations:
        await reservations.reserve("acme", 10)  # held 10 + half of 990
        while reservations.snapshot("acme").free >= 10:
            await reservations.reserve("acme", 10)
            await asyncio.sleep(0)
        statements = reservations.statements
        for _ in range(5):
            if reservations.snapshot("acme").free >= 1:
                await reservations.reserve("acme", 1)
            await asyncio.sleep(0.01)
        assert reservations.statements <= statements + 1


async def test_a_failed_background_top_up_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A background top-up that meets an outage logs its type; the reservation it followed stands."""
    _, inner = stores(100_000)
    store = Flaky(inner)
    async with BudgetReservations(store, lease_tokens=1000) as reservations:
        await reservations.reserve("acme", 100)
        store.down = True
        with caplog.at_level(logging.WARNING, logger="asgi_kit.budget"):
            reservation = await reservations.reserve("acme", 900)
            await asyncio.sleep(0.01)
        assert "top-up failed (BudgetStoreUnavailableError)" in caplog.text
        reservation.release()
        store.down = False
