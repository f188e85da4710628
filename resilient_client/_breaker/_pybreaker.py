"""pybreaker's side of our breakers: its state names, and a read-only storage view.

A ``pybreaker.CircuitBreakerListener`` given to a breaker is notified through a real
``pybreaker.CircuitBreaker`` mirroring the endpoint, whose storage is this view of our
state (pybreaker's mutators are no-ops: our state machine is the only writer).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pybreaker

from ._circuit import CLOSED, HALF_OPEN, OPEN

if TYPE_CHECKING:
    from ._breaker import EndpointBreaker

__all__ = ["PYBREAKER_NAMES", "PybreakerView"]

PYBREAKER_NAMES = {
    CLOSED: pybreaker.STATE_CLOSED,
    OPEN: pybreaker.STATE_OPEN,
    HALF_OPEN: pybreaker.STATE_HALF_OPEN,
}


class PybreakerView(pybreaker.CircuitBreakerStorage):
    """A read-only ``pybreaker`` storage over an :class:`EndpointBreaker`.

    pybreaker's mutators are no-ops: our state machine is the only writer (the counter
    resets pybreaker performs on a transition have already happened in ours).
    """

    def __init__(self, breaker: EndpointBreaker) -> None:
        super().__init__("resilient-client")
        self._breaker = breaker
        self.reported: str = PYBREAKER_NAMES[CLOSED]

    @property
    def state(self) -> str:
        # The state pybreaker was last told of, so its own getter never re-notifies.
        return self.reported

    @state.setter
    def state(self, state: str) -> None:
        pass

    @property
    def counter(self) -> int:
        return self._breaker.snapshot().failures

    @property
    def success_counter(self) -> int:
        return self._breaker.snapshot().successes

    @property
    def opened_at(self) -> datetime | None:
        wall = self._breaker._opened_wall
        return None if wall is None else datetime.fromtimestamp(wall, UTC)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        pass
