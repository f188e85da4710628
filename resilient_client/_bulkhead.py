"""The bulkhead: at most ``max_concurrent`` calls of one endpoint in flight.

One slow endpoint must not take every connection and thread of the client with it. A
call takes a slot before anything else happens and gives it back when it ends; a call
that finds no slot waits up to ``max_wait`` seconds, in arrival order, and is otherwise
rejected (the pipeline raises :class:`resilient_client.BulkheadFull`).

The state is a plain counter and a FIFO of waiters guarded by one ``threading.Lock``; it
owns no event-loop object. Each waiter brings its own way of being woken: a thread waits
on a private lock, a task on an ``anyio.Event`` set through its own loop's thread-safe
scheduler. So one state serves threads and tasks at once, under asyncio or trio, and
outlives any event loop (``asyncio.run`` twice, a loop per thread). A freed slot is
handed straight to the first waiter, so a newcomer can never overtake a queue.

The per-call paths take the lock with ``acquire()``/``release()`` rather than ``with``:
on CPython 3.11 a lock's ``__exit__`` packs its arguments into a fresh tuple, which
made ``with`` cost about twice as much (≈430 vs ≈230 ns measured).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import anyio
from pydantic import BaseModel, ConfigDict, Field

from ._clock import SYSTEM_CLOCK, Clock, renew_after_fork
from ._logging import Episodes

__all__ = ["Bulkhead", "BulkheadSnapshot", "BulkheadState"]

# A rejection this long after the previous one starts a new episode (one log line).
_EPISODE_GAP = 10.0

_WAITING, _GRANTED, _ABANDONED = 0, 1, 2

_Handle = TypeVar("_Handle")  # what a waiter waits on: a locked lock, or an event


class Bulkhead(BaseModel):
    """Cap the calls of one endpoint that are in flight at the same time.

    Args:
        max_concurrent: calls in flight at most, ``>= 1``. Default 16.
        max_wait: seconds a call may wait for a free slot, ``>= 0``; 0 (the default)
            rejects at once when every slot is taken. The call's deadline still
            applies to the wait.

    Raises:
        pydantic.ValidationError: a value out of range, naming the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_concurrent: int = Field(default=16, ge=1)
    max_wait: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class BulkheadSnapshot:
    """The bulkhead's counters at one instant."""

    max_concurrent: int
    in_flight: int
    waiting: int
    acquired_total: int
    rejected_total: int


class _Waiter:
    __slots__ = ("state", "wake")

    def __init__(self, wake: Callable[[], object]) -> None:
        self.state = _WAITING
        self.wake = wake


