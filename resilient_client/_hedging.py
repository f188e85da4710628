"""Hedging: a second attempt when the first is slow, the first answer winning.

:class:`Hedging` is the policy; :class:`HedgeState` what one endpoint's calls share (its
latency sketch, for ``delay="p95"``); :class:`Lane` one attempt of a race. The drivers
(``_transport.py``) run the race; every rule they follow is here:

- which calls may hedge (:func:`may_hedge`): an idempotent method, or a keyed call, with
  a body that can be sent again (a one-shot stream cannot);
- when a hedge starts (:meth:`HedgeState.delay`): ``delay`` seconds after the last
  attempt of the race started, fixed or the endpoint's observed p95 latency;
- whether it may (the driver asks the call, ``Call.grants_hedge``): the endpoint's retry
  budget must grant a retry, the breaker admit it and the deadline leave time for it;
  a refused hedge is simply not made;
- which outcome wins (:func:`ends_race`): the first *final* one - a success, or an
  answer that would not be retried. A retryable failure while another attempt is still
  on its way does not end the race: that attempt goes on, and the failure is discarded.
  When the last attempt in flight fails, the race ends with that failure and the retry
  rules take it from there as for any attempt.

Losers are cancelled and report :class:`HedgeCancelled` (a ``BaseException``, so a
breaker ignores it and telemetry calls it cancelled, not failed); it is never raised
to the caller.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._retry import IDEMPOTENT_METHODS

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from ._retry import Verdict

__all__ = [
    "HedgeCancelled",
    "HedgeState",
    "Hedging",
    "Lane",
    "LatencySketch",
    "ends_race",
    "may_hedge",
    "next_wait",
]


_Seconds = Annotated[float, Field(gt=0.0, le=3600.0, allow_inf_nan=False)]


class Hedging(BaseModel):
    """Hedge slow attempts: start another if an attempt has not answered after ``delay``.

    ``delay``: seconds to wait for an attempt before starting the next, ``> 0`` (default
    0.5); or ``"p95"``: the endpoint's observed 95th percentile attempt latency (of its
    last 256 answered attempts), never below ``min_delay``, and ``initial_delay`` until
    ``min_samples`` attempts have answered. ``max_hedges``: how many extra attempts one
    race may start, 1 to 4 (default 1). Only idempotent or keyed calls with a replayable
    body hedge; each hedge is a retry for the retry budget and counts in
    ``ResilienceInfo.attempts`` (and so against ``Retry.max_attempts`` for the retries
    after it).

    Raises ``pydantic.ValidationError`` for a value out of range, naming the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    delay: _Seconds | Literal["p95"] = 0.5
    max_hedges: int = Field(default=1, ge=1, le=4)
    min_delay: float = Field(default=0.01, gt=0.0, le=3600.0, allow_inf_nan=False)
    initial_delay: float = Field(default=0.5, gt=0.0, le=3600.0, allow_inf_nan=False)
    min_samples: int = Field(default=20, ge=1, le=256)


class HedgeCancelled(BaseException):  # reported for a loser, never raised to the caller
    """The attempt lost the hedge race and was cancelled."""


_SAMPLES = 256  # the sketch's bound: the last 256 answered attempts
_REFRESH = 16  # the p95 is recomputed once per 16 new samples, not per call


class LatencySketch:
    """The last :data:`_SAMPLES` attempt latencies of one endpoint, and their p95.

    Bounded memory; appends take no lock (``deque.append`` is one C step); the p95 is
    recomputed (a sort of at most 256 floats) once per :data:`_REFRESH` new samples.
    """

    __slots__ = ("_count", "_lock", "_p95", "_p95_at", "_samples")

    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=_SAMPLES)
        self._count = 0
        self._p95 = 0.0
        self._p95_at = -_REFRESH
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)
        self._count += 1  # (a count lost to a race only delays a refresh)

    def __len__(self) -> int:
        return len(self._samples)

    def p95(self) -> float:
        """The 95th percentile of the samples kept (nearest rank); 0.0 with none."""
        if self._count - self._p95_at >= _REFRESH:
            with self._lock:
                ordered = sorted(self._samples)
                if ordered:
                    self._p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
                self._p95_at = self._count
        return self._p95


class HedgeState:
    """One endpoint's hedging: its policy and, for ``delay="p95"``, its latency sketch."""

    __slots__ = ("policy", "sketch")

    def __init__(self, policy: Hedging) -> None:
        self.policy = policy
        self.sketch = LatencySketch() if policy.delay == "p95" else None

    def delay(self) -> float:
        """Seconds to wait for an attempt before hedging it (see :class:`Hedging`)."""
        policy = self.policy
        sketch = self.sketch
        if sketch is None:
            return policy.delay  # type: ignore[return-value] # a number without a sketch
        if len(sketch) < policy.min_samples:
            return policy.initial_delay
        return max(policy.min_delay, sketch.p95())

    def answered(self, seconds: float) -> None:
        """An attempt of the endpoint answered after ``seconds``: feed the p95."""
        if self.sketch is not None:
            self.sketch.add(seconds)


def may_hedge(method: str, keyed: bool, replayable: bool) -> bool:
    """Whether a call may send concurrent attempts: safe to repeat (an idempotent method,
    or a key), and a body that can be sent again."""
    return replayable and (keyed or method in IDEMPOTENT_METHODS)


def next_wait(hedges: int, max_hedges: int, delay: float) -> float | None:
    """How long to wait for an outcome before the next hedge; ``None``: no more hedges,
    wait for the attempts in flight."""
    return delay if hedges < max_hedges else None


def ends_race(
    outcome: httpx.Response | BaseException,
    others: int,
    judge: Callable[[httpx.Response | BaseException], Verdict],
) -> bool:
    """Whether ``outcome`` ends the race, ``others`` attempts being still in flight:
    it does when nothing else runs, or when it is final - not to be retried by the call's
    rules (``judge``: the call's verdict on an outcome)."""
    return others == 0 or not judge(outcome).retry


class Lane:
    """One attempt of a race: what the driver and the call need to finish it apart from
    the others (its number, start, limit, request, breaker permit, fault...)."""

    __slots__ = (
        "cancelled",
        "fault",
        "hedge",
        "limit",
        "number",
        "permit",
        "request",
        "started",
        "task",
    )

    def __init__(
        self, number: int, hedge: bool, started: float, limit: float | None, permit: Any
    ) -> None:
        self.number = number
        self.hedge = hedge
        self.started = started
        self.limit = limit
        self.permit = permit
        self.request: Any = None
        self.fault: str | None = None  # the chaos fault put in its place, if any
        self.cancelled = False
        self.task: Any = None  # the async driver's task
