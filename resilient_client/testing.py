"""The test kit: what integrators need to test their own code against the pipeline.

- :class:`FakeClock`: time that moves only when told to (or when the pipeline sleeps),
  so backoff, deadlines and breaker timeouts are tested without waiting.
- :class:`ScriptedTransport`: an ``httpx.MockTransport`` that answers from a script of
  responses and exceptions, one per attempt, and records what it was sent;
  :func:`scripted_transport` builds one for httpx or httpx2.
- :func:`no_waits` / :func:`set_testing`: testing mode, in which every wait the pipeline
  makes through its clock (backoff, Retry-After) is skipped and recorded. Retries,
  budgets and breakers decide exactly as they would otherwise.
- The pytest plugin (``resilient_client.pytest_plugin``, registered on install) wraps
  these as the fixtures ``rc_clock``, ``rc_no_waits``, ``rc_scripted`` and ``rc_chaos``.
"""

from __future__ import annotations

import importlib
import math
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpx

from ._clock import Waits, active_waits, set_skipping, skip_wait, skipping_waits

__all__ = [
    "FakeClock",
    "ScriptedTransport",
    "Waits",
    "no_waits",
    "scripted_transport",
    "set_testing",
]


@contextmanager
def no_waits() -> Iterator[Waits]:
    """Testing mode for the block: every wait is skipped and its length recorded.

    Yields the :class:`Waits` record (``waits.delays``: seconds, in order). It covers
    every pipeline in the process, sync, asyncio or trio, on the system clock as on a
    :class:`FakeClock` (whose time then does not move for the skipped wait). Retries,
    deadlines checks, budgets and breakers are otherwise unchanged. Blocks nest; the mode
    in force before is restored on exit.
    """
    with skipping_waits(Waits()) as waits:
        assert waits is not None
        yield waits


def set_testing(testing: bool) -> Waits | None:
    """Switch testing mode on (``True``) or off (``False``) until switched again, as
    stamina's ``set_testing`` does; prefer :func:`no_waits`, which restores the mode.

    Returns the :class:`Waits` record now in force (a fresh one when switched on; the
    current one when already on), or None when switched off.
    """
    if not testing:
        set_skipping(None)
        return None
    waits = active_waits()
    if waits is None:
        waits = Waits()
        set_skipping(waits)
    return waits


class FakeClock:
    """A :class:`~resilient_client._clock.Clock` whose time only moves when told to.

    ``sleep()``/``asleep()`` advance the time at once and record the delay in
    ``sleeps`` (in testing mode, :func:`no_waits`, a wait is skipped instead: recorded
    there, and the time does not move); ``random()`` draws from a
    ``random.Random(seed)`` (or returns ``fixed`` when given, to pin jitter in tests).
    ``wall()`` is ``start_wall`` plus the time advanced.
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
        # (nan passed "seconds < 0" and made every later reading nan: deadlines never
        # passed, waits never ended)
        if not 0 <= seconds < math.inf:
            if seconds < 0:
                raise ValueError("a clock cannot go backwards")
            raise ValueError(f"a clock advances by a finite number of seconds, not {seconds!r}")
        self._now += seconds

    def sleep(self, seconds: float) -> None:
        if skip_wait(seconds):
            return
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def random(self) -> float:
        return self._fixed if self._fixed is not None else self._random.random()


Step = httpx.Response | Exception | int
"""One script step: a response, a status code (answered with an empty body), or an
exception (raised). For httpx2, its own ``Response`` and exceptions."""


class _Script:
    """What both libraries' scripted transports do; ``_lib`` is the library module."""

    _lib: Any = httpx

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
        self.requests: list[Any] = []
        super().__init__(self._answer)  # type: ignore[call-arg]  # the MockTransport's

    def _answer(self, request: Any) -> Any:
        lib = self._lib
        index = len(self.requests)
        # Keep a copy: the pipeline reuses one request object for every attempt.
        try:
            content: bytes | None = request.content
        except lib.RequestNotRead:
            content = None  # a one-shot stream: keep what can be kept
        self.requests.append(
            lib.Request(
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
            if isinstance(step, lib.RequestError):
                step.request = request
            raise step
        if isinstance(step, int):
            return lib.Response(step, request=request)
        assert isinstance(step, lib.Response), f"not a script step: {step!r}"
        return step


class ScriptedTransport(_Script, httpx.MockTransport):
    """Answers attempt ``n`` with ``script[n]``: a response, a status code, or an exception.

    An exception is raised with the request attached; past the end of the script it
    answers 200. ``requests`` holds every request sent, in order. ``clock`` (optional)
    advances by ``latency`` seconds per attempt, to test deadlines without waiting.
    For httpx2 clients, see :func:`scripted_transport`.
    """

    requests: list[httpx.Request]


_httpx2_class: type[_Script] | None = None


def scripted_transport(
    script: Iterable[Step] = (),
    *,
    library: Literal["httpx", "httpx2"] = "httpx",
    clock: FakeClock | None = None,
    latency: float = 0.0,
) -> Any:
    """A :class:`ScriptedTransport` for ``library``: for ``"httpx2"`` an
    ``httpx2.MockTransport`` doing the same (script steps then are httpx2's responses
    and exceptions). Arguments as :class:`ScriptedTransport`'s.

    Raises ``ValueError`` for another library, ``ImportError`` when httpx2 is missing.
    """
    global _httpx2_class
    if library == "httpx":
        return ScriptedTransport(script, clock=clock, latency=latency)
    if library != "httpx2":
        raise ValueError(f"library must be 'httpx' or 'httpx2', got {library!r}")
    if _httpx2_class is None:
        # Built on first use: importing the test kit never imports httpx2.
        httpx2 = importlib.import_module("httpx2")
        _httpx2_class = type(
            "ScriptedTransport",
            (_Script, httpx2.MockTransport),
            {"_lib": httpx2, "__module__": __name__, "__doc__": ScriptedTransport.__doc__},
        )
    return _httpx2_class(script, clock=clock, latency=latency)
