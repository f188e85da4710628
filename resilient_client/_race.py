"""The hedge race, as each driver runs it: the drivers' part of hedging.

The rules (which calls hedge, the delay, which outcome wins) are ``_hedging.py``'s; this
module runs them. A race is one ``Hedge`` step of the call's story: the driver starts an
attempt, and another each time ``delay`` passes without a final outcome (up to
``max_hedges``, each admitted by the breaker, the deadline and the retry budget, or not
made); it takes outcomes as they come, ends on the first that ends the race, and
cancels the rest. Each attempt does the I/O an un-hedged attempt does (the driver's
``_exchange``: chaos, the attempt's limit, the body read) in a thread (sync) or a task
(async) of its own; its bookkeeping (breaker, events, the call's record) is done by the
race, on the caller's thread or task, one outcome at a time, so the call is never
touched by two attempts at once.

Sync: an attempt's thread cannot be interrupted mid-read. A loser is abandoned - reported
cancelled, its breaker permit released - and its thread closes its response when it
arrives (its connection going back to the pool), by its attempt's limit at the latest.
The threads are a pool per driver (:class:`_Threads`), reused: starting a thread per
attempt cost ten times the handoff to an idle one (measured: ~500 vs ~35 us on a loaded
2-core machine). The pool has no bound: threads held by stalled losers must not queue
the next calls' first attempts behind them, the very tail hedging cuts; each loser ends
by its attempt limit.

Async: a task per attempt (asyncio; under trio, no hedges); losers are cancelled and
awaited, so their connections are released before the caller has its answer.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from ._breaker import Rejection
from ._hedging import HedgeCancelled, Lane, ends_race, next_wait

if TYPE_CHECKING:
    import httpx

    from ._call._call import Call
    from ._call._story import Hedge
    from ._flavor import Flavor
    from ._isolation import IsolationTable

__all__ = ["AsyncRace", "SyncRace"]

_THREAD = "resilient_client-hedge"  # the name of a hedge race's attempt threads
_IDLE = 60.0  # seconds an attempt thread waits for work before it ends
_FIRST_COMPLETED = asyncio.FIRST_COMPLETED


def _interrupt(outcome: object) -> bool:
    """Whether a race's outcome is an interruption (not an attempt's failure): raised."""
    return isinstance(outcome, BaseException) and not isinstance(outcome, Exception)


class _Threads:
    """Daemon threads for a driver's race attempts: an idle one is reused, a new one made
    when none is idle (so a loser stalled on its read never holds up the next call's
    attempt), and one idle for a minute ends. Daemon: a loser never holds up the
    interpreter's exit either, as a ``ThreadPoolExecutor``'s workers would."""

    __slots__ = ("_idle", "_lock", "_work")

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[tuple[Callable[..., object], tuple[Any, ...]] | None]
        self._work = queue.SimpleQueue()
        self._idle = 0  # threads waiting for work, less the work promised to them
        self._lock = threading.Lock()

    def submit(self, function: Callable[..., object], *args: Any) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # that thread's next item is this one
        self._work.put((function, args))
        if spawn:
            threading.Thread(target=self._serve, daemon=True, name=_THREAD).start()

    def shutdown(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._work.put(None)

    def _serve(self) -> None:
        while True:
            try:
                item = self._work.get(timeout=_IDLE)
            except queue.Empty:
                with self._lock:
                    if self._idle == 0:  # promised the next item: stay for it
                        continue
                    self._idle -= 1
                return
            if item is None:
                return
            function, args = item
            try:
                function(*args)
            finally:
                with self._lock:
                    self._idle += 1


def _ready(call: Call, isolated: dict[str, str], *, hedge: bool) -> Exception | bool:
    """Whether a race's attempt may go on to its breaker: ``True``; ``False``, a hedge
    not made (no time left, or the endpoint isolated: ``_isolation.py``, as
    ``_attempt`` asks it); or the first attempt's refusal, its outcome."""
    if hedge and call.deadline_passed():
        return False
    try:
        call.time_attempt()
    except Exception as exc:
        if hedge:
            call.stop_reason = None  # the call is not over: its attempts run
            return False
        return exc
    if isolated and (reason := isolated.get(call.endpoint.key)) is not None:
        return False if hedge else call.refused_isolated(reason)
    return True


