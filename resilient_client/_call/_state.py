"""The state of a :class:`~resilient_client._call._call.Call`, declared once for the mixins.

:class:`Call` is one slotted object over three modules; its two mixins
(``_call_decisions.py``, ``_call_end.py``) read and write the state it keeps, and both
subclass :class:`CallState` so the type checker knows that state - one declaration, not
one per mixin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from .._breaker import EndpointBreaker
    from .._budget import RetryBudgetState
    from .._bulkhead import BulkheadState
    from .._clock import Clock
    from .._policy import Policy
    from .._retry._rules import Verdict
    from .._throttle import ThrottleState
    from ..problems import Problem
    from ._endpoints import Endpoint
    from ._events import Event, Observer
    from ._pipeline import Pipeline

__all__ = ["CallState", "new_tuple"]

# Hot records (events, ResilienceInfo) are built with tuple.__new__ directly: a
# NamedTuple's own __new__ is a Python frame, and these are built on every call.
new_tuple = tuple.__new__


class CallState:
    """What every part of a call reads: declared for the type checker only."""

    if TYPE_CHECKING:
        _pipeline: Pipeline
        _attempt_started: float
        _fallback_asked: bool
        _judged: object
        _problem: Problem | None
        attempts: int
        breaker: EndpointBreaker | None
        budget: RetryBudgetState | None
        bulkhead: BulkheadState | None
        clock: Clock
        correlation_id: str
        deadline: float | None
        endpoint: Endpoint
        fallback_used: bool
        idempotency_key: str | None
        limit: float | None
        observers: tuple[Observer, ...]
        planned_delay: float
        policy: Policy
        replayable: bool
        request: httpx.Request
        retry_reasons: tuple[str, ...]
        started: float
        stop_reason: str | None
        throttle: ThrottleState | None
        verdict: Verdict | None

        def _emit(self, event: Event) -> None: ...
        def problem(self, response: httpx.Response) -> Problem: ...
        def judge(self, outcome: httpx.Response | BaseException) -> Verdict: ...

    else:
        # Empty slots keep Call free of a __dict__. Hidden from mypy, which would refuse
        # the mixins' own assignments to Call's slots; tests/unit/test_call_layout.py
        # checks the declarations above against Call.__slots__ instead.
        __slots__ = ()
