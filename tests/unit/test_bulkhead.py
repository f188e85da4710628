"""The bulkhead: a concurrency cap per endpoint, for threads and for tasks."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pydantic
import pytest
from waiting import settle, wait_until

from resilient_client._bulkhead import Bulkhead, BulkheadState
from resilient_client.testing import FakeClock


async def settle_anyio(condition: Callable[[], bool]) -> None:
    """Like :func:`waiting.settle`, under any anyio backend."""
    for _ in range(100):
        if condition():
            return
        await anyio.lowlevel.checkpoint()
    raise AssertionError("condition not reached")


def full(max_concurrent: int = 2, max_wait: float = 0.0) -> BulkheadState:
    state = BulkheadState(Bulkhead(max_concurrent=max_concurrent, max_wait=max_wait))
    for _ in range(max_concurrent):
        assert state.acquire(0)
    return state


# -- threads ------------------------------------------------------------------------


def test_threads_never_exceed_max_concurrent() -> None:
    state = BulkheadState(Bulkhead(max_concurrent=2))
    guard = threading.Lock()
    holding = 0
    peak = 0
    acquired: list[bool] = []
    start = threading.Barrier(10)

    def worker() -> None:
        nonlocal holding, peak
        start.wait()
        ok = state.acquire(timeout=10.0)
        acquired.append(ok)
        if not ok:
            return
        try:
            with guard:
                holding += 1
                peak = max(peak, holding)
            for _ in range(20):  # hold the slot across a few thread switches
                time.sleep(0)
            with guard:
                holding -= 1
        finally:
            state.release()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert acquired == [True] * 10
    assert 1 <= peak <= 2
    snap = state.snapshot()
    assert (snap.in_flight, snap.waiting, snap.acquired_total, snap.rejected_total) == (
        0,
        0,
        10,
        0,
    )


def test_no_wait_rejects_at_once_when_full() -> None:
    state = full()

    assert state.acquire(0) is False
    assert state.rejected_total == 1
    assert state.in_flight == 2


def test_waiting_thread_gets_the_released_slot() -> None:
    state = full()
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(state.acquire(10.0)))
    waiter.start()
    wait_until(lambda: state.snapshot().waiting == 1)

    state.release()
    waiter.join()

    assert result == [True]
    assert state.in_flight == 2  # the slot changed hands, it was not freed


def test_thread_gives_up_after_its_timeout() -> None:
    state = full()
    began = time.monotonic()

    assert state.acquire(0.02) is False

    assert time.monotonic() - began >= 0.015
    snap = state.snapshot()
    assert (snap.in_flight, snap.waiting, snap.rejected_total) == (2, 0, 1)


def test_newcomer_cannot_overtake_a_waiter() -> None:
    state = full(max_concurrent=1)
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(state.acquire(10.0)))
    waiter.start()
    wait_until(lambda: state.snapshot().waiting == 1)

    state.release()
    assert state.acquire(0) is False  # the freed slot went to the waiter
    waiter.join()
    assert result == [True]


def test_racing_timeouts_and_releases_leak_nothing() -> None:
    state = BulkheadState(Bulkhead(max_concurrent=3))
    outcomes: list[bool] = []
    start = threading.Barrier(8)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(200):
            ok = state.acquire(timeout=rng.choice([0.0, 0.0005, 0.002]))
            outcomes.append(ok)
            if ok:
                for _ in range(rng.randrange(3)):
                    time.sleep(0)
                state.release()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    snap = state.snapshot()
    assert (snap.in_flight, snap.waiting) == (0, 0)
    assert snap.acquired_total == outcomes.count(True)
    assert snap.rejected_total == outcomes.count(False)


def test_release_without_a_slot_is_an_error() -> None:
    state = BulkheadState(Bulkhead())

    with pytest.raises(RuntimeError, match="without a slot"):
        state.release()


# -- tasks --------------------------------------------------------------------------


async def test_task_no_wait_rejects_at_once_when_full() -> None:
    state = full()

    assert await state.aacquire(0) is False
    assert state.rejected_total == 1


async def test_tasks_never_exceed_max_concurrent() -> None:
    state = BulkheadState(Bulkhead(max_concurrent=2))
    holding = 0
    peak = 0

    async def call() -> bool:
        nonlocal holding, peak
        if not await state.aacquire(10.0):
            return False
        try:
            holding += 1
            peak = max(peak, holding)
            for _ in range(3):
                await asyncio.sleep(0)
            holding -= 1
        finally:
            state.release()
        return True

    results = await asyncio.gather(*(call() for _ in range(10)))

    assert results == [True] * 10
    assert peak == 2
    assert state.snapshot().in_flight == 0


async def test_waiting_tasks_get_slots_in_arrival_order() -> None:
    state = full(max_concurrent=1)
    order: list[str] = []

    async def call(name: str) -> None:
        assert await state.aacquire(10.0)
        order.append(name)

    tasks = [asyncio.create_task(call(name)) for name in "abc"]
    await settle(lambda: state.snapshot().waiting == 3)
    for _ in range(3):
        state.release()
        await settle(lambda: len(order) + state.snapshot().waiting == 3)
    await asyncio.gather(*tasks)

    assert order == ["a", "b", "c"]
    assert state.in_flight == 1


async def test_task_gives_up_after_its_timeout() -> None:
    state = full()

    assert await state.aacquire(0.02) is False

    snap = state.snapshot()
    assert (snap.in_flight, snap.waiting, snap.rejected_total) == (2, 0, 1)


async def test_cancelled_waiter_leaks_no_slot() -> None:
    state = full()
    task = asyncio.create_task(state.aacquire(10.0))
    await settle(lambda: state.snapshot().waiting == 1)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    snap = state.snapshot()
    assert (snap.waiting, snap.rejected_total) == (0, 0)  # cancelled, not rejected
    state.release()
    state.release()
    assert state.in_flight == 0
    assert [await state.aacquire(0) for _ in range(3)] == [True, True, False]


async def test_waiter_cancelled_as_its_slot_arrives_passes_it_on() -> None:
    state = full(max_concurrent=1)
    first = asyncio.create_task(state.aacquire(10.0))
    second = asyncio.create_task(state.aacquire(10.0))
    await settle(lambda: state.snapshot().waiting == 2)

    state.release()  # hands the slot to `first` and schedules its wake-up...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first

    assert await second is True
    assert state.snapshot().in_flight == 1
    state.release()
    assert state.in_flight == 0


async def test_racing_cancellations_timeouts_and_releases_leak_nothing() -> None:
    state = BulkheadState(Bulkhead(max_concurrent=2))
    rng = random.Random(1)

    async def call() -> None:
        if await state.aacquire(rng.choice([0.0, 0.0005, 10.0])):
            try:
                for _ in range(rng.randrange(4)):
                    await asyncio.sleep(0)
            finally:
                state.release()

    tasks = [asyncio.create_task(call()) for _ in range(300)]
    for _ in range(60):
        await asyncio.sleep(0)
        rng.choice(tasks).cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    snap = state.snapshot()
    assert (snap.in_flight, snap.waiting) == (0, 0)
    assert [await state.aacquire(0) for _ in range(3)] == [True, True, False]


def test_state_outlives_event_loops() -> None:
    state = BulkheadState(Bulkhead(max_concurrent=1))

    async def contend() -> list[bool]:
        assert await state.aacquire(0)
        waiter = asyncio.create_task(state.aacquire(10.0))
        await settle(lambda: state.snapshot().waiting == 1)
        state.release()
        got = await waiter
        state.release()
        return [got]

    assert asyncio.run(contend()) == [True]
    assert asyncio.run(contend()) == [True]  # a new loop, the same state
    assert state.in_flight == 0


def test_loops_in_two_threads_share_one_state() -> None:
    state = BulkheadState(Bulkhead(max_concurrent=1))
    assert state.acquire(0)
    result: list[bool] = []

    def other_loop() -> None:
        async def wait() -> None:
            result.append(await state.aacquire(10.0))
            state.release()

        asyncio.run(wait())

    thread = threading.Thread(target=other_loop)
    thread.start()
    wait_until(lambda: state.snapshot().waiting == 1)
    state.release()  # from this thread, into the other thread's loop
    thread.join()

    assert result == [True]
    assert state.in_flight == 0


def test_slot_meant_for_a_dead_loop_goes_to_the_next_caller() -> None:
    state = full(max_concurrent=1)
    loop = asyncio.new_event_loop()
    task = loop.create_task(state.aacquire(10.0))
    loop.run_until_complete(_yield_a_few())
    assert state.snapshot().waiting == 1
    loop.close()  # stopped and closed with the waiter still pending

    state.release()  # cannot wake the dead waiter: the slot returns to the pool

    assert state.snapshot().in_flight == 0
    assert state.acquire(0) is True
    del task


async def _yield_a_few() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_trio_tasks_wait_and_cancel_cleanly() -> None:
    pytest.importorskip("trio")
    state = full(max_concurrent=1)

    async def main() -> list[bool]:
        results: list[bool] = []

        async def wait() -> None:
            results.append(await state.aacquire(10.0))

        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await settle_anyio(lambda: state.snapshot().waiting == 1)
            # The release comes from another thread, as a sync caller would do it.
            await anyio.to_thread.run_sync(state.release)
        with anyio.move_on_after(0.01):  # full again: this one times out
            results.append(await state.aacquire(10.0))
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await settle_anyio(lambda: state.snapshot().waiting == 1)
            group.cancel_scope.cancel()
        return results

    assert anyio.run(main, backend="trio") == [True]
    snap = state.snapshot()
    assert (snap.in_flight, snap.waiting) == (1, 0)


# -- notices and policy -------------------------------------------------------------


def test_rejection_notice_is_given_once_per_episode() -> None:
    clock = FakeClock()
    state = BulkheadState(Bulkhead(max_concurrent=1), clock)
    assert state.acquire(0)

    assert state.acquire(0) is False
    notice = state.take_refusal_notice("POST /v1/payments")
    assert notice is not None
    assert "'POST /v1/payments'" in notice
    assert "\n" not in notice
    for _ in range(5):
        clock.advance(2.0)
        assert state.acquire(0) is False
        assert state.take_refusal_notice("POST /v1/payments") is None

    clock.advance(10.0)
    assert state.acquire(0) is False
    assert state.take_refusal_notice("POST /v1/payments") is not None


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_concurrent", 0), ("max_concurrent", -3), ("max_wait", -0.1), ("max_wait", float("inf"))],
)
def test_invalid_policy_names_the_field(field: str, value: float) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Bulkhead(**{field: value})

    assert info.value.errors()[0]["loc"] == (field,)


def test_policy_defaults_match_the_contract() -> None:
    assert Bulkhead() == Bulkhead(max_concurrent=16, max_wait=0.0)
    with pytest.raises(pydantic.ValidationError):
        Bulkhead().max_concurrent = 4  # type: ignore[misc]
