"""The only place that reads time, sleeps, or draws random numbers.

Everything else receives a :class:`Clock` (and, for waits, the clock's sleepers), so
tests advance a :class:`resilient_client.testing.FakeClock` instead of sleeping.

Two time scales are kept apart on purpose: ``monotonic()`` for every duration and
deadline (it never jumps), ``wall()`` only to turn an HTTP-date ``Retry-After`` into a
delay.

Two process-wide switches serve the test kit (``resilient_client.testing`` and the pytest
plugin), both set and restored by context managers:

- :func:`default_clock` is the clock a pipeline built without ``clock=`` takes;
  :func:`clock_override` replaces it for a block (the ``rc_clock`` fixture).
- :func:`skipping_waits` makes every wait of the built-in clocks return at once and be
  recorded in a :class:`Waits` (``testing.no_waits()`` / ``set_testing(True)``). A
  :class:`Clock` of one's own honours it by asking :func:`skip_wait` first.

Both are process-wide on purpose, like stamina's ``set_testing``: a client built in a
test may run its calls on any thread or event loop, and a context variable would not
follow it there.

``fork()``: a child starts with one thread, but with every lock as some other thread of
its parent held it at that instant, and with its parent's random state. Every object
holding a lock or a random generator registers with :func:`renew_after_fork`; in the
child, each one's ``_after_fork()`` gives it fresh locks (and drops what it cannot share
with its parent), and the clock's own generators are reseeded from the OS, so a child
does not draw its parent's jitter.
"""

from __future__ import annotations

import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import anyio
from anyio.lowlevel import checkpoint

__all__ = [
    "SERVER_CLOCK",
    "SYSTEM_CLOCK",
    "Clock",
    "ServerClock",
    "SystemClock",
    "Waits",
    "active_waits",
    "clock_override",
    "default_clock",
    "renew_after_fork",
    "set_skipping",
    "skip_wait",
    "skipping_waits",
]


@runtime_checkable
class Clock(Protocol):
    """Time, sleeping and randomness as one injectable object."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def wall(self) -> float:
        """Seconds since the Unix epoch (for HTTP-dates only)."""

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""

    def random(self) -> float:
        """A float uniformly drawn from ``[0.0, 1.0)``."""


# --- testing mode: waits skipped and recorded ----------------------------------------


class Waits:
    """The waits skipped while testing mode is on, in order.

    ``delays`` holds each wait's requested length in seconds (backoff and Retry-After
    waits, as the pipeline asked its clock for them); ``total`` is their sum.
    """

    __slots__ = ("_lock", "delays")

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._lock = threading.Lock()

    @property
    def total(self) -> float:
        """Seconds that would have been waited, all waits together."""
        return sum(self.delays)

    def __len__(self) -> int:
        return len(self.delays)

    def __repr__(self) -> str:
        return f"Waits(delays={self.delays!r})"

    def _record(self, seconds: float) -> None:
        with self._lock:
            self.delays.append(seconds)


_waits: Waits | None = None


def active_waits() -> Waits | None:
    """The record of the testing mode in force, or None when waits are real."""
    return _waits


def skip_wait(seconds: float) -> bool:
    """True when testing mode is on: the wait is recorded and must not happen.

    Every :class:`Clock` sleeper asks this first (the built-in clocks do); ``seconds``
    is recorded as asked, negative values included, so a test sees what was decided.
    """
    waits = _waits
    if waits is None:
        return False
    waits._record(seconds)
    return True


@contextmanager
def skipping_waits(waits: Waits | None) -> Iterator[Waits | None]:
    """Within the block, record waits in ``waits`` instead of waiting (None: wait for
    real); the previous mode is restored on exit, so blocks nest."""
    global _waits
    previous, _waits = _waits, waits
    try:
        yield waits
    finally:
        _waits = previous


def set_skipping(waits: Waits | None) -> None:
    """Switch testing mode until switched again (``testing.set_testing``)."""
    global _waits
    _waits = waits


# --- the real clock --------------------------------------------------------------------


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time`, real sleeps.

    ``rng``: the random generator (default: a fresh one, reseeded from the OS in a forked
    child; one given is left as it is).
    """

    __slots__ = ("__weakref__", "_own", "monotonic", "random", "wall")

    def __init__(self, rng: random.Random | None = None) -> None:
        # The builtins themselves rather than methods calling them: the pipeline reads
        # the clock several times per call, and a Python-level wrapper doubles the cost.
        self.monotonic: Callable[[], float] = time.monotonic
        self.wall: Callable[[], float] = time.time
        self._own = random.Random() if rng is None else None
        self.random: Callable[[], float] = (rng or self._own).random  # type: ignore[union-attr]
        if self._own is not None:
            renew_after_fork(self)

    def _after_fork(self) -> None:
        if self._own is not None:
            self._own.seed()  # from os.urandom: the child's own jitter

    def sleep(self, seconds: float) -> None:
        if skip_wait(seconds):
            return
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        if skip_wait(seconds):
            # Still a checkpoint, as a real wait is: a skipped wait must not turn a
            # retry loop into one that never lets other tasks run or be cancelled.
            await checkpoint()
            return
        # anyio, not asyncio: httpx's async client runs under trio as well.
        await anyio.sleep(max(0.0, seconds))


class ServerClock(SystemClock):
    """The real clock, its waits real in testing mode too: the chaos upstream's. Its
    stalls and delays stand for a provider's time, not for the pipeline's waits, so
    testing mode neither skips them nor records them among the pipeline's."""

    __slots__ = ()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


# --- fork ------------------------------------------------------------------------------

_RENEWED: weakref.WeakSet[Any] = weakref.WeakSet()


def renew_after_fork(owner: Any) -> None:
    """Call ``owner._after_fork()`` in every child this process forks (held weakly: an
    owner gone is forgotten). ``_after_fork`` runs in the child's only thread, before
    anything else: it replaces locks (a lock another thread of the parent held stays
    locked forever in the child) and drops what must not be shared (connections)."""
    _RENEWED.add(owner)


def _renew_all() -> None:
    for owner in list(_RENEWED):
        owner._after_fork()


if hasattr(os, "register_at_fork"):  # where processes fork (not on Windows)
    os.register_at_fork(after_in_child=_renew_all)


SYSTEM_CLOCK = SystemClock()
SERVER_CLOCK = ServerClock()


# --- the default clock -----------------------------------------------------------------

_override: Clock | None = None


def default_clock() -> Clock:
    """The clock a pipeline uses when given none: :data:`SYSTEM_CLOCK`, unless a test
    replaced it with :func:`clock_override` (the ``rc_clock`` fixture does)."""
    override = _override
    return SYSTEM_CLOCK if override is None else override


@contextmanager
def clock_override(clock: Clock) -> Iterator[Clock]:
    """Within the block, :func:`default_clock` returns ``clock``; the previous default is
    restored on exit. Pipelines built in the block keep ``clock`` for their lifetime.

    Raises ``TypeError`` when ``clock`` is not a :class:`Clock`.
    """
    global _override
    if not isinstance(clock, Clock):
        raise TypeError(f"clock must be a resilient_client Clock, not {type(clock).__name__}")
    previous, _override = _override, clock
    try:
        yield clock
    finally:
        _override = previous
