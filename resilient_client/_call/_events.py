"""Typed events: every decision the pipeline makes, as a frozen record.

Observers (OpenTelemetry, or an integrator's own) receive ``(call, event)``; ``call`` is
the live :class:`~resilient_client._call._call.Call` (read its ``endpoint``, ``request``,
``attempts``, ``correlation_id``...), or ``None`` for events that belong to no call
(a breaker changing state). Events are built only when at least one observer is
configured, so an unobserved pipeline pays nothing for them; they are NamedTuples, the
cheapest immutable record to build (a frozen dataclass costs several times more).

An observer may keep per-call state in ``call.observation`` (one slot, ``None`` at the
start of each call).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, TypeAlias

import httpx

if TYPE_CHECKING:
    from ._call import Call

__all__ = [
    "AttemptEnded",
    "AttemptStarted",
    "BreakerStateChanged",
    "CallEnded",
    "CallRejected",
    "CallStarted",
    "Event",
    "Observer",
    "RetryRefused",
    "RetryScheduled",
]


class CallStarted(NamedTuple):
    """A call entered the pipeline (after endpoint and policy were resolved)."""


class AttemptStarted(NamedTuple):
    """Attempt ``attempt`` (1-based) is about to be sent; headers may still be added."""

    attempt: int


class AttemptEnded(NamedTuple):
    """An attempt produced an outcome: ``response``, or the ``error`` it raised."""

    attempt: int
    response: httpx.Response | None
    error: BaseException | None
    duration: float


class RetryScheduled(NamedTuple):
    """The outcome of ``attempt`` will be retried after ``delay`` seconds, for ``reason``."""

    attempt: int
    reason: str
    delay: float


class RetryRefused(NamedTuple):
    """A retry was wanted but refused: ``reason`` is ``"budget"`` or ``"breaker"``."""

    attempt: int
    reason: Literal["budget", "breaker"]


class CallRejected(NamedTuple):
    """The call was refused locally before reaching the network."""

    kind: Literal["breaker", "bulkhead", "throttle"]


class CallEnded(NamedTuple):
    """The call is over: the final ``response``, or the ``error`` raised to the caller."""

    response: httpx.Response | None
    error: BaseException | None
    fallback: bool = False


class BreakerStateChanged(NamedTuple):
    """An endpoint's breaker moved from ``old`` to ``new`` (``closed``/``open``/``half_open``)."""

    endpoint: str
    old: str
    new: str


Event: TypeAlias = (
    CallStarted
    | AttemptStarted
    | AttemptEnded
    | RetryScheduled
    | RetryRefused
    | CallRejected
    | CallEnded
    | BreakerStateChanged
)


class Observer(Protocol):
    """Receives every event of the pipelines it is given to. Must not raise."""

    def on_event(self, call: Call | None, event: Event) -> None: ...