class SyncRace:
    """The sync driver's races (a mixin of ``SyncDriver``)."""

    # Made on the first race (most drivers never hedge), under the driver's lock; a forked
    # child forgets it and gets a fresh lock (another thread may have held the parent's).
    _race_pool: _Threads | None = None
    _race_lock: threading.Lock

    if TYPE_CHECKING:
        _isolated: dict[str, str]
        _fleet: IsolationTable | None

        def _exchange(
            self, call: Call, request: httpx.Request, limit: float | None, lane: Lane
        ) -> httpx.Response: ...

    def _race(self, call: Call, step: Hedge) -> httpx.Response | Exception:
        """A hedge race: an attempt, and another each ``step.delay`` seconds that pass
        without a final outcome (up to ``step.max_hedges``); the outcome that ends it.

        Each attempt runs on a thread of its own (a thread is not interrupted mid-read):
        a loser is abandoned, reported cancelled at once, and its response closed when
        it arrives, by its attempt's limit at the latest; the caller never waits for it.
        """
        results: queue.SimpleQueue[tuple[Lane, Any]] = queue.SimpleQueue()
        lock = threading.Lock()
        first = self._open(call, hedge=False)
        if not isinstance(first, Lane):
            return first  # type: ignore[return-value] # refused before it was sent
        lanes = [first]
        self._run(call, first, results, lock)
        tries = 0
        wait: float | None = step.delay
        try:
            while True:
                try:
                    lane, outcome = results.get(timeout=wait)
                except queue.Empty:
                    tries += 1
                    hedge = self._open(call, hedge=True)
                    if isinstance(hedge, Lane):
                        lanes.append(hedge)
                        self._run(call, hedge, results, lock)
                    wait = next_wait(tries, step.max_hedges, step.delay)
                    continue
                lanes.remove(lane)
                try:
                    result = call.close_lane(lane, outcome)
                except BaseException:
                    self._give_back(call, lane.permit, outcome)
                    raise
                if lane.permit is not None:
                    call.breaker.record(lane.permit, *result)  # type: ignore[union-attr]
                if _interrupt(outcome) or ends_race(outcome, len(lanes), call.judge):
                    break
                if not isinstance(outcome, BaseException):  # a retryable answer: the rest go on
                    outcome.close()
        except BaseException as exc:  # the caller's thread interrupted
            self._abandon(call, lanes, results, lock, exc)
            raise
        self._abandon(call, lanes, results, lock, HedgeCancelled())
        if _interrupt(outcome):
            raise outcome  # a thread's KeyboardInterrupt and the like
        return outcome  # type: ignore[no-any-return]

    def _open(self, call: Call, *, hedge: bool) -> Lane | Exception | None:
        """Start a race's attempt: its limit, the breaker's permit and, for a hedge, the
        budget's retry; the first attempt's refusal (its outcome), or ``None`` for a
        hedge refused (it is simply not made)."""
        ready = _ready(call, self._isolated, hedge=hedge)
        if ready is not True:
            return ready or None
        breaker = call.breaker
        permit = None if breaker is None else breaker.admit()
        if isinstance(permit, Rejection):
            return None if hedge else call.refused_by_breaker(permit)
        if breaker is None and self._fleet is not None:
            reason = self._fleet.read(call.endpoint.key)
            if reason:
                return None if hedge else call.refused_isolated(reason)
        if hedge and not call.grants_hedge():
            if permit is not None:
                breaker.release(permit)  # type: ignore[union-attr]
            return None
        return call.open_lane(permit, hedge)

    def _give_back(self, call: Call, permit: Any, outcome: Any) -> None:
        """An attempt whose judging raised (``Breaker.failure_if``, which ends the call):
        its permit goes back - a probe's slot would stay taken until its lease ran out,
        the breaker refusing every call meanwhile - and so does its connection."""
        if permit is not None:
            call.breaker.release(permit)  # type: ignore[union-attr]
        if not isinstance(outcome, BaseException):
            outcome.close()

    def _run(self, call: Call, lane: Lane, results: Any, lock: threading.Lock) -> None:
        """Send ``lane``'s attempt on a thread of the driver's pool, in the caller's
        context (its trace context and suppressed instrumentation, as it started)."""
        pool = self._race_pool
        if pool is None:
            with self._race_lock:
                pool = self._race_pool
                if pool is None:
                    pool = self._race_pool = _Threads()
        context = contextvars.copy_context()
        pool.submit(context.run, self._lane_io, call, lane, results, lock)

    def _end_races(self) -> None:
        """The driver closes: its idle threads end (the busy ones when their attempt has)."""
        pool, self._race_pool = self._race_pool, None
        if pool is not None:
            pool.shutdown()

    def _lane_io(self, call: Call, lane: Lane, results: Any, lock: threading.Lock) -> None:
        outcome: Any
        try:
            outcome = self._exchange(call, lane.request, lane.limit, lane)
        except BaseException as exc:
            outcome = exc
        with lock:
            if not lane.cancelled:
                results.put((lane, outcome))
                return
        if not isinstance(outcome, BaseException):
            outcome.close()  # a loser's late answer: its connection goes back to the pool

    def _abandon(
        self,
        call: Call,
        lanes: list[Lane],
        results: Any,
        lock: threading.Lock,
        reason: BaseException,
    ) -> None:
        """End the race's other attempts: reported ended by ``reason``, their permits
        released, and every answer already in closed."""
        with lock:
            for lane in lanes:
                lane.cancelled = True
        for lane in lanes:
            result = call.close_lane(lane, reason)
            if lane.permit is not None:
                call.breaker.record(lane.permit, *result)  # type: ignore[union-attr]
        while True:
            try:
                _, outcome = results.get_nowait()
            except queue.Empty:
                return
            if not isinstance(outcome, BaseException):
                outcome.close()


