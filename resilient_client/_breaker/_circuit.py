"""The breaker's state machine: pure decisions, no I/O, no locks, no clock reads.

A :class:`Circuit` is one endpoint's state. Every method takes ``now`` (seconds on one
monotonic clock), and the one that can reopen the breaker a random number as well, and
mutates only the circuit: the driver (``_breaker.py``) holds a lock for O(1) work around
each call and never across a guarded call - but for a closed time window's fast
successes (the common case by far), which the driver counts without it, leaving to the
lock whatever could meet a trip rule, and deciding as a locked record would: the
protocol, and why it is safe, is :class:`TimeWindow`'s.
``_lua.py`` is a port of this file to Redis Lua for fleet-wide state; the two must
decide alike (a test runs one scenario through both).

The states and how one leads to another, :data:`TRANSITIONS` as a picture::

    closed ──(trip rule met)──▶ open ──(open period elapsed, on the next admission)──▶ half_open
      ▲                           ▲                                                       │
      │                           └────────────────(a probe fails or is slow)─────────────┤
      └────────────────────────(success_threshold probes succeed)─────────────────────────┘

- **closed** admits every call and counts outcomes in a window (:func:`_new_window`).
  Trip rules: ``window="consecutive"``: ``failure_threshold`` failures in a row;
  ``"count"``/``"time"``: once the window holds ``minimum_calls`` calls, when
  ``failures >= failure_rate_threshold * calls`` or ``slow >= slow_call_rate_threshold *
  calls``, compared in integer millionths (:func:`rate_units`) by both ports.
- **open** rejects every call until ``open_until``: ``reset_timeout`` after a trip from
  closed; after a failed probe, the period :func:`grown_period` gives.
- **half_open** lets ``half_open_max_calls`` probes through at once; each holds its slot
  until it reports, or for ``reset_timeout`` at most (its lease).

Outcomes are bit sets (shared with the Lua port): ``FAILED`` for a failure, ``SLOW`` for a
call at least ``slow_call_duration`` long; ``0`` is a fast success; an ignored outcome is
never recorded. A slow call counts as a failure for the consecutive rule and for probes.

Every outcome carries the *generation* its permit was issued in; a trip starts a new one,
so an outcome of a call admitted before the trip cannot count toward the next period.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from .._window import BucketRing
from ._policy import Breaker, BreakerState

__all__ = [
    "CLOSED",
    "FAILED",
    "HALF_OPEN",
    "JITTER",
    "NO_TRIP",
    "OPEN",
    "RATE_SCALE",
    "SLOW",
    "TIME_BUCKETS",
    "TRANSITIONS",
    "TRIP_FAILURE_RATE",
    "TRIP_PROBE",
    "TRIP_SLOW_RATE",
    "TRIP_STREAK",
    "Admission",
    "BreakerState",
    "Circuit",
    "TimeWindow",
    "Transition",
    "Trip",
    "describe_trip",
    "grown_period",
    "rate_units",
]

# pybreaker's names, except that it spells "half-open"; the house vocabulary is "half_open".
CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"


class Transition(NamedTuple):
    """One arrow of the state diagram: ``condition`` is a short human text."""

    from_state: BreakerState
    to_state: BreakerState
    condition: str


# The source of truth for the diagram above, the README's picture and the table-driven
# tests (tests/unit/test_breaker_rules.py drives every row through a Circuit). A change
# to the rules below changes a row here, or a test fails.
TRANSITIONS: Final[tuple[Transition, ...]] = (
    Transition(CLOSED, OPEN, "trip rule met"),
    Transition(OPEN, HALF_OPEN, "open period elapsed, on the next admission"),
    Transition(HALF_OPEN, OPEN, "a probe fails or is slow"),
    Transition(HALF_OPEN, CLOSED, "success_threshold probes succeed"),
)

FAILED: Final = 1
SLOW: Final = 2

# A time window is cut into this many buckets (Polly's sampling); resolution is size / 10.
TIME_BUCKETS: Final = 10

# Rates are compared in integer millionths, as the retry budget does: in floating point
# 0.07 × 100 is 7.000000000000001, so 7 failures in 100 calls would miss a 7 % threshold.
RATE_SCALE: Final = 1_000_000

# A grown open period is its nominal length less up to this share (uniform jitter).
JITTER: Final = 0.2

# What opened the breaker (numbers shared with the Lua port).
NO_TRIP: Final = 0
TRIP_STREAK: Final = 1
TRIP_FAILURE_RATE: Final = 2
TRIP_SLOW_RATE: Final = 3
TRIP_PROBE: Final = 4


def rate_units(rate: float) -> int:
    """``rate`` (0 < rate ≤ 1) in whole millionths, at least 1.

    ``count * RATE_SCALE >= rate_units(rate) * calls`` is then exact (the Lua port's
    doubles hold such products exactly up to 2**53). At least 1: a positive threshold
    too small to show in millionths must not trip on zero failures.
    """
    return max(1, round(rate * RATE_SCALE))


def grown_period(policy: Breaker, nominal: float, rand: float) -> tuple[float, float]:
    """The open period after a failed probe: ``(new nominal, period to apply)``, seconds.

    ``nominal`` is the previous nominal period, ``rand`` a number drawn from ``[0, 1)``.
    Without ``reset_timeout_max`` both are ``reset_timeout``. Otherwise the nominal period
    is ``min(reset_timeout_max, nominal × reset_multiplier)`` and the period applied is
    ``nominal × (1 - JITTER × rand)``, never below ``reset_timeout``.
    """
    floor, cap = policy.reset_timeout, policy.reset_timeout_max
    if cap is None:
        return floor, floor
    grown = min(cap, max(floor, nominal * policy.reset_multiplier))
    return grown, max(floor, grown * (1.0 - JITTER * rand))


class Trip(NamedTuple):
    """What last opened the breaker: a ``TRIP_*`` cause and the counts it saw.

    For ``TRIP_PROBE``, ``failures``/``slow`` are the probe's bits (1 or 0), ``calls`` 1.
    """

    cause: int
    failures: int
    slow: int
    calls: int


_NONE = Trip(NO_TRIP, 0, 0, 0)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def describe_trip(trip: Trip) -> str | None:
    """A short text of what opened the breaker (``None`` if it never opened)."""
    cause, failures, slow, calls = trip
    if cause == TRIP_STREAK:
        return f"{_n(failures, 'failure')} in a row"
    if cause in (TRIP_FAILURE_RATE, TRIP_SLOW_RATE) and calls:
        part, what = (failures, "failed") if cause == TRIP_FAILURE_RATE else (slow, "slow")
        return f"{part} of {_n(calls, 'call')} {what} ({100 * part / calls:.0f} %)"
    if cause == TRIP_PROBE:
        return "a failed probe" if failures else "a slow probe"
    return None


@dataclass(frozen=True, slots=True)
class Admission:
    """What :meth:`Circuit.admit` decided.

    ``kind`` is ``"call"`` (closed), ``"probe"`` (half-open, a slot was taken) or
    ``"rejected"``; ``retry_at`` (monotonic seconds) is set only for a rejection.
    """

    kind: Literal["call", "probe", "rejected"]
    generation: int
    retry_at: float = 0.0


# -- the closed state's windows: what a trip rule counts ----------------------------------


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


# The counters of a time window's BucketRing (its calls are counted apart, see below).
_CALLS, _FAILURES, _SLOW_CALLS = 0, 1, 2


def _bucket_start(index: int, width: float) -> float:
    """The first instant of bucket ``index``: the least float ``t`` with ``floor(t / width)
    >= index``, exactly as the division rounds (``index * width`` may miss it by an ulp).

    Exact, so ``now < start`` decides alike with ``floor(now / width) < index``: one float
    comparison for a division, a ``math.floor`` call and an int, ~600 instructions off
    every fast success (cachegrind). Rounded division is monotonic in ``t``, so the
    boundary is one point, an ulp or two from the product.
    """
    t = index * width
    while math.floor(t / width) >= index:
        t = math.nextafter(t, -math.inf)
    while math.floor(t / width) < index:
        t = math.nextafter(t, math.inf)
    return t


class TimeWindow:
    """Outcomes of the last ``size`` seconds in ``TIME_BUCKETS`` buckets, totals kept.

    Bucket ``n`` covers ``[n * width, (n + 1) * width)`` with ``width = size / 10``: the
    same numbering as the Lua port's ``floor(now / (size / BUCKETS))``. ``ends`` is where
    the newest bucket ends (:func:`_bucket_start` of the next): an outcome at ``now <
    ends`` counts in it. ``failures`` and ``slow`` mirror the ring's sums, refreshed when
    the ring moves: plain attributes, as the trip rule and every fast success read them.

    Fast successes are counted without the driver's lock, the way the retry budget counts
    calls: by one ``itertools.count``, ``fast`` (its ``next()`` is one C step, so no two
    threads lose a count), with, per bucket, the count at the bucket's start (its mark) -
    so they number the count now less the oldest bucket's mark. Every other method runs
    under the lock. A fast success of a closed-state permit of ``generation`` is counted
    so (``EndpointBreaker.record``, inline), and recorded as usual at the first step that
    fails:

    1. ``window = circuit.window``, read *before* the generation;
    2. ``generation == circuit.generation``, ``circuit.state == CLOSED`` and ``window`` a
       ``TimeWindow`` (a reconfigured policy may have replaced it by another kind);
    3. ``now < window.ends``: the newest bucket (a new one is marked under the lock);
    4. ``next(window.fast)``: counted;
    5. then, and only then, ``window.failures`` and ``window.slow`` are read: below both
       ``circuit.failure_floor`` and ``circuit.slow_floor`` it is done, else the driver
       applies the trip rule under the lock (``Circuit.settle``).

    Why it decides as a locked record would: a trip starts a new generation before it
    replaces the window, so a success of a past one never reaches a new window (step 1
    before 2). The floors are the fewest failures (slow calls) that can meet a rate rule
    at ``minimum_calls``: below both, no number of calls can. A failure counted meanwhile
    under the lock raises ``failures`` (:meth:`add`) before its trip rule reads the
    calls, so either it counted this success when it applied the rule, or step 5 sees
    it. (A rule stopped by the floors reads no calls, but then none could meet it.)
    """

    __slots__ = ("_marks", "_peeks", "_ring", "_width", "ends", "failures", "fast", "slow")

    def __init__(self, size: float) -> None:
        self._width = size / TIME_BUCKETS
        # Head -1: nothing counted yet; moving to the first real bucket zeroes only
        # empty slots, whatever the clock reads.
        self._ring = BucketRing(TIME_BUCKETS, -1)
        self.ends = _bucket_start(0, self._width)
        self.failures = self.slow = 0
        # Fast successes ever counted, and next() calls made only to read that count.
        self.fast = itertools.count()
        self._peeks = 0
        self._marks = [0] * TIME_BUCKETS

    def _counted(self) -> int:
        counted = next(self.fast) - self._peeks
        self._peeks += 1
        return counted

    @property
    def calls(self) -> int:
        ring = self._ring
        # The slot after the newest holds the oldest bucket's mark.
        oldest = self._marks[(ring.head + 1) % TIME_BUCKETS]
        return ring.sums[_CALLS] + self._counted() - oldest

    def _slot(self, now: float) -> int:
        """Move to the bucket ``now`` falls in (marking the buckets entered) and return
        its slot."""
        ring = self._ring
        head = ring.head
        if now < self.ends:  # the newest bucket, or an earlier one (a fake clock went back)
            return head % TIME_BUCKETS
        index = math.floor(now / self._width)
        counted, marks = self._counted(), self._marks
        if head < 0 or index - head >= TIME_BUCKETS:
            marks[:] = [counted] * TIME_BUCKETS
        else:
            for bucket in range(head + 1, index + 1):
                marks[bucket % TIME_BUCKETS] = counted
        slot = ring.slot(index)
        self.ends = _bucket_start(index + 1, self._width)
        sums = ring.sums
        self.failures, self.slow = sums[_FAILURES], sums[_SLOW_CALLS]
        return slot

    def expire(self, now: float) -> None:
        self._slot(now)

    def add(self, bits: int, now: float) -> None:
        slot = self._ring.head % TIME_BUCKETS if now < self.ends else self._slot(now)
        failed, slow = bits & FAILED, (bits & SLOW) >> 1
        self._ring.add_all(slot, 1, failed, slow)
        # Before the trip rule reads the calls: a fast success relies on it (step 5).
        self.failures += failed
        self.slow += slow


_Window = _Consecutive | _CountWindow | TimeWindow


def _new_window(policy: Breaker) -> _Window:
    if policy.window == "count":
        return _CountWindow(int(policy.window_size))
    if policy.window == "time":
        return TimeWindow(float(policy.window_size))
    return _Consecutive()


def _same_window(a: Breaker, b: Breaker) -> bool:
    return a.window == b.window and a.window_size == b.window_size


def _thresholds(policy: Breaker) -> tuple[int, int]:
    # Computed once per policy: the failure and slow-call rates, in millionths.
    return rate_units(policy.failure_rate_threshold), rate_units(policy.slow_call_rate_threshold)


def _floor(units: int, minimum_calls: int) -> int:
    # The fewest failures (or slow calls) that can meet a rate rule: with fewer, `count *
    # RATE_SCALE >= units * calls` fails for every calls >= minimum_calls.
    return -(-units * minimum_calls // RATE_SCALE)


class Circuit:
    """One endpoint's breaker state. Not thread-safe: callers hold a lock around each call
    (but for a time window's fast successes: :class:`TimeWindow`).

    ``changes`` collects ``(old, new)`` state pairs; the driver drains it after each call
    and notifies listeners outside its lock. ``nominal_open`` is the length the open
    period has grown to (``reset_timeout`` until a probe fails); ``trip`` what last
    opened the breaker. ``failure_floor`` and ``slow_floor`` are the fewest failures and
    slow calls that can meet a rate rule: below both, the window cannot trip.
    """

    __slots__ = (
        "_call",
        "_failure_units",
        "_slow_units",
        "changes",
        "failure_floor",
        "generation",
        "half_open_successes",
        "nominal_open",
        "open_until",
        "policy",
        "probes",
        "slow_floor",
        "state",
        "trip",
        "window",
    )

    def __init__(self, policy: Breaker) -> None:
        self.policy = policy
        self.state: BreakerState = CLOSED
        self.generation = 0
        self.open_until = 0.0
        self.nominal_open = policy.reset_timeout
        self.trip = _NONE
        self.half_open_successes = 0
        # Probe token -> lease end. A lease bounds how long a lost probe holds its slot.
        self.probes: dict[str, float] = {}
        self.window: _Window = _new_window(policy)
        self.changes: list[tuple[BreakerState, BreakerState]] = []
        self._call = Admission("call", 0)
        self._set_thresholds(policy)

    def _set_thresholds(self, policy: Breaker) -> None:
        self._failure_units, self._slow_units = _thresholds(policy)
        self.failure_floor = _floor(self._failure_units, policy.minimum_calls)
        self.slow_floor = _floor(self._slow_units, policy.minimum_calls)

    def reconfigure(self, policy: Breaker) -> None:
        """Apply a new policy to the same state; counts survive if the window is unchanged."""
        if not _same_window(self.policy, policy):
            self.window = _new_window(policy)
        self.policy = policy
        self._set_thresholds(policy)

    # -- the entry points: each first moves a due open state to half_open ---------------

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
        return self._admit_probe(now, token)

    def record(
        self,
        generation: int,
        probe_token: str | None,
        bits: int | None,
        now: float,
        rand: float = 0.0,
    ) -> None:
        """Count one outcome (``bits=None`` = ignored) of a permit of ``generation``.

        ``probe_token`` is set for a half-open probe; its slot is freed whatever happens.
        ``rand`` (from ``[0, 1)``) jitters the open period should a failed probe reopen.
        """
        if probe_token is not None:
            self.probes.pop(probe_token, None)
        if self.state == OPEN:  # tick's test, inline: a frame, ~400 instructions a failure
            self.tick(now)
        if bits is None or generation != self.generation:
            return
        if probe_token is not None:
            if self.state == HALF_OPEN:
                self._probe_finished(bits, now, rand)
            return
        if self.state == CLOSED:
            self.window.add(bits, now)
            self._apply_trip_rule(now)

    def settle(self, now: float) -> None:
        """Apply the trip rule to the window as it is now (after a fast success that could
        meet it, counted without the lock: :class:`TimeWindow`)."""
        self.tick(now)
        if self.state == CLOSED:
            self.window.expire(now)
            self._apply_trip_rule(now)

    def release(self, token: str) -> None:
        """Give a probe slot back without an outcome (the call was cancelled)."""
        self.probes.pop(token, None)

    def follow(self, state: BreakerState, open_until: float) -> None:
        """Take over a state decided elsewhere (the shared storage), as a mirror."""
        if state == OPEN:
            self.open_until = open_until
        if state != self.state:
            self.reset_counts()
            if state == OPEN:
                self.generation += 1
            self._move(state)

    # -- closed → open: a trip rule ----------------------------------------------------

    def _apply_trip_rule(self, now: float) -> None:
        policy, window = self.policy, self.window
        failures, slow = window.failures, window.slow
        if policy.window == "consecutive":
            if failures >= policy.failure_threshold:
                self._open(now, Trip(TRIP_STREAK, failures, slow, window.calls), 0.0)
            return
        if failures < self.failure_floor and slow < self.slow_floor:
            return  # below both floors no number of calls can meet a rate rule
        calls = window.calls  # read once: a time window's may grow meanwhile
        if calls < policy.minimum_calls:
            return
        if failures * RATE_SCALE >= self._failure_units * calls:
            self._open(now, Trip(TRIP_FAILURE_RATE, failures, slow, calls), 0.0)
        elif slow * RATE_SCALE >= self._slow_units * calls:
            self._open(now, Trip(TRIP_SLOW_RATE, failures, slow, calls), 0.0)

    # -- open → half_open: the open period elapsed ---------------------------------------

    def tick(self, now: float) -> None:
        """Move open → half_open once ``open_until`` has passed."""
        if self.state == OPEN and now >= self.open_until:
            self.half_open_successes = 0
            self.probes.clear()
            self._move(HALF_OPEN)

    # -- half_open: probes; → open on a failed probe, → closed on enough successes -------

    def _admit_probe(self, now: float, token: str) -> Admission:
        for held, lease_end in list(self.probes.items()):
            if lease_end <= now:
                del self.probes[held]
        if len(self.probes) < self.policy.half_open_max_calls:
            self.probes[token] = now + self.policy.reset_timeout
            return Admission("probe", self.generation)
        # Every slot is taken: the oldest lease is the latest instant one frees up.
        return Admission("rejected", self.generation, min(self.probes.values()))

    def _probe_finished(self, bits: int, now: float, rand: float) -> None:
        if bits:
            self._open(now, Trip(TRIP_PROBE, bits & FAILED, (bits & SLOW) >> 1, 1), rand)
            return
        self.half_open_successes += 1
        if self.half_open_successes >= self.policy.success_threshold:
            self.nominal_open = self.policy.reset_timeout
            self.reset_counts()
            self._move(CLOSED)

    # -- shared by the transitions -------------------------------------------------------

    def _open(self, now: float, trip: Trip, rand: float) -> None:
        if self.state == HALF_OPEN:
            self.nominal_open, period = grown_period(self.policy, self.nominal_open, rand)
        else:
            self.nominal_open = period = self.policy.reset_timeout
        self.generation += 1
        self.open_until = now + period
        self.trip = trip
        self.reset_counts()
        self._move(OPEN)

    def reset_counts(self) -> None:
        """Forget every count; state, generation and the open period stay."""
        self.window = _new_window(self.policy)
        self.half_open_successes = 0
        self.probes.clear()

    def _move(self, new: BreakerState) -> None:
        if new != self.state:
            self.changes.append((self.state, new))
            self.state = new
