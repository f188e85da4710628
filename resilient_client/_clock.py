"""The only place that reads time, sleeps, or draws random numbers.

Everything else receives a :class:`Clock` (and, for waits, the clock's sleepers), so
tests advance a :class:`resilient_client.testing.FakeClock` instead of sleeping.

Two time scales are kept apart on purpose: ``monotonic()`` for every duration and
deadline (it never jumps), ``wall()`` only to turn an HTTP-date ``Retry-After`` into a
delay.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock", "SYSTEM_CLOCK"]


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


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time`, real sleeps."""

    __slots__ = ("monotonic", "random", "wall")

    def __init__(self, rng: random.Random | None = None) -> None:
        # The builtins themselves rather than methods calling them: the pipeline reads
        # the clock several times per call, and a Python-level wrapper doubles the cost.
        self.monotonic: Callable[[], float] = time.monotonic
        self.wall: Callable[[], float] = time.time
        self.random: Callable[[], float] = (rng or random.Random()).random

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        # anyio, not asyncio: httpx's async client runs under trio as well.
        await anyio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()