class AsyncRace:
    """The async driver's races (a mixin of ``AsyncDriver``)."""

    if TYPE_CHECKING:
        _flavor: ClassVar[Flavor]
        _isolated: dict[str, str]
        _fleet: IsolationTable | None

        async def _exchange(
            self, call: Call, request: httpx.Request, limit: float | None, lane: Lane
        ) -> httpx.Response: ...

        async def _attempt(self, call: Call) -> httpx.Response | Exception: ...

        async def _cut_short(self) -> None: ...

    async def _race(self, call: Call, step: Hedge) -> httpx.Response | Exception:
        """:meth:`SyncRace._race`, with a task per attempt: the losers are cancelled
        (and awaited, so their connections are back in the pool before the caller has
        its answer). Under trio (no asyncio loop), one attempt at a time: no hedges."""
        if asyncio._get_running_loop() is None:
            return await self._attempt(call)
        first = await self._open(call, hedge=False)
        if not isinstance(first, Lane):
            return first  # type: ignore[return-value] # refused before it was sent
        lanes = [first]
        self._run(call, first)
        tries = 0
        wait: float | None = step.delay
        try:
            while True:
                done, _ = await asyncio.wait(
                    [lane.task for lane in lanes], timeout=wait, return_when=_FIRST_COMPLETED
                )
                if not done:
                    tries += 1
                    hedge = await self._open(call, hedge=True)
                    if isinstance(hedge, Lane):
                        lanes.append(hedge)
                        self._run(call, hedge)
                    wait = next_wait(tries, step.max_hedges, step.delay)
                    continue
                lane = next(lane for lane in lanes if lane.task in done)  # the earliest started
                lanes.remove(lane)
                outcome = lane.task.result()
                try:
                    result = call.close_lane(lane, outcome)
                except BaseException:
                    await self._give_back(call, lane.permit, outcome)
                    raise
                await self._record(call, lane.permit, result)
                if _interrupt(outcome) or ends_race(outcome, len(lanes), call.judge):
                    break
                if not isinstance(outcome, BaseException):  # a retryable answer: the rest go on
                    await outcome.aclose()
        except BaseException as exc:  # the caller's task cancelled
            await self._abandon(call, lanes, exc)
            raise
        await self._abandon(call, lanes, HedgeCancelled())
        if _interrupt(outcome):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    async def _open(self, call: Call, *, hedge: bool) -> Lane | Exception | None:
        """:meth:`SyncRace._open`, awaited."""
        ready = _ready(call, self._isolated, hedge=hedge)
        if ready is not True:
            return ready or None
        breaker = call.breaker
        permit = None
        if breaker is not None:
            decision = breaker.admit() if breaker.local else await breaker.aadmit()
            if isinstance(decision, Rejection):
                return None if hedge else call.refused_by_breaker(decision)
            permit = decision
        elif self._fleet is not None:
            reason = await self._fleet.aread(call.endpoint.key)
            if reason:
                return None if hedge else call.refused_isolated(reason)
        if hedge and not call.grants_hedge():
            if permit is not None:
                await breaker.arelease(permit)  # type: ignore[union-attr]
            return None
        return call.open_lane(permit, hedge)

    def _run(self, call: Call, lane: Lane) -> None:
        """Send ``lane``'s attempt in a task of its own (it copies the caller's context:
        the attempt's trace context, as it started)."""
        lane.task = asyncio.ensure_future(self._lane_io(call, lane))

    async def _lane_io(self, call: Call, lane: Lane) -> httpx.Response | Exception:
        try:
            return await self._exchange(call, lane.request, lane.limit, lane)
        except BaseException as exc:
            if not isinstance(exc, Exception) or isinstance(exc, self._flavor.TimeoutException):
                await self._cut_short()
            if isinstance(exc, Exception):
                return exc
            raise

    async def _give_back(self, call: Call, permit: Any, outcome: Any) -> None:
        """:meth:`SyncRace._give_back`, awaited."""
        if permit is not None:
            await call.breaker.arelease(permit)  # type: ignore[union-attr]
        if not isinstance(outcome, BaseException):
            await outcome.aclose()

    async def _record(self, call: Call, permit: Any, result: tuple[Any, float]) -> None:
        breaker = call.breaker
        if permit is not None and breaker is not None:
            if breaker.local:
                breaker.record(permit, *result)
            else:
                await breaker.arecord(permit, *result)

    async def _abandon(self, call: Call, lanes: list[Lane], reason: BaseException) -> None:
        """Cancel the race's other attempts and wait for them to let go of their
        connections; report them ended by ``reason``, their permits released.

        Raises ``CancelledError`` if the caller's own task was cancelled meanwhile: the
        ``CancelledError`` a loser's task ends with is the same exception, so it is
        told from the caller's by the task's pending cancellations, not by its type.
        """
        for lane in lanes:
            lane.task.cancel()
        caller = asyncio.current_task()
        asked = 0 if caller is None else caller.cancelling()
        for lane in lanes:
            try:
                outcome = await lane.task
            except BaseException:  # cancelled, as asked (or the caller: below)
                continue
            finally:
                await self._record(call, lane.permit, call.close_lane(lane, reason))
            if not isinstance(outcome, BaseException):
                await outcome.aclose()  # it answered as it was cancelled: not the winner
        if caller is not None and caller.cancelling() > asked:
            # Swallowed, the caller's asyncio.timeout() would not fire and a cancelled
            # task would go on with the winner's answer.
            raise asyncio.CancelledError
