"""The test kit: what integrators need to test their own code against the pipeline.

- :class:`FakeClock`: time that moves only when told to (or when the pipeline sleeps),
  so backoff, deadlines and breaker timeouts are tested without waiting.
- :class:`ScriptedTransport`: an ``httpx.MockTransport`` that answers from a script of
  responses and exceptions, one per attempt, and records what it was sent.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import httpx

__all__ = ["FakeClock", "ScriptedTransport"]


class FakeClock:
    """A :class:`~resilient_client._clock.Clock` whose time only moves when told to.

    ``sleep()``/``asleep()`` advance the time at once and record the delay in
    ``sleeps``; ``random()`` draws from a ``random.Random(seed)`` (or returns ``fixed``
    when given, to pin jitter in tests). ``wall()`` is ``start_wall`` plus the time
    advanced.
    """

    def __init__(
        self,
        *,
        start: float = 1000.0,
        start_wall: float = 1_700_000_000.0,
        seed: int = 0,
        fixed: float | None = None,
    ) -> None:
        if fixed is not None and not 0.0 <= fixed < 1.0:
            raise ValueError(f"fixed must be in [0, 1), got {fixed!r}")
        self._now = start
        self._wall_offset = start_wall - start
        self._random = random.Random(seed)
        self._fixed = fixed
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def random(self) -> float:
        return self._fixed if self._fixed is not None else self._random.random()


Step = httpx.Response | Exception | int


class ScriptedTransport(httpx.MockTransport):
    """Answers attempt ``n`` with ``script[n]``: a response, a status code, or an exception.

    An exception is raised with the request attached; past the end of the script it
    answers 200. ``requests`` holds every request sent, in order. ``clock`` (optional)
    advances by ``latency`` seconds per attempt, to test deadlines without waiting.
    """

    def __init__(
        self,
        script: Iterable[Step] = (),
        *,
        clock: FakeClock | None = None,
        latency: float = 0.0,
    ) -> None:
        self._script = list(script)
        self._clock = clock
        self._latency = latency
        self.requests: list[httpx.Request] = []
        super().__init__(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        index = len(self.requests)
        # Keep a copy: the pipeline reuses one request object for every attempt.
        try:
            content: bytes | None = request.content
        except httpx.RequestNotRead:
            content = None  # a one-shot stream: keep what can be kept
        self.requests.append(
            httpx.Request(
                request.method,
                request.url,
                headers=request.headers.copy(),
                content=content,
                extensions=dict(request.extensions),
            )
        )
        if self._clock is not None and self._latency:
            self._clock.advance(self._latency)
        step: Any = self._script[index] if index < len(self._script) else 200
        if isinstance(step, Exception):
            if isinstance(step, httpx.RequestError):
                step.request = request
            raise step
        if isinstance(step, int):
            return httpx.Response(step, request=request)
        assert isinstance(step, httpx.Response), f"not a script step: {step!r}"
        return step
