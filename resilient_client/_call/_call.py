"""One logical call: the core shared by the sync and async drivers.

The drivers in ``_transport.py`` only send, read, close, sleep, wait for slots and
await; every decision about a call - its headers, this attempt's timeouts, whether an
outcome is retried, how long to wait, when to stop, what the caller sees - is a method
of :class:`Call`, over the injected clock. The retry loop itself is tenacity's
(``_loop.py``), fed by these decisions; every decision is also announced as a typed
event (``_events.py``) to the pipeline's observers.

:class:`Call` is one object in three modules: this one holds its state, the headers it
sets once and the start of each attempt; ``_call_decisions.py`` admission, what an
attempt's outcome means (to the throttle, the observers and the breaker) and retry
decisions; ``_call_end.py`` what the caller sees at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from .. import _context
from .._context import current_correlation_id
from .._headers import LOWER_NAME, Triple, add_header, first_value, triples
from .._idempotency import IdempotencyRule, new_idempotency_key
from .._retry._rules import (
    Verdict,
    status_is_candidate,
)
from ..problems import (
    DEFAULT_MAX_BODY_BYTES,
    server_retry_hint,
)
from ._decisions import CallDecisions
from ._end import CallEnd
from ._endpoints import PhaseTable, phase_table
from ._events import (
    AttemptStarted,
    CallStarted,
    Event,
)
from ._state import new_tuple

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..problems import Problem
    from ._pipeline import Pipeline

_CALL_STARTED = CallStarted()

__all__ = ["EXT_EXPLICIT_TIMEOUT", "EXT_IDEMPOTENCY_KEY", "EXT_POLICY", "EXT_STREAM", "Call"]

# Request extensions the pipeline reads. The first two are public (API.md §1).
EXT_POLICY = "resilience"
EXT_IDEMPOTENCY_KEY = "idempotency_key"
# Set by ResilientClient: whether the caller streams the body, and whether the
# request's timeout was given explicitly rather than httpx's client default.
EXT_STREAM = "resilient_client.stream"
EXT_EXPLICIT_TIMEOUT = "resilient_client.explicit_timeout"

# Error bodies up to the parser's own bound are read inside the attempt, so the retry
# decision can see the problem; larger ones are judged on status and headers alone.
ERROR_BODY_LIMIT = DEFAULT_MAX_BODY_BYTES


class Call(CallDecisions, CallEnd):
    """One logical call: its attempts, its deadline and the decisions about them."""

    __slots__ = (
        "_attempt_cap",
        "_attempt_started",
        "_fallback_asked",
        "_judged",
        "_phases",
        "_pipeline",
        "_problem",
        "attempts",
        "breaker",
        "budget",
        "bulkhead",
        "clock",
        "correlation_id",
        "deadline",
        "endpoint",
        "fallback_used",
        "idempotency_key",
        "limit",
        "observation",
        "observers",
        "planned_delay",
        "policy",
        "replayable",
        "request",
        "retry_reasons",
        "started",
        "stop_reason",
        "throttle",
        "verdict",
    )

    def __init__(self, pipeline: Pipeline, request: httpx.Request) -> None:
        self._pipeline = pipeline
        self.endpoint = endpoint = pipeline.endpoints.match(request)
        extensions = request.extensions
        policy = endpoint.policy
        override = extensions.get(EXT_POLICY)
        if override is not None:
            policy = pipeline.overridden(policy, override)
        self.policy = policy
        telemetry = pipeline.telemetry
        if telemetry is not None and not telemetry.wants_call():
            self.observers = pipeline.extra_observers
        else:
            self.observers = pipeline.observers
        self.clock = clock = pipeline.clock
        self.request = request
        self.started = self._attempt_started = started = clock.monotonic()
        explicit = extensions.get(EXT_EXPLICIT_TIMEOUT)
        self._phases: PhaseTable
        # The endpoint's state, minus what a per-call override switched off (an override
        # cannot change its parameters: they are the endpoint's).
        if override is None:  # the endpoint's state as is
            self.breaker = endpoint.breaker
            self.bulkhead = endpoint.bulkhead
            self.budget = endpoint.budget
            self.throttle = endpoint.throttle
            total = endpoint.total
            self._attempt_cap = endpoint.attempt
            self._phases = endpoint.phases
            idempotency = endpoint.idempotency
        else:
            self.breaker = endpoint.breaker if policy.breaker is not None else None
            self.bulkhead = endpoint.bulkhead if policy.bulkhead is not None else None
            self.budget = endpoint.budget if policy.budget is not None else None
            self.throttle = endpoint.throttle if policy.throttle is not None else None
            timeouts = policy.timeouts
            total, self._attempt_cap = timeouts.total, timeouts.attempt
            if not explicit:
                self._phases = phase_table(timeouts)
            idempotency = (
                endpoint.idempotency
                if policy.idempotency is endpoint.policy.idempotency  # merge kept it
                else IdempotencyRule(policy.idempotency)
            )
        if explicit:  # a timeout= given for the call, or the client's
            self._phases = phase_table(extensions.get("timeout") or {})
        self.deadline = None if total is None else started + total
        self.attempts = 0
        self.limit: float | None = None  # the current attempt's, set by time_attempt
        self.fallback_used = False
        self._fallback_asked = False
        self.retry_reasons: tuple[str, ...] = ()
        self.stop_reason: str | None = None
        self.verdict: Verdict | None = None
        self.planned_delay = 0.0  # also the last retry's delay, for "decorrelated"
        self.observation: Any = None
        self._judged: object = None
        self._problem: Problem | None = None
        self._set_headers(idempotency)
        # Asked now, not when a retry is considered: sending reads a one-shot stream into
        # memory, after which it would look replayable (it is not: it was sent once).
        try:
            request.content  # noqa: B018 - raises if the body is a one-shot stream
            self.replayable = True
        except pipeline.flavor.RequestNotRead:
            self.replayable = False
        if self.observers:
            self._emit(_CALL_STARTED)

    def _emit(self, event: Event) -> None:
        for observer in self.observers:
            observer.on_event(self, event)

    # -- headers set once per call -------------------------------------------------

    def _set_headers(self, rule: IdempotencyRule) -> None:
        """Fix the call's idempotency key and correlation id, sending each that the
        caller did not: set once, the same on every attempt."""
        request = self.request
        headers = request.headers
        stored: list[Triple] | None = getattr(headers, "_list", None)  # triples(), inlined
        names = list(map(LOWER_NAME, triples(headers) if stored is None else stored))
        # A key the caller sent counts on any method: a keyed PUT's 409 is retried too.
        key = first_value(headers, rule.lower_name) if rule.lower_name in names else None
        if key is not None:
            key = key.strip('"')
        else:
            key = request.extensions.get(EXT_IDEMPOTENCY_KEY)
            if key is None:
                if request.method in rule.methods:
                    key = new_idempotency_key()
            elif not isinstance(key, str) or not key:
                raise TypeError(f'extensions["{EXT_IDEMPOTENCY_KEY}"] must be a non-empty str')
            if key is not None:
                headers[rule.header] = rule.encode(key)
                names.append(rule.lower_name)
                # Read again: the correlation header goes where this one went, whether
                # the store changed in place or was replaced.
                stored = getattr(headers, "_list", None)
        self.idempotency_key = key
        pipeline = self._pipeline
        if pipeline.correlation_header is None:  # none on the wire; logs and spans keep one
            self.correlation_id = current_correlation_id() or _context.new_correlation_id()
            return
        lower = pipeline.correlation_key
        present = first_value(headers, lower) if lower in names else None
        if present is not None:
            self.correlation_id = present
            return
        self.correlation_id = value = current_correlation_id() or _context.new_correlation_id()
        # ASCII: correlation_id() checks a caller's id; ours is hex.
        if stored is None:
            add_header(headers, pipeline.correlation_raw, lower, value)
        else:  # add_header(), inlined
            stored.append((pipeline.correlation_raw, lower, value.encode("ascii")))

    # -- one attempt ----------------------------------------------------------------

    def time_attempt(self) -> None:
        """Fix the next attempt's :attr:`limit`: its cap, or what is left of the deadline
        if that is less. ``DeadlineExceeded`` if nothing is left - asked before the breaker
        and before the attempt is announced, so a call out of time counts no attempt."""
        limit = self._attempt_cap
        if self.deadline is not None:
            if self.attempts == 0 and self.bulkhead is None:
                # Nothing ran since the call started (no slot waited for): the whole
                # deadline is left, without reading the clock again.
                left = self.deadline - self.started
            else:
                left = self.deadline - self.clock.monotonic()
            if left <= 0:
                raise self.deadline_exceeded()
            if limit is None or left < limit:
                limit = left
        self.limit = limit

    def start_attempt(self) -> httpx.Request:
        """Set the attempt's timeouts, clipped to its :attr:`limit`, and count it."""
        request = self.request
        now = self.clock.monotonic()
        limit = self.limit
        phases, longest = self._phases
        if limit is None or limit >= longest:
            request.extensions["timeout"] = phases  # nothing to clip: share the table
        else:
            request.extensions["timeout"] = self._clipped_timeouts(phases, limit)
        if self.attempts == 0 and self.budget is not None:
            self.budget.record_call(now)
        self.attempts += 1
        self._problem = None
        self._attempt_started = now
        if self.observers:
            self._emit(new_tuple(AttemptStarted, (self.attempts,)))
        return request

    def _clipped_timeouts(
        self, phases: Mapping[str, float | None], limit: float
    ) -> Mapping[str, float | None]:
        return {
            phase: limit if value is None or value > limit else value
            for phase, value in phases.items()
        }

    def reads_body(self, response: httpx.Response) -> bool:
        """Whether the driver reads the body inside the attempt.

        Always when the caller does not stream (so a connection dropped mid-body is an
        attempt failure that can be retried); for streamed calls only a small error body
        that may be retried, so the decision can see its problem. Never when the body is
        in memory already.
        """
        if response.is_stream_consumed:
            return False  # already in memory (an in-process transport, a cache)
        if self.request.extensions.get(EXT_STREAM) is False:
            return True
        retry = self.policy.retry
        status = response.status_code
        if retry is None or status < 400:
            return False
        hint = server_retry_hint(response.headers)
        if not status_is_candidate(status, self.idempotency_key is not None, retry, hint):
            return False
        length = response.headers.get("content-length")
        return length is not None and length.isdigit() and int(length) <= ERROR_BODY_LIMIT
