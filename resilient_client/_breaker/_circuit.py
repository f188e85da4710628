"""The breaker's state machine: pure decisions, no I/O, no locks, no clock reads.

A :class:`Circuit` is one endpoint's state. Every method takes ``now`` (seconds on one
monotonic clock) and mutates only the circuit, so the steps of ``_breaker_steps.py``, run
by the drivers in ``_breaker.py``, hold a lock for O(1) work and never across a guarded
call. ``_breaker_lua.py`` is a port of this file to Redis Lua for fleet-wide state; the
two must decide alike (the storage tests run one scenario through both).

::

    closed ──(trip rule met)──▶ open ──(reset_timeout elapsed, on the next admission)──▶ half_open
      ▲                                ▲                                                    │
      │                                └─────────────(a probe fails or is slow)─────────────┤
      └──────────────────────(success_threshold probes succeed)─────────────────────────────┘

Trip rules: ``window="consecutive"``: ``failure_threshold`` failures in a row.
``"count"``/``"time"``: once the window holds ``minimum_calls`` calls, when
``failures >= failure_rate_threshold * calls`` or ``slow >= slow_call_rate_threshold * calls``,
compared in integer millionths (:func:`rate_units`) by both ports.

Outcomes are bit sets (shared with the Lua port): ``FAILED`` for a failure, ``SLOW`` for a
call at least ``slow_call_duration`` long; ``0`` is a fast success; an ignored outcome is
never recorded. A slow call counts as a failure for the consecutive rule and for probes.

Every outcome carries the *generation* its permit was issued in; a trip starts a new one,
so an outcome of a call admitted before the trip cannot count toward the next period.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from .._window import BucketRing

if TYPE_CHECKING:
    from ._policy import Breaker

__all__ = [
    "CLOSED",
    "FAILED",
    "HALF_OPEN",
    "OPEN",
    "RATE_SCALE",
    "SLOW",
    "TIME_BUCKETS",
    "Admission",
    "BreakerState",
    "Circuit",
    "rate_units",
]

BreakerState = Literal["closed", "open", "half_open"]

# pybreaker's names, except that it spells "half-open"; the house vocabulary is "half_open".
CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"

FAILED: Final = 1
SLOW: Final = 2

# A time window is cut into this many buckets (Polly's sampling); resolution is size / 10.
TIME_BUCKETS: Final = 10

# Rates are compared in integer millionths, as the retry budget does: in floating point
# 0.07 × 100 is 7.000000000000001, so 7 failures in 100 calls would miss a 7 % threshold.
RATE_SCALE: Final = 1_000_000


def rate_units(rate: float) -> int:
    """``rate`` (0 < rate ≤ 1) in whole millionths, at least 1.

    ``count * RATE_SCALE >= rate_units(rate) * calls`` is then exact (the Lua port's
    doubles hold such products exactly up to 2**53). At least 1: a positive threshold
    too small to show in millionths must not trip on zero failures.
    """
    return max(1, round(rate * RATE_SCALE))


@dataclass(frozen=True, slots=True)
class Admission:
    """What :meth:`Circuit.admit` decided.

    ``kind`` is ``"call"`` (closed), ``"probe"`` (half-open, a slot was taken) or
    ``"rejected"``; ``retry_at`` (monotonic seconds) is set only for a rejection.
    """

    kind: Literal["call", "probe", "rejected"]
    generation: int
    retry_at: float = 0.0


class _Consecutive:
    __slots__ = ("calls", "failures", "slow")

    def __init__(self) -> None:
        self.calls = self.failures = self.slow = 0

    def add(self, bits: int, now: float) -> None:
        # ``failures`` is the current streak of failed or slow calls.
        self.failures = self.failures + 1 if bits else 0

    def expire(self, now: float) -> None:
        pass


class _CountWindow:
    """The last ``size`` outcomes, totals kept by subtract-on-evict (O(1) per call)."""

    __slots__ = ("_bits", "_size", "calls", "failures", "slow")

    def __init__(self, size: int) -> None:
        self._size = size
        self._bits: deque[int] = deque()
        self.calls = self.failures = self.slow = 0

    def add(self, bits: int, now: float) -> None:
        self._bits.append(bits)
        self.calls += 1
        self.failures += bits & FAILED
        self.slow += (bits & SLOW) >> 1
        while self.calls > self._size:
            old = self._bits.popleft()
            self.calls -= 1
            self.failures -= old & FAILED
            self.slow -= (old & SLOW) >> 1

    def expire(self, now: float) -> None:
        pass


# The counters of a time window's BucketRing.
_CALLS, _FAILURES, _SLOW_CALLS = 0, 1, 2


class _TimeWindow:
    """Outcomes of the last ``size`` seconds in ``TIME_BUCKETS`` buckets, totals kept.

    Bucket ``n`` covers ``[n * width, (n + 1) * width)`` with ``width = size / 10``: the
    same numbering as the Lua port's ``floor(now / (size / BUCKETS))``.
    """

    __slots__ = ("_ring", "_width")

    def __init__(self, size: float) -> None:
        self._width = size / TIME_BUCKETS
        # Head -1: nothing counted yet; moving to the first real bucket zeroes only
        # empty slots, whatever the clock reads.
        self._ring = BucketRing(TIME_BUCKETS, -1)

    @property
    def calls(self) -> int:
        return self._ring.sums[_CALLS]

    @property
    def failures(self) -> int:
        return self._ring.sums[_FAILURES]

    @property
    def slow(self) -> int:
        return self._ring.sums[_SLOW_CALLS]

    def expire(self, now: float) -> None:
        self._ring.slot(math.floor(now / self._width))

    def add(self, bits: int, now: float) -> None:
        ring = self._ring
        slot = ring.add_at(math.floor(now / self._width), _CALLS)
        if bits & FAILED:
            ring.add(slot, _FAILURES)
        if bits & SLOW:
            ring.add(slot, _SLOW_CALLS)


_Window = _Consecutive | _CountWindow | _TimeWindow


def _new_window(policy: Breaker) -> _Window:
    if policy.window == "count":
        return _CountWindow(int(policy.window_size))
    if policy.window == "time":
        return _TimeWindow(float(policy.window_size))
    return _Consecutive()


def _same_window(a: Breaker, b: Breaker) -> bool:
    return a.window == b.window and a.window_size == b.window_size


def _thresholds(policy: Breaker) -> tuple[int, int]:
    # Computed once per policy: the failure and slow-call rates, in millionths.
    return rate_units(policy.failure_rate_threshold), rate_units(policy.slow_call_rate_threshold)


class Circuit:
    """One endpoint's breaker state. Not thread-safe: callers hold a lock around each call.

    ``changes`` collects ``(old, new)`` state pairs; the driver drains it after each call
    and notifies listeners outside its lock.
    """

    __slots__ = (
        "_call",
        "_failure_units",
        "_slow_units",
        "changes",
        "generation",
        "half_open_successes",
        "open_until",
        "policy",
        "probes",
        "state",
        "window",
    )

    def __init__(self, policy: Breaker) -> None:
        self.policy = policy
        self.state: BreakerState = CLOSED
        self.generation = 0
        self.open_until = 0.0
        self.half_open_successes = 0
        # Probe token -> lease end. A lease bounds how long a lost probe holds its slot.
        self.probes: dict[str, float] = {}
        self.window: _Window = _new_window(policy)
        self.changes: list[tuple[BreakerState, BreakerState]] = []
        self._call = Admission("call", 0)
        self._failure_units, self._slow_units = _thresholds(policy)

    def reconfigure(self, policy: Breaker) -> None:
        """Apply a new policy to the same state; counts survive if the window is unchanged."""
        if not _same_window(self.policy, policy):
            self.window = _new_window(policy)
        self.policy = policy
        self._failure_units, self._slow_units = _thresholds(policy)

    def tick(self, now: float) -> None:
        """Move open → half_open once ``open_until`` has passed."""
        if self.state == OPEN and now >= self.open_until:
            self.half_open_successes = 0
            self.probes.clear()
            self._move(HALF_OPEN)

    def admit(self, now: float, token: str) -> Admission:
        """Admit a call, take a probe slot (``token`` names it) or reject."""
        self.tick(now)
        if self.state == CLOSED:
            # Every closed call of a generation gets the same value: a shared storage's
            # circuit admits here on every request.
            if self._call.generation != self.generation:
                self._call = Admission("call", self.generation)
            return self._call
        if self.state == OPEN:
            return Admission("rejected", self.generation, self.open_until)
        for held, lease_end in list(self.probes.items()):
            if lease_end <= now:
                del self.probes[held]
        if len(self.probes) < self.policy.half_open_max_calls:
            self.probes[token] = now + self.policy.reset_timeout
            return Admission("probe", self.generation)
        # Every slot is taken: the oldest lease is the latest instant one frees up.
        return Admission("rejected", self.generation, min(self.probes.values()))

    def release(self, token: str) -> None:
        """Give a probe slot back without an outcome (the call was cancelled)."""
        self.probes.pop(token, None)

    def record(
        self, generation: int, probe_token: str | None, bits: int | None, now: float
    ) -> None:
        """Count one outcome (``bits=None`` = ignored) of a permit of ``generation``.

        ``probe_token`` is set for a half-open probe; its slot is freed whatever happens.
        """
        if probe_token is not None:
            self.probes.pop(probe_token, None)
        self.tick(now)
        if bits is None or generation != self.generation:
            return
        if probe_token is not None:
            if self.state == HALF_OPEN:
                self._probe_finished(bits, now)
            return
        if self.state == CLOSED:
            self.window.add(bits, now)
            if self._should_trip():
                self._trip(now)

    def follow(self, state: BreakerState, open_until: float) -> None:
        """Take over a state decided elsewhere (the shared storage), as a mirror."""
        if state == OPEN:
            self.open_until = open_until
        if state != self.state:
            self.reset_counts()
            if state == OPEN:
                self.generation += 1
            self._move(state)

    def _probe_finished(self, bits: int, now: float) -> None:
        if bits:
            self._trip(now)
            return
        self.half_open_successes += 1
        if self.half_open_successes >= self.policy.success_threshold:
            self.reset_counts()
            self._move(CLOSED)

    def _should_trip(self) -> bool:
        policy, window = self.policy, self.window
        if policy.window == "consecutive":
            return window.failures >= policy.failure_threshold
        calls = window.calls
        if calls < policy.minimum_calls:
            return False
        return (
            window.failures * RATE_SCALE >= self._failure_units * calls
            or window.slow * RATE_SCALE >= self._slow_units * calls
        )

    def _trip(self, now: float) -> None:
        self.generation += 1
        self.open_until = now + self.policy.reset_timeout
        self.reset_counts()
        self._move(OPEN)

    def reset_counts(self) -> None:
        """Forget every count; state, generation and ``open_until`` stay."""
        self.window = _new_window(self.policy)
        self.half_open_successes = 0
        self.probes.clear()

    def _move(self, new: BreakerState) -> None:
        if new != self.state:
            self.changes.append((self.state, new))
            self.state = new
