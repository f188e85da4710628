"""The scenarios: an offered load over time and a provider model answering each attempt.

Everything here runs on trio's virtual clock (``trio.testing.MockClock`` with
``autojump_threshold=0``: time jumps to the next timer whenever every task waits), so a
minute of provider time costs only the CPU its events take. Randomness comes from one
``random.Random`` per run, seeded, so every library meets the same arrivals.

Provider models (``Provider.answer``), all answering at ``base latency`` (20 ms plus an
exponential tail of mean 10 ms) unless said otherwise:

- ``random``: each attempt answers 503 with probability ``failure_rate``.
- ``outage``: every attempt inside ``[start, end)`` answers 503 at once (1 ms).
- ``failfast``: capacity ``C`` calls/s as a token bucket (0.25 s of burst); an attempt that
  finds no token answers 503 at once - the provider sheds load and keeps serving ``C``.
- ``queueing``: one FIFO queue served at exactly ``C`` attempts/s; an attempt waits its
  turn, and the provider does the work even when the client has long given up (the
  metastable case: work spent on requests nobody waits for). When ``queue_limit``
  seconds of work are already queued it answers 503 at once (a full backlog).
- ``slowtail``: with probability ``slow_share`` an attempt stalls for ``slow_latency``
  seconds (past every client's timeout), otherwise base latency.
- ``ratelimit``: inside ``[start, end)`` a token bucket of ``limit`` calls/s; beyond it,
  429 with ``Retry-After: <retry_after>`` at once.

An attempt outlasting the client's read timeout (``request.extensions["timeout"]``, as
httpcore honours it on a real socket) raises ``httpx.ReadTimeout`` after that timeout.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import httpx
import trio

__all__ = ["Provider", "Scenario", "SCENARIOS", "arrivals"]

Kind = Literal["random", "outage", "failfast", "queueing", "slowtail", "ratelimit"]

BASE_LATENCY = 0.020
TAIL_MEAN = 0.010
REJECT_LATENCY = 0.001
BURST = 0.25
"""Seconds of capacity a token bucket holds (a server's concurrency absorbs bursts)."""


@dataclass(frozen=True)
class Scenario:
    """One scenario: the load (``phases``), the provider model, and the focus window.

    ``phases``: ``(until_s, calls_per_s)`` pieces of a Poisson load, in order.
    ``focus``: the disturbance ``[start, end)`` in seconds the table's columns describe
    (None: the whole run); recovery is measured from its end.
    """

    name: str
    title: str
    kind: Kind
    phases: tuple[tuple[float, float], ...]
    focus: tuple[float, float] | None = None
    failure_rate: float = 0.0
    capacity: float = 200.0
    queue_limit: float = 10.0
    slow_share: float = 0.0
    slow_latency: float = 30.0
    limit: float = 50.0
    retry_after: float = 1.0

    @property
    def duration(self) -> float:
        return self.phases[-1][0]


def _spike(name: str, title: str, kind: Kind) -> Scenario:
    c = 200.0
    return Scenario(
        name,
        title,
        kind,
        ((10.0, 0.8 * c), (30.0, 1.5 * c), (70.0, 0.8 * c)),
        focus=(10.0, 30.0),
        capacity=c,
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "random20", "random 20 % 503s at 100 calls/s", "random", ((30.0, 100.0),), failure_rate=0.2
    ),
    Scenario(
        "random50", "random 50 % 503s at 100 calls/s", "random", ((30.0, 100.0),), failure_rate=0.5
    ),
    Scenario(
        "outage",
        "full outage 10 s at 100 calls/s, then recovery",
        "outage",
        ((40.0, 100.0),),
        focus=(10.0, 20.0),
    ),
    _spike(
        "failfast", "overload spike 0.8C → 1.5C for 20 s → 0.8C, fail-fast provider", "failfast"
    ),
    _spike("queueing", "overload spike 0.8C → 1.5C for 20 s → 0.8C, queueing provider", "queueing"),
    Scenario(
        "slowtail",
        "slow tail: 2 % of attempts stall 30 s, 100 calls/s",
        "slowtail",
        ((30.0, 100.0),),
        slow_share=0.02,
    ),
    Scenario(
        "ratelimit",
        "429 storm: 10 s limited to 50 calls/s, Retry-After: 1",
        "ratelimit",
        ((40.0, 100.0),),
        focus=(10.0, 20.0),
    ),
)


