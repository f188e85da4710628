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
guard past its limit it cancels the guard's task; leaving the guard turns that
cancellation into a timeout, as ``asyncio.timeout`` does (an outside cancellation
arriving at the same time still wins).

A guard is entered by :func:`guard_attempt` and left by :func:`leave`, in the
driver's own ``try``: the driver runs one per attempt, and a ``with`` statement's two
method frames and a guard object's ``__init__`` were most of its cost. Under trio,
where no asyncio loop runs, :class:`ScopeGuard` gives anyio's cancel scope the same
two steps.

A sync attempt has no task to cancel. Its limit is held by the network instead:
:func:`bound_attempts` wraps the inner transport's connection pool's network backend
(httpcore's, or httpcore2's) so that every connect, TLS handshake, read and write (and
the pause between the connects of an ``HTTPTransport(retries=N)``) waits at most until
the running attempt's end (:data:`ATTEMPT_END`, set by the sync driver for
the attempt's duration), and one that would start after it fails with the library's own
timeout at once. httpx's per-phase timeouts bound each socket operation; this bounds
their sum, so a server trickling the headers or the body a byte at a time cannot keep an
attempt past its limit. Outside an attempt (a streamed body the caller reads later,
another client sharing the transport) the wrapper passes every timeout through.
"""

from __future__ import annotations

import asyncio
import heapq
import sys
import time
import weakref
from contextvars import ContextVar
from typing import Any, TypeAlias

import anyio

__all__ = [
    "ATTEMPT_END",
    "AttemptBoundBackend",
    "Guard",
    "ScopeGuard",
    "Watchdog",
    "bound_attempts",
    "guard_attempt",
    "leave",
    "watchdog_for",
]

# Below this many entries the heap is never rebuilt: not worth it.
_COMPACT_MIN = 64

# The running task of a loop. On 3.11 asyncio.current_task is a Python function around
# this dict lookup: a frame per attempt. (Later versions implement it in C, and may
# keep the task elsewhere.)
_task_of = (
    asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]
    if sys.version_info < (3, 12)
    else asyncio.current_task
)

# A guard is a plain list - [when, order, task, cancelling, fired, watchdog] - rather
# than an object: built by one instruction, read and written by specialised ones (a
# list subclass or a class with __init__ cost a guard ~3,000 CPU instructions more),
# and ordered in the heap by limit, then arrival, never comparing the rest.
Guard: TypeAlias = list[Any]
_WHEN, _ORDER, _TASK, _CANCELLING, _FIRED, _WATCHDOG = range(6)


def leave(guard: Guard | ScopeGuard, error: BaseException | None) -> bool:
    """Leave a guarded block, which raised ``error`` (``None``: it ended normally).

    True if the guard's limit cut the block short: ``error`` is then the guard's own
    cancellation, taken back, and the caller raises a timeout in its place.
    """
    if type(guard) is not list:
        return guard.leave(error)  # type: ignore[union-attr]
    task = guard[_TASK]
    guard[_TASK] = None  # a done guard in the heap must not pin its task
    if not guard[_FIRED]:
        guard[_WATCHDOG].dead += 1  # still in the heap; the timer or a rebuild drops it
        return False
    return (
        task is not None
        and task.uncancel() <= guard[_CANCELLING]
        and type(error) is asyncio.CancelledError
    )


class ScopeGuard:
    """Under trio (no asyncio loop runs): anyio's cancel scope, entered when made and
    left with :func:`leave`, as a guard is."""

    __slots__ = ("_scope",)

    def __init__(self, limit: float) -> None:
        self._scope = anyio.CancelScope(deadline=anyio.current_time() + limit)
        self._scope.__enter__()

    def leave(self, error: BaseException | None) -> bool:
        """As :func:`leave`: True if the scope's deadline cut the block short."""
        if error is None:
            self._scope.__exit__(None, None, None)
            return False
        # The scope swallows only its own cancellation, which never reaches the caller.
        return bool(self._scope.__exit__(type(error), error, error.__traceback__))


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
        self._heap: list[Guard] = []
        # Ties on the limit are broken by arrival, never by comparing guards. (An int
        # bumped in place: next() on an itertools.count is a C call per attempt.)
        self._order = 0
        self._timer: weakref.ref[asyncio.TimerHandle] | None = None
        self._armed_at = float("inf")
        self.dead = 0  # guards left but still in the heap

    def guard(self, limit: float) -> Guard:
        """A guard, entered, that cancels the current task ``limit`` seconds from now."""
        guard = guard_attempt(limit, self)
        assert type(guard) is list  # a watchdog's own, never anyio's
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
        self._heap = [guard for guard in self._heap if guard[_TASK] is not None]
        heapq.heapify(self._heap)
        self.dead = 0

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = float("inf")
        loop = self._loop()
        heap, now = self._heap, loop.time()
        while heap:
            guard = heap[0]
            if guard[_TASK] is None:
                heapq.heappop(heap)
                self.dead -= 1
            elif guard[_WHEN] <= now:  # live (not left), past its limit
                heapq.heappop(heap)
                guard[_FIRED] = True
                guard[_TASK].cancel()
            else:
                self._arm(loop, guard[_WHEN])
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


