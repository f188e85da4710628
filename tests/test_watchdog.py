"""The shared per-loop attempt timer (``_watchdog``): guards, expiry, cancellation, memory.

Real-time tests here use limits of a few hundredths of a second; upper bounds on elapsed
times are generous (a noisy 2-core machine), lower bounds are exact (the timer never
expires a guard before its limit).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import warnings
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from waiting import settle

import resilient_client as rc
from resilient_client._timeout import (
    _COMPACT_MIN,
    _FIRED,
    _TASK,
    _WATCHDOG,
    _WHEN,
    Watchdog,
    guard_attempt,
    leave,
    watchdog_for,
)

SLACK = 0.4  # how late a timer may fire on a busy machine before a test calls it broken
HANG = 3.0  # bounds a test whose guard never fires: a failure, not a stuck run


def bounded(
    test: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., Coroutine[Any, Any, None]]:
    """Run the test under ``asyncio.timeout(HANG)``, a timer independent of the watchdog.

    A broken watchdog must fail these tests, not hang them; a guard that never fires
    surfaces as a CancelledError escaping ``pytest.raises(TimeoutError)``, turned into
    a ``TimeoutError`` outside it.
    """

    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        async with asyncio.timeout(HANG):
            await test(*args, **kwargs)

    return run


def fresh() -> Watchdog:
    """A watchdog of the running loop of its own, so tests can inspect its heap."""
    return Watchdog(asyncio.get_running_loop())


class Guarded:
    """A guard as a ``with`` block: the driver's two steps, ``Watchdog.guard`` on the way
    in and ``leave`` on the way out (a timeout raised as ``TimeoutError``), and what the
    tests read of it."""

    def __init__(self, watchdog: Watchdog, limit: float) -> None:
        self._watchdog, self._limit = watchdog, limit
        self.guard: list[Any] = []

    def __enter__(self) -> Guarded:
        self.guard = self._watchdog.guard(self._limit)
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, traceback: object) -> None:
        if leave(self.guard, exc):
            raise TimeoutError from exc

    @property
    def when(self) -> float:
        return float(self.guard[_WHEN])

    @property
    def fired(self) -> bool:
        return bool(self.guard[_FIRED])

    @property
    def done(self) -> bool:
        return self.guard[_TASK] is None


def consistent(watchdog: Watchdog) -> None:
    """``dead`` counts exactly the guards left but still in the heap."""
    assert watchdog.dead == sum(guard[_TASK] is None for guard in watchdog._heap)


def busy_wait_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    """Hold the loop (no await) until its clock passes ``when``: timers fall due together."""
    while loop.time() <= when:
        pass


# -- expiry -------------------------------------------------------------------------


@bounded
async def test_an_await_past_its_limit_raises_timeout_error() -> None:
    watchdog = fresh()
    loop = asyncio.get_running_loop()

    for body in (lambda: asyncio.sleep(5), lambda: asyncio.Event().wait()):
        start = loop.time()
        with pytest.raises(TimeoutError), Guarded(watchdog, 0.02):
            await body()
        elapsed = loop.time() - start
        assert 0.02 - 1e-6 <= elapsed < 0.02 + SLACK

    # The timeout was the guard's own cancellation, taken back: the task goes on.
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)
    assert watchdog._heap == [] and watchdog.dead == 0 and watchdog._timer is None


@bounded
async def test_the_timeout_error_chains_the_cancellation() -> None:
    with pytest.raises(TimeoutError) as caught, Guarded(fresh(), 0.01):
        await asyncio.sleep(5)
    assert isinstance(caught.value.__cause__, asyncio.CancelledError)


@pytest.mark.parametrize("limit", [0.0, -1.0])
@bounded
async def test_a_limit_already_passed_times_out_at_the_first_await(limit: float) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError), Guarded(fresh(), limit):
        await asyncio.sleep(5)
    assert loop.time() - start < SLACK


@bounded
async def test_a_timeout_can_be_caught_inside_the_task_and_work_goes_on() -> None:
    watchdog = fresh()
    try:
        with Guarded(watchdog, 0.01) as guard:
            await asyncio.Event().wait()
    except TimeoutError:
        pass
    assert guard.fired and guard.done
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.03)  # no leftover cancellation lands here
    assert not task.cancelled()


# -- finishing in time ----------------------------------------------------------------


@bounded
async def test_a_body_done_in_time_raises_nothing_and_leaves_the_task_alone() -> None:
    watchdog = fresh()
    with Guarded(watchdog, 0.01) as guard:
        await asyncio.sleep(0)
    assert guard.done and not guard.fired

    # Past the guard's limit, its timer fires: it must find the guard done and do nothing.
    await asyncio.sleep(0.05)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    assert not guard.fired
    assert watchdog._heap == [] and watchdog.dead == 0  # the timer dropped the done guard


@bounded
async def test_a_body_without_await_is_not_cut_even_with_no_time_left() -> None:
    watchdog = fresh()
    with Guarded(watchdog, 0) as guard:
        total = sum(range(10))
    assert total == 45 and not guard.fired
    await asyncio.sleep(0.02)  # the (already due) timer runs here: nothing to cancel
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


@bounded
async def test_a_live_guard_behind_a_done_one_still_fires_at_its_own_limit() -> None:
    """The timer, armed for a guard already left, re-arms for the next live one."""
    watchdog = fresh()
    loop = asyncio.get_running_loop()
    with Guarded(watchdog, 0.01):
        pass
    start = loop.time()
    with pytest.raises(TimeoutError), Guarded(watchdog, 0.05):
        await asyncio.Event().wait()
    elapsed = loop.time() - start
    assert 0.05 - 1e-6 <= elapsed < 0.05 + SLACK
    consistent(watchdog)


# -- outside cancellation ---------------------------------------------------------------


@bounded
async def test_an_outside_cancellation_during_a_guard_stays_a_cancellation() -> None:
    watchdog = fresh()
    guards: list[Guarded] = []

    async def guarded() -> None:
        with Guarded(watchdog, 5) as guard:
            guards.append(guard)
            await asyncio.Event().wait()

    task = asyncio.create_task(guarded())
    await settle(lambda: guards)  # inside its guard, waiting
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert guards[0].done and not guards[0].fired
    consistent(watchdog)


@pytest.mark.parametrize("outside_first", [True, False], ids=["outside-first", "expiry-first"])
@bounded
async def test_an_outside_cancellation_at_the_guards_expiry_still_wins(
    outside_first: bool,
) -> None:
    """Both cancellations are delivered in one loop iteration, before the task resumes.

    The task holds the loop past its guard's limit (no await), so that when it next
    yields, the watchdog's timer and the outside ``cancel()`` run in the same batch of
    callbacks: ``call_soon`` callbacks ahead of due timers, and due timers by their time.
    """
    watchdog = fresh()
    loop = asyncio.get_running_loop()
    guards: list[Guarded] = []

    async def guarded() -> None:
        me = asyncio.current_task()
        assert me is not None
        with Guarded(watchdog, 0.005) as guard:
            guards.append(guard)
            if outside_first:
                loop.call_soon(me.cancel)
                busy_wait_until(loop, guard.when)
            else:
                loop.call_at(guard.when + 0.002, me.cancel)
                busy_wait_until(loop, guard.when + 0.002)
            await asyncio.Event().wait()

    task = asyncio.create_task(guarded())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert guards[0].fired  # the expiry really did coincide with the outside cancellation


@bounded
async def test_a_cancellation_pending_before_the_guard_does_not_hide_its_timeout() -> None:
    """Like ``asyncio.timeout``: the guard compares against the count it was entered with."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(0)
    assert task.cancelling() == 1  # cancelled once, not uncancelled: cleanup in progress
    try:
        with pytest.raises(TimeoutError), Guarded(fresh(), 0.01):
            await asyncio.sleep(5)
        assert task.cancelling() == 1
    finally:
        task.uncancel()


