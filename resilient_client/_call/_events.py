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

from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypeAlias

import httpx

if TYPE_CHECKING:
    from .._policy import Policy

__all__ = [
    "AttemptEnded",
    "CallView",
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


class CallView:
    """What observers see of a call: read-only, but for :attr:`observation`.

    One per observed call, made only when the call has observers. Its properties read the
    call as it is when asked (``attempts`` grows, ``stop_reason`` is set at the end).
    """

    __slots__ = ("_call", "observation")

    def __init__(self, call: Any) -> None:
        self._call = call
        #: The observers' scratch slot for this call (``None`` at its start).
        self.observation: Any = None

    @property
    def endpoint(self) -> str:
        """The endpoint key the call matched, e.g. ``"GET /v1/users/{id}"``."""
        return self._call.endpoint.key  # type: ignore[no-any-return]

    @property
    def request(self) -> httpx.Request:
        """The request the attempts send (an observer may add headers at
        ``AttemptStarted``, e.g. trace context; nothing else should change it)."""
        return self._call.request  # type: ignore[no-any-return]

    @property
    def policy(self) -> Policy:
        """The call's effective policy (endpoint policy and per-call override merged)."""
        return self._call.policy  # type: ignore[no-any-return]

    @property
    def attempts(self) -> int:
        """Attempts sent so far."""
        return self._call.attempts  # type: ignore[no-any-return]

    @property
    def correlation_id(self) -> str:
        return self._call.correlation_id  # type: ignore[no-any-return]

    @property
    def idempotency_key(self) -> str | None:
        return self._call.idempotency_key  # type: ignore[no-any-return]

    @property
    def retry_reasons(self) -> tuple[str, ...]:
        """Why each retry so far was made (``"status_503"``, ``"timeout"``...)."""
        return self._call.retry_reasons  # type: ignore[no-any-return]

    @property
    def stop_reason(self) -> str | None:
        """Why the call ended where it did (its stop rule, else its last verdict)."""
        return self._call.final_reason  # type: ignore[no-any-return]

    @property
    def started(self) -> float:
        """When the call started, on the pipeline clock's ``monotonic()`` scale."""
        return self._call.started  # type: ignore[no-any-return]

    @property
    def elapsed(self) -> float:
        """Seconds since the call started, waits included."""
        return self._call.clock.monotonic() - self._call.started  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<CallView {self.endpoint!r} attempts={self.attempts}>"


class Observer(Protocol):
    """Receives every event of the pipelines it is given to. Must not raise."""

    def on_event(self, call: CallView | None, event: Event) -> None: ...