# The watchdog used last, to skip the registry: one loop at a time is the common case.
# (A watchdog holds its loop weakly: this pins no loop, but a guard left in its heap by
# an attempt abandoned with its loop still holds that attempt's task, as the registry's
# copy of the watchdog does.)
_last: Watchdog | None = None


def guard_attempt(limit: float, watchdog: Watchdog | None = None) -> Guard | ScopeGuard:
    """A guard, entered, that ends the running task's block ``limit`` seconds from now:
    the running asyncio loop's watchdog, or anyio's cancel scope where none runs (trio).

    ``watchdog``: guard with this one instead (:meth:`Watchdog.guard`).
    """
    global _last
    if watchdog is None:
        loop = asyncio._get_running_loop()
        if loop is None:
            return ScopeGuard(limit)
        watchdog = _last
        # (Asked after the loop: a gone loop's watchdog answers None here too.)
        if watchdog is None or watchdog._loop_ref() is not loop:
            watchdog = _last = watchdog_for(loop)
    else:
        loop = watchdog._loop()
    # The guard is entered here, not in a Watchdog method: a frame less per attempt.
    task = _task_of(loop)
    if task is None:
        raise RuntimeError("an attempt limit needs a running task")
    monotonic = watchdog._monotonic
    when = (loop.time() if monotonic is None else monotonic()) + limit
    watchdog._order = order = watchdog._order + 1
    guard = [when, order, task, task.cancelling(), False, watchdog]
    heap = watchdog._heap
    heapq.heappush(heap, guard)
    if when < watchdog._armed_at:
        watchdog._arm(loop, when)
    if watchdog.dead > _COMPACT_MIN and watchdog.dead * 2 > len(heap):
        watchdog._compact()
    return guard


# --- sync attempts: a limit held by the network backend -------------------------------

ATTEMPT_END: ContextVar[float | None] = ContextVar("resilient_client.attempt_end", default=None)
"""When the running sync attempt must end, in ``time.monotonic()`` seconds (None: no
attempt runs, or it has no limit)."""


def _left(timeout: float | None) -> float | None:
    """``timeout`` cut to what the running attempt has left; raises ``_Expired`` when
    nothing is."""
    end = ATTEMPT_END.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise _Expired
    return left if timeout is None or left < timeout else timeout


class _Expired(Exception):
    """The running attempt's end has passed (mapped to the library's own timeout)."""


class _BoundStream:
    """A network stream whose every operation ends by the running attempt's end."""

    __slots__ = ("_errors", "_stream")

    def __init__(self, stream: Any, errors: Any) -> None:
        self._stream = stream
        self._errors = errors  # the httpcore (or httpcore2) module

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            timeout = _left(timeout)
        except _Expired:
            raise self._errors.ReadTimeout("the attempt's limit passed") from None
        return self._stream.read(max_bytes, timeout)  # type: ignore[no-any-return]

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            timeout = _left(timeout)
        except _Expired:
            raise self._errors.WriteTimeout("the attempt's limit passed") from None
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> _BoundStream:
        try:
            timeout = _left(timeout)
        except _Expired:
            raise self._errors.ConnectTimeout("the attempt's limit passed") from None
        return _BoundStream(
            self._stream.start_tls(ssl_context, server_hostname, timeout), self._errors
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class AttemptBoundBackend:
    """A sync network backend whose streams end every operation by the running attempt's
    end (see the module docstring); ``backend`` does the I/O."""

    __slots__ = ("_backend", "_errors")

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._errors = sys.modules[type(backend).__module__.partition(".")[0]]

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> _BoundStream:
        try:
            timeout = _left(timeout)
        except _Expired:
            raise self._errors.ConnectTimeout("the attempt's limit passed") from None
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _BoundStream(stream, self._errors)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> _BoundStream:
        try:
            timeout = _left(timeout)
        except _Expired:
            raise self._errors.ConnectTimeout("the attempt's limit passed") from None
        stream = self._backend.connect_unix_socket(path, timeout, socket_options)
        return _BoundStream(stream, self._errors)

    def sleep(self, seconds: float) -> None:
        # httpcore sleeps here between the connects of an HTTPTransport(retries=N), up to
        # seconds each: cut to the attempt's end, or each connect after it fails at once
        # but the sleeps before them still hold the call past its deadline.
        try:
            left = _left(seconds)
        except _Expired:
            return
        self._backend.sleep(seconds if left is None else left)


def bound_attempts(transport: Any) -> bool:
    """Make a sync inner transport's connections hold each attempt's end, if it is an
    ``httpx.HTTPTransport`` (of either library, proxied or not) or an httpcore pool: its
    pool's network backend is wrapped in :class:`AttemptBoundBackend` (once; connections
    made from then on use it). True if the transport holds attempt ends now; False for
    any other transport (its own timeouts are all that bound an attempt)."""
    pool = getattr(transport, "_pool", transport)
    backend = getattr(pool, "_network_backend", None)
    if backend is None or not hasattr(backend, "connect_tcp"):
        return False
    if not isinstance(backend, AttemptBoundBackend):
        if type(backend).__module__.partition(".")[0] not in ("httpcore", "httpcore2"):
            return False
        pool._network_backend = AttemptBoundBackend(backend)
    return True