class BulkheadState:
    """One endpoint's slots, shared by every call of that endpoint.

    Use :meth:`acquire` from threads or :meth:`aacquire` from tasks; on ``True`` the
    caller owns a slot and must :meth:`release` it exactly once (``try``/``finally``).
    ``clock`` only dates rejections, to tell a new episode from an ongoing one.
    """

    __slots__ = (
        "__weakref__",
        "_acquired_total",
        "_episodes",
        "_in_flight",
        "_lock",
        "_max",
        "_now",
        "_rejected_total",
        "_waiters",
        "policy",
    )

    def __init__(self, policy: Bulkhead, clock: Clock = SYSTEM_CLOCK) -> None:
        self.policy = policy
        self._max = policy.max_concurrent
        self._now = clock.monotonic
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._in_flight = 0
        # Invariant: a waiter is queued only while every slot is taken, and every
        # queued waiter is _WAITING (abandoned ones are removed at once).
        self._waiters: deque[_Waiter] = deque()
        self._acquired_total = 0
        self._rejected_total = 0
        self._episodes = Episodes(_EPISODE_GAP)

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock, and no slot held: the calls that held them,
        and the waiters queued, are the parent's threads'."""
        self._lock = threading.Lock()
        self._in_flight = 0
        self._waiters = deque()

    @property
    def in_flight(self) -> int:
        """Slots currently held."""
        return self._in_flight

    @property
    def rejected_total(self) -> int:
        """Calls that found no slot in time, since the state was created."""
        return self._rejected_total

    def acquire(self, timeout: float) -> bool:
        """Take a slot, blocking the thread up to ``timeout`` seconds for one.

        ``timeout <= 0`` tries once without waiting; ``math.inf`` waits as long as it
        takes. Returns ``False`` (counted as a rejection) if no slot came in time.
        """
        entered = self._enter(timeout, _thread_waker)
        if isinstance(entered, bool):  # a slot at once, or refused at once
            return entered
        waiter, gate = entered
        try:
            gate.acquire(timeout=-1 if timeout > threading.TIMEOUT_MAX else timeout)
        except BaseException:  # KeyboardInterrupt while waiting must not leak a slot
            self._leave(waiter, cancelled=True)
            raise
        return self._leave(waiter, cancelled=False)

    # The timeout is the bulkhead's own wait (max_wait, cut to the deadline): a caller's
    # cancel scope could not tell "no slot in time" from "cancelled".
    async def aacquire(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Take a slot, suspending the task (never the loop) up to ``timeout`` seconds.

        Works under asyncio and trio. ``timeout <= 0`` tries once without waiting.
        Returns ``False`` (counted as a rejection) if no slot came in time. A task
        cancelled while waiting leaves no slot behind: one handed to it in the same
        instant is passed on to the next waiter.
        """
        entered = self._enter(timeout, _async_waker)
        if isinstance(entered, bool):  # a slot at once, or refused at once
            return entered
        waiter, event = entered
        try:
            with anyio.move_on_after(timeout):
                await event.wait()
        except BaseException:  # cancelled from outside
            self._leave(waiter, cancelled=True)
            raise
        return self._leave(waiter, cancelled=False)

    def release(self) -> None:
        """Give a slot back: to the first waiter if any, else to the pool.

        Raises:
            RuntimeError: more releases than successful acquires.
        """
        lock = self._lock
        while True:
            lock.acquire()
            try:
                if not self._waiters:
                    if self._in_flight <= 0:
                        raise RuntimeError("BulkheadState.release() without a slot held")
                    self._in_flight -= 1
                    return
                waiter = self._waiters.popleft()
                waiter.state = _GRANTED  # the slot changes hands; in_flight stays
                self._acquired_total += 1
            finally:
                lock.release()
            try:
                waiter.wake()
                return
            except Exception:
                # The waiter's event loop is closed, so it will never run again: the
                # slot goes to the next waiter instead of leaking.
                with self._lock:
                    waiter.state = _ABANDONED
                    self._acquired_total -= 1

    def take_refusal_notice(self, endpoint: str) -> str | None:
        """The one-line message for the start of a rejection episode, once, else ``None``.

        An episode starts with a rejection when none happened in the 10 s before it.
        Call this after an acquire returned ``False``: exactly one caller per episode
        gets the message, to log it.
        """
        if not self._episodes.pending:  # unlocked peek: the common answer costs no lock
            return None
        with self._lock:
            if not self._episodes.take():
                return None
            in_flight, waiting = self._in_flight, len(self._waiters)
        return (
            f"bulkhead full for endpoint {endpoint!r}: rejecting calls "
            f"({in_flight} of {self._max} slots in flight, {waiting} waiting, "
            f"max_wait {self.policy.max_wait:g}s)"
        )

    def snapshot(self) -> BulkheadSnapshot:
        """The counters now, for health checks and metrics."""
        with self._lock:
            return BulkheadSnapshot(
                max_concurrent=self._max,
                in_flight=self._in_flight,
                waiting=len(self._waiters),
                acquired_total=self._acquired_total,
                rejected_total=self._rejected_total,
            )

    # -- the steps both drivers share; they differ only in how a waiter waits -----------

    def _enter(
        self, timeout: float, waker: Callable[[], tuple[_Handle, Callable[[], object]]]
    ) -> bool | tuple[_Waiter, _Handle]:
        """A free slot (``True``), a refusal with no time to wait (``False``), or a place
        in the queue and the handle to wait on, made by ``waker`` (quick, non-blocking:
        the queue is joined in the same critical section that found every slot taken)."""
        lock = self._lock
        lock.acquire()  # not `with`: see the module docstring
        try:
            if self._in_flight < self._max:
                self._in_flight += 1
                self._acquired_total += 1
                return True
            if timeout <= 0:
                self._reject_locked()
                return False
            handle, wake = waker()
            waiter = _Waiter(wake)
            self._waiters.append(waiter)
            return waiter, handle
        finally:
            lock.release()

    def _leave(self, waiter: _Waiter, *, cancelled: bool) -> bool:
        """Stop waiting (woken, out of time, or ``cancelled``); ``True`` if the slot was
        handed over and the caller owns it.

        A wait that ran out counts as a rejection. A cancelled one does not, and keeps
        nothing: a slot handed to it in the same instant goes on to the next waiter.
        """
        with self._lock:
            if waiter.state == _WAITING:
                waiter.state = _ABANDONED
                self._waiters.remove(waiter)
                if not cancelled:
                    self._reject_locked()
                return False
            granted = waiter.state == _GRANTED
        if granted and cancelled:
            self.release()
            return False
        return granted

    def _reject_locked(self) -> None:
        self._rejected_total += 1
        self._episodes.refused(self._now())


def _thread_waker() -> tuple[threading.Lock, Callable[[], object]]:
    """A locked lock for the calling thread to wait on, and what opens it."""
    gate = threading.Lock()
    gate.acquire()
    return gate, gate.release


def _async_waker() -> tuple[anyio.Event, Callable[[], object]]:
    """An event for the current task and a thread-safe callable that sets it.

    The event is set on its own loop's thread whoever releases the slot: a thread, a
    task of this loop, or a task of another loop.
    """
    event = anyio.Event()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        trio = sys.modules.get("trio")
        if trio is None:
            raise RuntimeError("aacquire() needs a running asyncio or trio event loop") from None
        token = trio.lowlevel.current_trio_token()
        return event, partial(token.run_sync_soon, event.set)
    return event, partial(loop.call_soon_threadsafe, event.set)
