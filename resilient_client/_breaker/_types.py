"""The values a breaker hands out and reports: permits, rejections, snapshots, listeners."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ._circuit import BreakerState

if TYPE_CHECKING:
    from ._breaker import EndpointBreaker

__all__ = ["BreakerListener", "BreakerSnapshot", "Permit", "Rejection"]


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make one attempt; hand it back once to ``record`` or ``release``.

    ``token`` names the half-open probe slot this permit holds (``None`` = an ordinary
    call); ``shared`` says the shared storage issued it. A value: the closed-state permits
    of one generation may be one and the same object.
    """

    endpoint: str
    generation: int
    token: str | None = None
    shared: bool = False

    @property
    def probe(self) -> bool:
        return self.token is not None


@dataclass(frozen=True, slots=True)
class Rejection:
    """The breaker refused the call: raise ``CircuitOpenError(endpoint, retry_at)``.

    ``retry_at`` (``time.monotonic()`` seconds): when open, the end of the break; in
    half-open with every probe slot taken, when the oldest probe's slot is reclaimed at
    the latest (a probe that finishes sooner frees it sooner).
    """

    endpoint: str
    retry_at: float
    state: BreakerState


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """One endpoint's breaker, as this process sees it.

    ``failures``: the failure streak (``"consecutive"``) or the failed calls in the window;
    ``calls``/``slow_calls``: calls and slow calls in the window (0 in consecutive mode);
    ``failure_rate``/``slow_call_rate``: their shares, ``None`` with no window or no calls;
    ``successes``: successful probes of this half-open period; ``retry_at``: monotonic
    instant of the next possible probe (``None`` = now); ``shared``: the counts come from
    the shared storage (``False`` without one, or while it is unreachable).
    """

    endpoint: str
    state: BreakerState
    failures: int
    successes: int
    calls: int
    slow_calls: int
    failure_rate: float | None
    slow_call_rate: float | None
    retry_at: float | None
    probes_in_flight: int
    shared: bool


class BreakerListener(Protocol):
    """Told of every state change this process observes (pybreaker's method name)."""

    def state_change(self, breaker: EndpointBreaker, old: BreakerState, new: BreakerState) -> None:
        """Called after the change, outside the breaker's lock; exceptions are logged."""