# -- nesting ----------------------------------------------------------------------------


@bounded
async def test_nested_guards_the_outer_one_expiring_times_out_at_the_outer() -> None:
    watchdog = fresh()
    guards: list[Guarded] = []
    reached_after_inner: list[bool] = []

    async def nested() -> None:
        with Guarded(watchdog, 0.02) as outer:
            guards.append(outer)
            with Guarded(watchdog, 5) as inner:
                guards.append(inner)
                await asyncio.sleep(5)
            reached_after_inner.append(True)  # the inner guard must not swallow it

    with pytest.raises(TimeoutError):
        await nested()
    outer, inner = guards
    assert outer.fired and not inner.fired and reached_after_inner == []
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


@bounded
async def test_nested_guards_the_inner_one_expiring_leaves_the_outer_running() -> None:
    watchdog = fresh()
    with Guarded(watchdog, 5) as outer:
        with pytest.raises(TimeoutError), Guarded(watchdog, 0.01) as inner:
            await asyncio.sleep(5)
        await asyncio.sleep(0.02)  # the outer body goes on, uncancelled
    assert inner.fired and not outer.fired
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


# -- several tasks ------------------------------------------------------------------------


@bounded
async def test_concurrent_guards_only_those_past_their_limit_time_out_in_order() -> None:
    watchdog = fresh()
    loop = asyncio.get_running_loop()
    start = loop.time()
    events: list[tuple[str, str, float]] = []

    async def run(name: str, limit: float, work: float) -> None:
        try:
            with Guarded(watchdog, limit):
                await asyncio.sleep(work)
        except TimeoutError:
            events.append((name, "timeout", loop.time() - start))
        else:
            events.append((name, "done", loop.time() - start))

    # Entered out of limit order, so the heap (not arrival) has to order them.
    spec = {
        "c": (0.09, 5.0),
        "slow-but-in-time": (1.0, 0.12),
        "a": (0.03, 5.0),
        "fast": (0.06, 0.0),
        "b": (0.06, 5.0),
    }
    await asyncio.gather(*(run(name, *limits) for name, limits in spec.items()))

    assert [(name, kind) for name, kind, _ in events] == [
        ("fast", "done"),
        ("a", "timeout"),
        ("b", "timeout"),
        ("c", "timeout"),
        ("slow-but-in-time", "done"),
    ]
    at = {name: when for name, _, when in events}
    for name in "abc":
        assert spec[name][0] - 1e-6 <= at[name] < spec[name][0] + SLACK
    # Only the in-time guard whose limit is yet to come is still in the heap, left (dead).
    assert [guard[_TASK] is None for guard in watchdog._heap] == [True]
    consistent(watchdog)


