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
    from ..problems import Problem
    from ._info import ResilienceInfo

__all__ = [
    "AttemptEnded",
    "EVENT_TYPES",
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
    "listeners_by_event",
]


class CallStarted(NamedTuple):
    """A call entered the pipeline (after endpoint and policy were resolved)."""


class AttemptStarted(NamedTuple):
    """Attempt ``attempt`` (1-based) is about to be sent; headers may still be added.
    ``origin``: with failover (``rc.Failover``), the origin it goes to, e.g.
    ``"https://us.api.example.com"`` (``call.request`` is then the request sent there);
    ``None`` without: the request's own.
    ``hedge``: it is a hedge, sent while an earlier attempt is still on its way
    (``rc.Hedging``)."""

    attempt: int
    origin: str | None = None
    hedge: bool = False


class AttemptEnded(NamedTuple):
    """An attempt produced an outcome: ``response``, or the ``error`` it raised.
    ``injected`` names the fault chaos put in its place (``"503"``, ``"reset"``,
    ``"timeout"``), which never reached the server; ``None`` for a real attempt.
    ``hedge``: the attempt was a hedge. An attempt that lost a hedge race ends with a
    ``HedgeCancelled`` error (a ``BaseException``: cancelled, not failed)."""

    attempt: int
    response: httpx.Response | None
    error: BaseException | None
    duration: float
    injected: str | None = None
    hedge: bool = False


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
    """The call was refused locally before reaching the network: by its breaker, an
    operator's isolation of the endpoint (``"isolated"``), the bulkhead, the throttle or
    the rate limit."""

    kind: Literal["breaker", "isolated", "bulkhead", "throttle", "rate_limit"]


class CallEnded(NamedTuple):
    """The call is over: the final ``response``, or the ``error`` raised to the caller;
    ``info`` is the call's record, as ``rc.resilience_info()`` gives it (``None`` for a
    call cancelled from outside)."""

    response: httpx.Response | None
    error: BaseException | None
    fallback: bool = False
    info: ResilienceInfo | None = None


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

    One per observed call, made only when the call has observers. ``endpoint``,
    ``request``, ``provider``, ``started``, ``correlation_id`` and ``idempotency_key`` are
    fixed for the call's life; the properties read the call as it is when asked
    (``attempts`` grows, ``stop_reason`` is set at the end).
    """

    __slots__ = (
        "_call",
        "correlation_id",
        "endpoint",
        "idempotency_key",
        "observation",
        "provider",
        "request",
        "started",
    )

    def __init__(self, call: Any, provider: str) -> None:
        self._call = call
        #: The endpoint key the call matched, e.g. ``"GET /v1/users/{id}"``.
        self.endpoint: str = call.endpoint.key
        #: The request the attempts send (an observer may add headers at
        #: ``AttemptStarted``, e.g. trace context; nothing else should change it). With
        #: failover, the current attempt's (a copy addressed to its origin).
        self.request: httpx.Request = call.request
        #: The provider called: the URL's host, and its port when one is given.
        self.provider = provider
        #: When the call started, on the pipeline clock's ``monotonic()`` scale.
        self.started: float = call.started
        self.correlation_id: str = call.correlation_id
        self.idempotency_key: str | None = call.idempotency_key
        #: The observers' scratch slot for this call (``None`` at its start).
        self.observation: Any = None

    @property
    def policy(self) -> Policy:
        """The call's effective policy (endpoint policy and per-call override merged)."""
        return self._call.policy  # type: ignore[no-any-return]

    @property
    def attempts(self) -> int:
        """Attempts sent so far."""
        return self._call.attempts  # type: ignore[no-any-return]

    @property
    def hedges(self) -> int:
        """Hedges sent so far (``rc.Hedging``), counted in :attr:`attempts` too."""
        return self._call.hedges  # type: ignore[no-any-return]

    @property
    def retry_reasons(self) -> tuple[str, ...]:
        """Why each retry so far was made (``"status_503"``, ``"timeout"``...)."""
        return self._call.retry_reasons  # type: ignore[no-any-return]

    @property
    def stop_reason(self) -> str | None:
        """Why the call ended where it did (its stop rule, else its last verdict)."""
        return self._call.final_reason  # type: ignore[no-any-return]

    def problem(self, response: httpx.Response) -> Problem | None:
        """The problem of an attempt's error ``response`` whose body was read, parsed once
        per attempt (the retry decision reuses it); ``None`` for an unread body."""
        if not response.is_stream_consumed:
            return None  # parsing would consume what the caller is about to read
        return self._call.problem(response)  # type: ignore[no-any-return]

    @property
    def elapsed(self) -> float:
        """Seconds since the call started, waits included."""
        return self._call.clock.monotonic() - self.started  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<CallView {self.endpoint!r} attempts={self.attempts}>"


class Observer(Protocol):
    """Receives every event of the pipelines it is given to. Must not raise.

    An observer may also have an ``events`` attribute, a set of the event types it wants:
    it then receives only those, and the pipeline does not build the events nobody wants
    (an observer without one receives every event).
    """

    def on_event(self, call: CallView | None, event: Event) -> None: ...


EVENT_TYPES: tuple[type[Event], ...] = (
    CallStarted,
    AttemptStarted,
    AttemptEnded,
    RetryScheduled,
    RetryRefused,
    CallRejected,
    CallEnded,
    BreakerStateChanged,
)


def listeners_by_event(observers: tuple[Observer, ...]) -> dict[type[Event], tuple[Observer, ...]]:
    """For each event type, the observers that want it, in their order."""
    return {
        kind: tuple(
            o for o in observers if (wanted := getattr(o, "events", None)) is None or kind in wanted
        )
        for kind in EVENT_TYPES
    }
