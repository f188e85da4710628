"""Typed events: every decision the pipeline makes, as a frozen record.

Observers (OpenTelemetry, or an integrator's own) receive ``(call, event)``; ``call`` is
the live :class:`~resilient_client._pipeline.Call` (read its ``endpoint``, ``request``,
``attempts``, ``correlation_id``...), or ``None`` for events that belong to no call
(a breaker changing state). Events are built only when at least one observer is
configured, so an unobserved pipeline pays nothing for them.

An observer may keep per-call state in ``call.observation`` (one slot, ``None`` at the
start of each call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias

import httpx

if TYPE_CHECKING:
    from ._pipeline import Call

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


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A call entered the pipeline (after endpoint and policy were resolved)."""


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """Attempt ``attempt`` (1-based) is about to be sent; headers may still be added."""

    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptEnded:
    """An attempt produced an outcome: ``response``, or the ``error`` it raised."""

    attempt: int
    response: httpx.Response | None
    error: BaseException | None
    duration: float


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """The outcome of ``attempt`` will be retried after ``delay`` seconds, for ``reason``."""

    attempt: int
    reason: str
    delay: float


@dataclass(frozen=True, slots=True)
class RetryRefused:
    """A retry was wanted but refused: ``reason`` is ``"budget"`` or ``"breaker"``."""

    attempt: int
    reason: Literal["budget", "breaker"]


@dataclass(frozen=True, slots=True)
class CallRejected:
    """The call was refused locally before reaching the network."""

    kind: Literal["breaker", "bulkhead", "throttle"]


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over: the final ``response``, or the ``error`` raised to the caller."""

    response: httpx.Response | None
    error: BaseException | None
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class BreakerStateChanged:
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