@bounded
async def test_an_earlier_limit_entered_after_a_later_one_rearms_the_timer() -> None:
    watchdog = fresh()
    loop = asyncio.get_running_loop()
    long_guards: list[Guarded] = []

    async def long_wait() -> None:
        with Guarded(watchdog, 10) as guard:
            long_guards.append(guard)
            await asyncio.Event().wait()

    waiting = asyncio.create_task(long_wait())
    await settle(lambda: long_guards)
    assert watchdog._armed_at == long_guards[0].when

    start = loop.time()
    with pytest.raises(TimeoutError), Guarded(watchdog, 0.01):
        await asyncio.sleep(0.5)  # without the re-arm this sleep ends first: no TimeoutError
    elapsed = loop.time() - start
    assert 0.01 - 1e-6 <= elapsed < 0.3

    # The 10 s guard is untouched, and the timer is armed for it again.
    assert not waiting.done() and not long_guards[0].fired
    assert watchdog._timer is not None and watchdog._armed_at == long_guards[0].when
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not long_guards[0].fired


# -- memory ---------------------------------------------------------------------------------


@bounded
async def test_sequential_guards_leave_a_small_heap() -> None:
    watchdog = fresh()
    for _ in range(10_000):
        with Guarded(watchdog, 60):
            pass
    # Compaction happens on entry once more than _COMPACT_MIN dead outnumber the live.
    assert len(watchdog._heap) <= _COMPACT_MIN + 2
    assert watchdog.dead <= _COMPACT_MIN + 1
    consistent(watchdog)


