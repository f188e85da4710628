"""The retry budget: how many retries one endpoint may make, as a share of its calls.

Finagle's ``RetryBudget`` idea: across all calls of an endpoint, the
retries made in the last ``window`` seconds may number at most ``ratio`` × the calls
(first attempts) made in that window, plus a reserve of ``min_per_second`` × ``window``
so that a quiet client can still retry. During an outage every call fails and wants
retries; the budget caps the extra load the client adds at ``ratio`` of its base load.

The window is a ring of buckets, each a tenth of ``window`` wide, zeroed lazily as the
injected clock moves on; one extra bucket is kept for the partly elapsed current one, so
an event is remembered for at least ``window`` and at most ``1.1 × window`` seconds.
That keeps the bound exact where it matters: when every call and retry falls within one
``window``, retries ≤ ⌊ratio × calls + min_per_second × window⌋ whatever the bucket
boundaries (500 calls, defaults → at most 135 retries). The comparison is done in
integer millionths, so ``0.29 × 100`` is 29, not 28.999….

Counting a call takes no lock: calls are counted by one ``itertools.count`` (its
``next()`` is one C step, so no two threads lose a count), and beside the ring, per
bucket, is the count at the bucket's start - so the calls in the window are the count
now less the mark of its oldest bucket. The lock is taken to move to a new bucket (ten
times a window) and for retries, with ``acquire()``/``release()`` rather than ``with``:
on CPython 3.11 a lock's ``__exit__`` packs its arguments into a fresh tuple, which made
``with`` cost about twice as much (≈430 vs ≈230 ns measured).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from math import floor

from pydantic import BaseModel, ConfigDict, Field

from ._clock import Clock, renew_after_fork
from ._logging import Episodes
from ._window import BucketRing

__all__ = ["RetryBudget", "RetryBudgetSnapshot", "RetryBudgetState"]

# Tenths of the window: fine enough that the extra tenth of memory hardly matters,
# coarse enough that rolling the ring is a handful of list stores.
_BUCKETS = 10
# One more slot than buckets: the partly elapsed current bucket plus ten whole ones, so
# nothing younger than ``window`` is ever dropped.
_SLOTS = _BUCKETS + 1
_RETRIES, _REFUSED = 1, 2  # the counters of the ring (calls are counted apart)
# ratio and reserve are compared in millionths: exact integer arithmetic, no float
# rounding deciding whether the 60th retry is allowed.
_SCALE = 1_000_000


class RetryBudget(BaseModel):
    """Limit retries per endpoint to a share of its calls, over a sliding window.

    Args:
        ratio: retries allowed per call (first attempt) made in the window, 0 to 10
            (Finagle allows 0–1000 %). Default 0.25: retries add at most 25 % to the
            load - enough for 3 attempts to absorb random 20 % failures (0.2 + 0.04
            retries per call), little enough to stay within 1.3× at 50 % (README, "How it
            behaves in an outage"; Finagle's and Envoy's 0.2 fell short of the first).
        min_per_second: a reserve of retries per second that does not depend on traffic,
            ``>= 0``; the window holds ``min_per_second × window`` of them. Default 1.0.
        window: seconds of history the budget looks at, ``> 0`` and at most 3600.
            Default 10.0. Calls and retries are remembered for between ``window`` and
            ``1.1 × window`` seconds (the window is kept in tenths).

    Raises:
        pydantic.ValidationError: a value out of range, naming the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ratio: float = Field(default=0.25, ge=0.0, le=10.0, allow_inf_nan=False)
    min_per_second: float = Field(default=1.0, ge=0.0, le=1_000_000.0, allow_inf_nan=False)
    window: float = Field(default=10.0, gt=0.0, le=3600.0, allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class RetryBudgetSnapshot:
    """The budget's counters at one instant (``calls``/``retries``/``refused`` are in the
    window; ``*_total`` since the state was created)."""

    calls: int
    retries: int
    refused: int
    available: int
    """Retries the budget would grant right now, with no further calls."""
    refusing: bool
    """A retry was refused within the last ``window`` seconds."""
    calls_total: int
    retries_total: int
    refused_total: int


class RetryBudgetState:
    """One endpoint's retry budget, shared by every call of that endpoint.

    The pipeline calls :meth:`record_call` once per call, before its first attempt,
    and :meth:`try_retry` before each retry; a ``False`` ends the call with its last
    outcome. Thread-safe: a call is counted without the lock (but for the first call of
    a bucket), retries under one lock held for an O(1) update (a few hundred ns), so it
    is also fine to call from async tasks.
    """

    __slots__ = (
        "__weakref__",
        "_calls",
        "_episodes",
        "_lock",
        "_marks",
        "_marks_head",
        "_now",
        "_peeks",
        "_per_second",
        "_ratio_u",
        "_refused_total",
        "_reserve_u",
        "_retries_total",
        "_ring",
        "policy",
    )

    def __init__(self, policy: RetryBudget, clock: Clock) -> None:
        self.policy = policy
        self._now = clock.monotonic
        self._lock = threading.Lock()
        renew_after_fork(self)
        # Buckets per second: a float multiply and floor() are the cheapest bucket index.
        self._per_second = _BUCKETS / policy.window
        head = floor(self._now() * self._per_second)
        self._ring = BucketRing(_SLOTS, head)
        # Every call ever counted (see the module docstring), and next() calls made only
        # to read that count, under the lock.
        self._calls = itertools.count()
        self._peeks = 0
        # Per bucket of the ring, the calls counted before it began; the newest bucket.
        self._marks = [0] * _SLOTS
        self._marks_head = head
        self._retries_total = 0
        self._refused_total = 0
        self._ratio_u = round(policy.ratio * _SCALE)
        self._reserve_u = round(policy.min_per_second * policy.window * _SCALE)
        self._episodes = Episodes(policy.window)

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock (the counts are history, kept)."""
        self._lock = threading.Lock()

    def record_call(self, now: float | None = None) -> None:
        """Count one call (its first attempt): it earns ``ratio`` of a retry.

        ``now``: the clock's reading, when the caller has just taken it.
        """
        index = floor((self._now() if now is None else now) * self._per_second)
        if index != self._marks_head:  # a new bucket (or a fake clock gone back)
            lock = self._lock
            lock.acquire()  # not `with`: see the module docstring
            try:
                self._mark(index)
            finally:
                lock.release()
        # A call racing a move to the next bucket is counted in either: both are young.
        next(self._calls)

    def _counted(self) -> int:
        """The calls counted so far (under the lock)."""
        counted = next(self._calls) - self._peeks
        self._peeks += 1
        return counted

    def _mark(self, index: int) -> None:
        """Mark the buckets up to ``index`` with the calls counted before them (under
        the lock): the oldest marks drop out, as the ring's oldest counts do."""
        head = self._marks_head
        if index <= head:
            return
        counted = self._counted()
        marks = self._marks
        if index - head >= _SLOTS:
            marks[:] = [counted] * _SLOTS
        else:
            for bucket in range(head + 1, index + 1):
                marks[bucket % _SLOTS] = counted
        self._marks_head = index

    def _calls_in_window(self, index: int) -> int:
        """Calls counted in the window that ends in bucket ``index`` (under the lock)."""
        self._mark(index)
        # The slot after the newest holds the oldest bucket's mark, until it is reused.
        return self._counted() - self._marks[(self._marks_head + 1) % _SLOTS]

    def try_retry(self) -> bool:
        """Spend one retry if the budget allows it; ``False`` (counted) if it refuses.

        Check and spend are one atomic step, so concurrent callers never overdraw.
        """
        now = self._now()
        index = floor(now * self._per_second)
        lock = self._lock
        lock.acquire()
        try:
            ring = self._ring
            slot = ring.slot(index)
            sums = ring.sums
            allowed = self._ratio_u * self._calls_in_window(index) + self._reserve_u
            if (sums[_RETRIES] + 1) * _SCALE <= allowed:
                ring.add(slot, _RETRIES)
                self._retries_total += 1
                return True
            ring.add(slot, _REFUSED)
            self._refused_total += 1
            # A refusal after a full window without any starts a new episode: worth one
            # log line, the refusals that follow are not.
            self._episodes.refused(now)
            return False
        finally:
            lock.release()

    def take_refusal_notice(self, endpoint: str) -> str | None:
        """The one-line message for the start of a refusal episode, once, else ``None``.

        An episode starts with a refusal when no retry was refused in the ``window``
        before it. Call this after :meth:`try_retry` returned ``False``: exactly one
        caller per episode gets the message, to log it.
        """
        if not self._episodes.pending:  # unlocked peek: the common answer costs no lock
            return None
        with self._lock:
            if not self._episodes.take():
                return None
            calls = self._calls_in_window(self._ring.head)
            retries = self._ring.sums[_RETRIES]
        policy = self.policy
        return (
            f"retry budget exhausted for endpoint {endpoint!r}: refusing retries "
            f"({retries} retries for {calls} calls in the last {policy.window:g}s; "
            f"allowed {policy.ratio:g} per call plus {policy.min_per_second:g}/s)"
        )

    @property
    def refused_total(self) -> int:
        """Retries refused since the state was created."""
        return self._refused_total

    def snapshot(self) -> RetryBudgetSnapshot:
        """The counters now, for health checks and metrics."""
        now = self._now()
        index = floor(now * self._per_second)
        with self._lock:
            self._ring.slot(index)
            _, retries, refused = self._ring.sums
            calls = self._calls_in_window(index)
            room = (self._ratio_u * calls + self._reserve_u) // _SCALE
            return RetryBudgetSnapshot(
                calls=calls,
                retries=retries,
                refused=refused,
                available=max(0, room - retries),
                refusing=self._episodes.ongoing(now),
                calls_total=self._counted(),
                retries_total=self._retries_total,
                refused_total=self._refused_total,
            )