def arrivals(scenario: Scenario, rng: random.Random) -> list[float]:
    """Call start times (seconds from 0) of a Poisson load following ``scenario.phases``."""
    times: list[float] = []
    start = 0.0
    for until, rate in scenario.phases:
        t = start
        while True:
            t += rng.expovariate(rate)
            if t >= until:
                break
            times.append(t)
        start = until
    return times


class Provider(httpx.AsyncBaseTransport):
    """The upstream, as the inner transport every client sends its attempts to.

    ``attempts`` holds each attempt's start (seconds since ``t0``), for amplification
    and the attempts-over-time plot.
    """

    def __init__(self, scenario: Scenario, rng: random.Random, t0: float) -> None:
        self.scenario = scenario
        self._rng = rng
        self._t0 = t0
        self.attempts: list[float] = []
        self._tokens = 0.0
        self._tokens_at = 0.0
        self._free_at = 0.0  # when the queueing provider's server is next idle

    def _take_token(self, now: float, rate: float) -> bool:
        burst = max(1.0, rate * BURST)
        self._tokens = min(burst, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _latency(self) -> float:
        return BASE_LATENCY + self._rng.expovariate(1.0 / TAIL_MEAN)

    def answer(self, now: float) -> tuple[float, int, dict[str, str]]:
        """The attempt's fate at ``now``: (seconds until it answers, status, headers)."""
        s = self.scenario
        inside = s.focus is not None and s.focus[0] <= now < s.focus[1]
        if s.kind == "random":
            status = 503 if self._rng.random() < s.failure_rate else 200
            return self._latency(), status, {}
        if s.kind == "outage":
            return (REJECT_LATENCY, 503, {}) if inside else (self._latency(), 200, {})
        if s.kind == "failfast":
            if self._take_token(now, s.capacity):
                return self._latency(), 200, {}
            return REJECT_LATENCY, 503, {}
        if s.kind == "queueing":
            if self._free_at - now > s.queue_limit:
                return REJECT_LATENCY, 503, {}
            self._free_at = max(now, self._free_at) + 1.0 / s.capacity
            return self._free_at - now + BASE_LATENCY, 200, {}
        if s.kind == "slowtail":
            if self._rng.random() < s.slow_share:
                return s.slow_latency, 200, {}
            return self._latency(), 200, {}
        # ratelimit
        if not inside or self._take_token(now, s.limit):
            return self._latency(), 200, {}
        return REJECT_LATENCY, 429, {"Retry-After": f"{s.retry_after:g}"}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        now = trio.current_time() - self._t0
        self.attempts.append(now)
        delay, status, headers = self.answer(now)
        timeouts = request.extensions.get("timeout") or {}
        limit = timeouts.get("read")
        if limit is not None and delay > limit:
            await trio.sleep(limit)
            raise httpx.ReadTimeout("read timed out", request=request)
        await trio.sleep(delay)
        return httpx.Response(status, headers=headers, request=request)


QUICK: tuple[Scenario, ...] = (
    Scenario(
        "random20",
        "random 20 % 503s at 100 calls/s (quick)",
        "random",
        ((10.0, 100.0),),
        failure_rate=0.2,
    ),
    Scenario(
        "outage",
        "full outage 5 s at 100 calls/s, then recovery (quick)",
        "outage",
        ((15.0, 100.0),),
        focus=(5.0, 10.0),
    ),
)
"""The reduced set the smoke test runs: a few seconds of CPU."""