@bounded
async def test_a_burst_of_concurrent_guards_is_compacted_once_they_are_left() -> None:
    watchdog = fresh()
    release = asyncio.Event()
    inside = 0

    async def hold() -> None:
        nonlocal inside
        with Guarded(watchdog, 60):
            inside += 1
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(1_000)]
    await settle(lambda: inside == 1_000)
    assert len(watchdog._heap) == 1_000 and watchdog.dead == 0  # all live: nothing to drop
    release.set()
    await asyncio.gather(*tasks)
    assert watchdog.dead == 1_000
    consistent(watchdog)

    with Guarded(watchdog, 60):
        pass
    assert len(watchdog._heap) <= 1 and watchdog.dead <= 1  # rebuilt on that entry
    consistent(watchdog)
    for _ in range(5_000):
        with Guarded(watchdog, 60):
            pass
    assert len(watchdog._heap) <= _COMPACT_MIN + 2
    consistent(watchdog)


@bounded
async def test_live_guards_survive_compaction_and_still_fire() -> None:
    watchdog = fresh()
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def wait_for_timeout() -> float:
        with pytest.raises(TimeoutError), Guarded(watchdog, 0.05):
            await asyncio.Event().wait()
        return loop.time() - start

    live = asyncio.create_task(wait_for_timeout())
    await asyncio.sleep(0)
    for _ in range(1_000):  # many compactions while the live guard sits in the heap
        with Guarded(watchdog, 60):
            pass
    assert len(watchdog._heap) <= _COMPACT_MIN + 2
    elapsed = await live
    assert 0.05 - 1e-6 <= elapsed < 0.05 + SLACK
    consistent(watchdog)


# -- one watchdog per loop ---------------------------------------------------------------------


@bounded
async def test_watchdog_for_is_one_per_loop() -> None:
    loop = asyncio.get_running_loop()
    mine = watchdog_for(loop)
    assert watchdog_for(loop) is mine
    other_loop = asyncio.new_event_loop()
    try:
        other = watchdog_for(other_loop)
        assert other is not mine
        assert watchdog_for(other_loop) is other
        assert watchdog_for(loop) is mine
    finally:
        other_loop.close()


def test_watchdog_for_a_loop_works_on_that_loop() -> None:
    async def main() -> bool:
        with pytest.raises(TimeoutError), Guarded(watchdog_for(asyncio.get_running_loop()), 0.01):
            await asyncio.sleep(5)
        return True

    with asyncio.Runner() as runner:
        assert runner.run(main())


def test_watchdog_for_does_not_keep_a_closed_loop_alive() -> None:
    async def use() -> weakref.ref[asyncio.AbstractEventLoop]:
        loop = asyncio.get_running_loop()
        with Guarded(watchdog_for(loop), 0.01):
            await asyncio.sleep(0)
        return weakref.ref(loop)

    loop = asyncio.new_event_loop()
    ref = loop.run_until_complete(use())
    loop.close()
    del loop
    gc.collect()
    assert ref() is None


# -- outside a task ------------------------------------------------------------------------------


def test_guard_on_a_loop_that_is_not_running_raises_runtime_error() -> None:
    loop = asyncio.new_event_loop()
    try:
        watchdog = Watchdog(loop)
        with pytest.raises(RuntimeError, match="running task"):
            watchdog.guard(1)
        assert watchdog._heap == [] and watchdog._timer is None
    finally:
        loop.close()


@bounded
async def test_guard_from_a_plain_loop_callback_raises_runtime_error() -> None:
    loop = asyncio.get_running_loop()
    watchdog = fresh()
    outcome: asyncio.Future[BaseException | None] = loop.create_future()

    def callback() -> None:
        try:
            watchdog.guard(1)
        except BaseException as exc:
            outcome.set_result(exc)
        else:
            outcome.set_result(None)

    loop.call_soon(callback)
    error = await outcome
    assert isinstance(error, RuntimeError) and "running task" in str(error)
    assert watchdog._heap == [] and watchdog._timer is None


# -- the driver's entry point -------------------------------------------------------------------


def test_guard_attempt_guards_with_the_running_loops_own_watchdog() -> None:
    """One loop after another (``asyncio.run`` twice): each attempt is guarded by its
    own loop's watchdog, never by the one remembered from the loop before."""
    seen: list[tuple[Watchdog, Watchdog]] = []

    async def one() -> None:
        guard = guard_attempt(5)
        assert isinstance(guard, list)
        seen.append((guard[_WATCHDOG], watchdog_for(asyncio.get_running_loop())))
        assert not leave(guard, None)

    asyncio.run(one())
    asyncio.run(one())
    assert [mine for mine, _ in seen] == [loops for _, loops in seen]
    assert seen[0][0] is not seen[1][0]


