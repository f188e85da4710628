"""Health per endpoint: the rules, the rolling window of calls, and the pure state machine.

An endpoint is ``"healthy"``, ``"degraded"`` or ``"down"``, judged from the calls that
ended in the last ``window`` seconds (calls, not attempts: a call retried into success is
a success), the p95 of their durations, and its breaker (open = down).

Hysteresis, so that one bad second does not flap the state:

- a state is *entered* at its threshold, and only with ``min_calls`` calls in the window
  (one failed call at low volume is no outage). ``"down"`` is also entered when the
  newest two buckets alone (the current one and the one before: a fifth of the window)
  hold ``min_calls`` calls failing at the down rate: a hard outage is seen before it
  outweighs the healthy calls of the rest of the window, while one bad second is still
  too small a share of two buckets (3 s each by default) to count;
- a state is *left* only once the window is well clear of it: the failure rate below
  half the threshold that entered it, the p95 below 0.8 × ``degraded_latency``. Between
  the two, the endpoint keeps the state it has.

So the state is ``max(entered, min(current, held))``, ranked healthy < degraded < down
(:func:`judge`, pure, tested as a table). An endpoint with no calls in the window is
healthy: no traffic is no evidence of failure.

The window (:class:`CallWindow`) is a ring of ten buckets, each a tenth of ``window``:
each bucket is a fixed log-scaled histogram of call durations (bins 19 % apart) and a
failure count, so counting a successful call is one integer store under a lock held for
no I/O, the sums are made when the window is read (once per bucket), and memory per
endpoint does not grow with the number of calls.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime
from typing import Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BOUNDS",
    "BUCKETS",
    "RECENT",
    "DEGRADED",
    "DOWN",
    "HEALTHY",
    "RANK",
    "CallWindow",
    "Health",
    "HealthRules",
    "HealthState",
    "WindowStats",
    "judge",
]

HealthState = Literal["healthy", "degraded", "down"]
HEALTHY: HealthState = "healthy"
DEGRADED: HealthState = "degraded"
DOWN: HealthState = "down"
RANK: dict[str, int] = {HEALTHY: 0, DEGRADED: 1, DOWN: 2}
_BY_RANK: tuple[HealthState, HealthState, HealthState] = (HEALTHY, DEGRADED, DOWN)

BUCKETS = 10
"""The window is kept in tenths: health is judged once per bucket at most."""

RECENT = 2
"""Buckets (the current one and the one before) in which a hard outage is seen early."""

# Leaving a state needs the window well clear of its threshold (see the module docstring).
_RATE_MARGIN = 0.5
_LATENCY_MARGIN = 0.8

# Histogram bin upper bounds, seconds: 1 ms × 2^(i/4), up to ~190 s; the last bin is open.
BOUNDS: tuple[float, ...] = tuple(0.001 * 2 ** (i / 4) for i in range(71))
_BINS = len(BOUNDS) + 1
_ZEROS = [0] * _BINS


class HealthRules(BaseModel):
    """When an endpoint counts as degraded or down, and when an incident ends.

    Args:
        window: seconds of calls that health is judged on, ``> 0``, at most 86400
            (default 30.0). Judged once per tenth of it (a bucket) at most; a hard
            outage is also judged on the newest two buckets alone (see below).
        min_calls: calls the window must hold before an endpoint can be marked degraded
            or down, ``>= 1`` (default 10): no alert from one failed call at low volume.
        degraded_failure_rate: share of failed calls, in ``(0, 1]``, from which the
            endpoint is degraded (default 0.1).
        down_failure_rate: share of failed calls, in ``(0, 1]`` and at least
            ``degraded_failure_rate``, from which it is down (default 0.5).
        degraded_latency: the p95 call duration in seconds from which the endpoint is
            degraded, ``> 0``; ``None`` (default) judges on failures only.
        recover_after: seconds every endpoint of a provider must be healthy before its
            incident resolves, ``>= 0`` (default 60.0); an incident that turns bad again
            within this long after resolving reopens as the same incident.

    A call fails for health when it ends in an exception or a 5xx or 429 response, or
    was answered by a fallback. A 4xx other than 429 is the caller's own mistake, not an
    outage. Calls refused locally (breaker open, bulkhead full, throttle) never reached the
    provider and are not counted; an open breaker marks its endpoint down by itself.

    Raises:
        pydantic.ValidationError: a value out of range, naming the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: float = Field(default=30.0, gt=0.0, le=86400.0, allow_inf_nan=False)
    min_calls: int = Field(default=10, ge=1, le=1_000_000)
    degraded_failure_rate: float = Field(default=0.1, gt=0.0, le=1.0, allow_inf_nan=False)
    down_failure_rate: float = Field(default=0.5, gt=0.0, le=1.0, allow_inf_nan=False)
    degraded_latency: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    recover_after: float = Field(default=60.0, ge=0.0, le=86400.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.down_failure_rate < self.degraded_failure_rate:
            raise ValueError(
                "down_failure_rate must be >= degraded_failure_rate "
                f"(got {self.down_failure_rate} < {self.degraded_failure_rate})"
            )
        return self

    @property
    def bucket(self) -> float:
        """Seconds per bucket of the window (a tenth of it)."""
        return self.window / BUCKETS


class Health(BaseModel):
    """One endpoint's health (``monitor.health()``).

    ``state``; ``calls`` and ``failure_rate`` over the window; ``p95``: seconds, ``None``
    without calls; ``since``: when the endpoint entered ``state`` (UTC).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: HealthState
    calls: int
    failure_rate: float
    p95: float | None
    since: datetime


class WindowStats(NamedTuple):
    """What the window holds at one instant: ``first_failure`` is the wall time of its
    oldest failed call, ``None`` without one; ``recent_calls`` and ``recent_failures``
    count the newest :data:`RECENT` buckets only (the current one and the one before)."""

    calls: int
    failures: int
    p95: float | None
    first_failure: float | None
    recent_calls: int = 0
    recent_failures: int = 0


def judge(
    current: HealthState, stats: WindowStats, breaker_open: bool, rules: HealthRules
) -> HealthState:
    """The endpoint's next state from its ``current`` one (pure; see the module
    docstring for the hysteresis)."""
    if breaker_open:
        return DOWN
    calls = stats.calls
    if calls == 0:
        return HEALTHY
    rate = stats.failures / calls
    latency = rules.degraded_latency
    p95 = stats.p95
    entered = 0
    recent, recent_failed = stats.recent_calls, stats.recent_failures
    if calls >= rules.min_calls:
        if rate >= rules.down_failure_rate:
            entered = 2
        elif recent >= rules.min_calls and recent_failed >= recent * rules.down_failure_rate:
            entered = 2  # a hard outage, seen before it outweighs older calls
        elif rate >= rules.degraded_failure_rate or (
            latency is not None and p95 is not None and p95 >= latency
        ):
            entered = 1
    held = 0
    if rate >= rules.down_failure_rate * _RATE_MARGIN:
        held = 2
    elif rate >= rules.degraded_failure_rate * _RATE_MARGIN or (
        latency is not None and p95 is not None and p95 >= latency * _LATENCY_MARGIN
    ):
        held = 1
    return _BY_RANK[max(entered, min(RANK[current], held))]


class CallWindow:
    """The calls of one endpoint over the last ``window`` seconds, in ten buckets.

    Each bucket is a histogram of call durations (its call count is the histogram's sum,
    made when the window is read, not when a call is counted) plus its failures. Counts
    of a bucket that leaves the window move to running totals (:meth:`totals`), so
    nothing is lost between two readings however far apart they are.

    Not thread-safe on its own: the monitor holds its lock around :meth:`add`, and a call
    in the newest bucket only bumps ``newest[bisect_left(BOUNDS, duration)]`` under it.
    """

    __slots__ = ("_failures", "_first", "_hist", "_retired", "_width", "head", "newest")

    def __init__(self, width: float) -> None:
        self._width = width
        self.head = -1  # number of the newest bucket
        self._failures = [0] * BUCKETS
        self._first: list[float | None] = [None] * BUCKETS
        self._hist = [[0] * _BINS for _ in range(BUCKETS)]
        self.newest = self._hist[0]  # the histogram of bucket ``head``
        self._retired = [0, 0]  # calls and failures of the buckets that left the window

    def _move(self, index: int) -> None:
        """Make bucket ``index`` the newest, retiring the buckets that expired."""
        start = max(self.head + 1, index - BUCKETS + 1)
        for expired in range(start, index + 1):
            slot = expired % BUCKETS
            hist = self._hist[slot]
            self._retired[0] += sum(hist)
            self._retired[1] += self._failures[slot]
            hist[:] = _ZEROS
            self._failures[slot] = 0
            self._first[slot] = None
        self.head = index
        self.newest = self._hist[index % BUCKETS]

    def add(self, index: int, duration: float, failed: bool, wall: float) -> None:
        """Count one call that ended in bucket ``index`` after ``duration`` seconds."""
        if index > self.head:
            self._move(index)
        elif index <= self.head - BUCKETS:
            return  # older than the window (a clock that went back)
        slot = index % BUCKETS
        self._hist[slot][bisect_left(BOUNDS, duration)] += 1
        if failed:
            self._failures[slot] += 1
            if self._first[slot] is None:
                self._first[slot] = wall

    def _live(self, index: int) -> list[int]:
        """The slots of the buckets in the window that ends with bucket ``index``."""
        low = max(index, self.head) - BUCKETS + 1
        return [i % BUCKETS for i in range(low, min(index, self.head) + 1)]

    def stats(self, index: int) -> WindowStats:
        """The window ending with bucket ``index`` (the current one); reading it changes
        nothing (buckets move only when calls are counted)."""
        slots = self._live(index)
        merged = [sum(column) for column in zip(*(self._hist[s] for s in slots), strict=True)]
        calls = sum(merged)
        failures = sum(self._failures[s] for s in slots)
        firsts = [f for f in (self._first[s] for s in slots) if f is not None]
        p95 = _quantile(merged, calls, 0.95) if calls else None
        newest = [
            i % BUCKETS
            for i in range(index - RECENT + 1, min(index, self.head) + 1)
            if i > self.head - BUCKETS
        ]
        return WindowStats(
            calls,
            failures,
            p95,
            min(firsts) if firsts else None,
            sum(sum(self._hist[s]) for s in newest),
            sum(self._failures[s] for s in newest),
        )

    def totals(self) -> tuple[int, int]:
        """Calls and failures ever counted (those still in the window and those retired)."""
        calls = self._retired[0] + sum(sum(hist) for hist in self._hist)
        return calls, self._retired[1] + sum(self._failures)


def _quantile(bins: list[int], total: int, q: float) -> float:
    """The upper bound of the bin holding quantile ``q`` (seconds); the open last bin
    reports its lower bound."""
    wanted = q * total
    seen = 0
    for index, count in enumerate(bins):
        seen += count
        if seen >= wanted and count:
            return BOUNDS[index] if index < len(BOUNDS) else BOUNDS[-1]
    return BOUNDS[-1]
