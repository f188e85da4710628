"""One timer per event loop for every async attempt's limit, instead of one per attempt.

Each async attempt must end when its cap (or the call's deadline) is reached, even if
the server trickles bytes just fast enough to defeat httpx's per-read timeouts. That
takes a cancel scope per attempt. ``asyncio.timeout`` is one, but it costs a Timeout
object, two coroutines and a loop timer per attempt - about 5 % of a whole httpx call
over a fast transport, paid by every call although almost none ever times out.

:class:`Watchdog` keeps every guarded attempt of one loop in a heap and arms a single
loop timer at the earliest live limit. Entering a guard is a heap push; leaving it marks
it done. Guards left behind are dropped when the timer passes them, and the heap is
rebuilt when they outnumber the live ones (the same scheme asyncio uses for cancelled
timers), so memory follows the number of attempts in flight. When the timer finds a live
guard past its limit it cancels the guard's task; the guard turns that cancellation
into ``TimeoutError`` on the way out, as ``asyncio.timeout`` does (an outside
cancellation arriving at the same time still wins).

asyncio only: under trio the driver keeps anyio's cancel scope.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import weakref
from types import TracebackType

__all__ = ["Guard", "Watchdog", "watchdog_for"]

# Below this many entries the heap is never rebuilt: not worth it.
_COMPACT_MIN = 64


class Guard:
    """One attempt's limit: a sync context manager, usable inside a coroutine."""

    __slots__ = ("_cancelling", "_task", "_watchdog", "fired", "when")

    def __init__(self, watchdog: Watchdog, task: asyncio.Task[object], when: float) -> None:
        self._watchdog = watchdog
        self._task: asyncio.Task[object] | None = task
        self._cancelling = task.cancelling()
        self.when = when
        self.fired = False

    @property
    def done(self) -> bool:
        """Whether the guarded block has been left."""
        return self._task is None

    def __enter__(self) -> Guard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None  # a done guard in the heap must not pin its loop
        if not self.fired:
            self._watchdog.dead += 1  # still in the heap; the timer or a rebuild drops it
        elif (
            task is not None
            and task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc

    def expire(self) -> None:
        """Called by the watchdog's timer, the guard already out of its heap."""
        self.fired = True
        if self._task is not None:
            self._task.cancel()


class Watchdog:
    """Every live :class:`Guard` of one event loop, and the one timer that enforces them."""

    __slots__ = (
        "_armed_at",
        "_heap",
        "_loop_ref",
        "_monotonic",
        "_order",
        "_timer",
        "dead",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: the registry below maps loops to watchdogs weakly, and a strong
        # reference back from the value would keep every loop alive forever.
        self._loop_ref = weakref.ref(loop)
        # asyncio's own loops tell time.monotonic(): call it directly, a frame less.
        standard = getattr(type(loop), "time", None) is asyncio.BaseEventLoop.time
        self._monotonic = time.monotonic if standard else None
        self._heap: list[tuple[float, int, Guard]] = []
        # Ties on the limit are broken by arrival, never by comparing guards.
        self._order = itertools.count()
        self._timer: weakref.ref[asyncio.TimerHandle] | None = None
        self._armed_at = float("inf")
        self.dead = 0  # guards left but still in the heap

    def guard(self, limit: float, loop: asyncio.AbstractEventLoop | None = None) -> Guard:
        """A guard that cancels the current task ``limit`` seconds from now.

        ``loop``: this watchdog's loop, when the caller has it at hand.
        """
        if loop is None:
            loop = self._loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("an attempt limit needs a running task")
        monotonic = self._monotonic
        when = (loop.time() if monotonic is None else monotonic()) + limit
        guard = Guard(self, task, when)
        heapq.heappush(self._heap, (when, next(self._order), guard))
        if when < self._armed_at:
            self._arm(loop, when)
        if self.dead > _COMPACT_MIN and self.dead * 2 > len(self._heap):
            self._compact()
        return guard

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop_ref()
        if loop is None:
            raise RuntimeError("the watchdog's event loop is gone")
        return loop

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        timer = None if self._timer is None else self._timer()
        if timer is not None:
            timer.cancel()
        self._armed_at = when
        # Weakly, as the loop: the loop holds its scheduled timers, and a timer holds
        # its loop.
        self._timer = weakref.ref(loop.call_at(when, self._fire))

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if not entry[2].done]
        heapq.heapify(self._heap)
        self.dead = 0

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = float("inf")
        loop = self._loop()
        heap, now = self._heap, loop.time()
        while heap:
            when, _, guard = heap[0]
            if guard.done:
                heapq.heappop(heap)
                self.dead -= 1
            elif when <= now:
                heapq.heappop(heap)
                guard.expire()
            else:
                self._arm(loop, when)
                break


_WATCHDOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = (
    weakref.WeakKeyDictionary()
)


def watchdog_for(loop: asyncio.AbstractEventLoop) -> Watchdog:
    """The loop's watchdog, made on first use and gone with the loop."""
    watchdog = _WATCHDOGS.get(loop)
    if watchdog is None:
        watchdog = _WATCHDOGS[loop] = Watchdog(loop)
    return watchdog