def test_guard_attempt_under_trio_after_an_asyncio_loop_is_gone() -> None:
    """The remembered watchdog's loop is gone, so its weak reference answers None - as
    the running-loop lookup does under trio. Asking the cache before asking for trio took
    the dead watchdog for the running one; it must be anyio's cancel scope, which cuts
    the block."""
    trio = pytest.importorskip("trio")

    async def on_asyncio() -> None:
        assert not leave(guard_attempt(5), None)

    asyncio.run(on_asyncio())
    gc.collect()

    async def on_trio() -> bool:
        guard = guard_attempt(0.01)
        try:
            await trio.sleep(HANG)
        except BaseException as exc:
            return leave(guard, exc)
        return leave(guard, None)

    assert trio.run(on_trio) is True


# -- through the public client ---------------------------------------------------------------------


class SlowTransport(httpx.AsyncBaseTransport):
    """Never answers in time: every request sleeps 5 s."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        await asyncio.sleep(5)
        return httpx.Response(200)  # pragma: no cover - cut short by the attempt limit


def slow_client(attempt: float, total: float) -> tuple[rc.AsyncResilientClient, SlowTransport]:
    transport = SlowTransport()
    with warnings.catch_warnings():  # some tests here want a cap past the deadline
        warnings.simplefilter("ignore", UserWarning)
        client = rc.AsyncResilientClient(
            transport=transport,
            policy=rc.Policy(timeouts=rc.Timeouts(attempt=attempt, total=total), retry=None),
        )
    return client, transport


@bounded
async def test_client_attempt_cap_raises_attempt_timeout() -> None:
    loop = asyncio.get_running_loop()
    client, transport = slow_client(attempt=0.05, total=0.5)
    async with client:
        start = loop.time()
        with pytest.raises(rc.AttemptTimeout) as caught:
            await client.get("http://api.test/x")
        elapsed = loop.time() - start
    assert not isinstance(caught.value, rc.DeadlineExceeded)
    assert caught.value.cap == 0.05
    assert 0.05 - 1e-6 <= elapsed < 0.5
    assert transport.calls == 1
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)  # and nothing is left to cancel this task later


@bounded
async def test_client_deadline_shorter_than_the_cap_raises_deadline_exceeded() -> None:
    loop = asyncio.get_running_loop()
    client, transport = slow_client(attempt=0.5, total=0.05)
    async with client:
        start = loop.time()
        with pytest.raises(rc.DeadlineExceeded):
            await client.get("http://api.test/x")
        elapsed = loop.time() - start
    assert elapsed < 0.45
    assert transport.calls == 1


@bounded
async def test_client_call_cancelled_from_outside_is_cancelled_not_timed_out() -> None:
    client, transport = slow_client(attempt=5.0, total=10.0)
    async with client:
        call = asyncio.create_task(client.get("http://api.test/x"))
        # calls is counted just before the transport's sleep: the call is waiting in it.
        await settle(lambda: transport.calls == 1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    assert call.cancelled()


def test_under_trio_the_attempt_cap_is_anyios_cancel_scope() -> None:
    """No asyncio loop runs under trio: the driver falls back to anyio's cancel scope,
    and a call that finishes in time is untouched by it."""
    trio = pytest.importorskip("trio")

    class TrioSlowTransport(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.calls = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.calls += 1
            if request.url.path == "/slow":
                await trio.sleep(HANG)
            return httpx.Response(200)

    async def main() -> tuple[int, float]:
        transport = TrioSlowTransport()
        policy = rc.Policy(timeouts=rc.Timeouts(attempt=0.05, total=1.0), retry=None)
        async with rc.AsyncResilientClient(transport=transport, policy=policy) as client:
            assert (await client.get("http://api.test/fast")).status_code == 200
            start = trio.current_time()
            with pytest.raises(rc.AttemptTimeout):
                await client.get("http://api.test/slow")
            return transport.calls, trio.current_time() - start

    calls, elapsed = trio.run(main)
    assert calls == 2
    assert 0.05 - 1e-6 <= elapsed < 0.05 + SLACK
