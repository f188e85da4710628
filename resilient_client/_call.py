"""One logical call: the core shared by the sync and async drivers.

The drivers in ``_transport.py`` only send, read, close, sleep, wait for slots and
await; every decision about a call - its headers, this attempt's timeouts, whether an
outcome is retried, how long to wait, when to stop, what the caller sees - is a method
of :class:`Call`, over the injected clock. The retry loop itself is tenacity's
(``_loop.py``), fed by these decisions; every decision is also announced as a typed
event (``_events.py``) to the pipeline's observers.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import httpx

from . import _exceptions
from ._breaker import Outcome, Permit, Rejection, classify_for_breaker
from ._context import current_correlation_id
from ._endpoints import Endpoint, PhaseTable, phase_table
from ._events import (
    AttemptEnded,
    AttemptStarted,
    CallEnded,
    CallRejected,
    CallStarted,
    Event,
    RetryRefused,
    RetryScheduled,
)
from ._headers import add_header, first_value
from ._idempotency import new_idempotency_key
from ._info import ResilienceInfo
from ._logging import logger
from ._policy import Policy
from ._retry import (
    FINAL_SUCCESS,
    Failure,
    Verdict,
    backoff_delay,
    classify_exception,
    judge_failure,
    judge_status,
    status_is_candidate,
)
from .problems import (
    DEFAULT_MAX_BODY_BYTES,
    parse_problem,
    raise_for_error,
    retry_after_seconds,
    server_retry_hint,
)
from .problems._headers import response_request_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._pipeline import Pipeline
    from .problems import Problem

# Hot records are built with tuple.__new__ directly: a NamedTuple's own __new__ is a
# Python function, and these run on every call (events: on every observed attempt).
_new_tuple = tuple.__new__
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
# A success with no slow-call rule to time it against.
_PLAIN_SUCCESS: tuple[Outcome, float] = ("success", 0.0)
# Answers that say "overloaded, slow down": not accepted, for the adaptive throttle.
_OVERLOAD_STATUSES = frozenset({429, 503, 529})


@lru_cache(maxsize=64)
def _lower_name(header: str) -> bytes:
    """A header name as httpx's triples hold it, made once per name."""
    return header.lower().encode("latin-1")


def _notice(message: str | None, call: Call) -> None:
    """Log the start of a refusal episode (budget, bulkhead, throttle): once, not per call."""
    if message is not None:
        extra = {"endpoint": call.endpoint.key, "correlation_id": call.correlation_id}
        logger.warning(message, extra=extra)


class Call:
    """One logical call: its attempts, its deadline and the decisions about them."""

    __slots__ = (
        "_attempt_cap",
        "_attempt_started",
        "_fallback_asked",
        "_judged",
        "_observers",
        "_phases",
        "_pipeline",
        "_previous_delay",
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

    def __init__(
        self, pipeline: Pipeline, request: httpx.Request, endpoint: Endpoint, policy: Policy
    ) -> None:
        self._pipeline = pipeline
        telemetry = pipeline.telemetry
        if telemetry is not None and not telemetry.wants_call():
            self._observers = pipeline.extra_observers
        else:
            self._observers = pipeline.observers
        self.clock = clock = pipeline.clock
        self.request = request
        self.endpoint = endpoint
        self.policy = policy
        self.started = self._attempt_started = started = clock.monotonic()
        extensions = request.extensions
        explicit = extensions.get(EXT_EXPLICIT_TIMEOUT)
        self._phases: PhaseTable
        # The endpoint's state, minus what a per-call override switched off (an override
        # cannot change its parameters: they are the endpoint's).
        if policy is endpoint.policy:  # no per-call override: the endpoint's state as is
            self.breaker = endpoint.breaker
            self.bulkhead = endpoint.bulkhead
            self.budget = endpoint.budget
            self.throttle = endpoint.throttle
            total = endpoint.total
            self._attempt_cap = endpoint.attempt
            self._phases = endpoint.phases
        else:
            self.breaker = endpoint.breaker if policy.breaker is not None else None
            self.bulkhead = endpoint.bulkhead if policy.bulkhead is not None else None
            self.budget = endpoint.budget if policy.budget is not None else None
            self.throttle = endpoint.throttle if policy.throttle is not None else None
            timeouts = policy.timeouts
            total, self._attempt_cap = timeouts.total, timeouts.attempt
            if not explicit:
                self._phases = phase_table(timeouts)
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
        self.planned_delay = 0.0
        self.observation: Any = None
        self._previous_delay: float | None = None
        self._judged: object = None
        self._problem: Problem | None = None
        self.idempotency_key = self._set_idempotency_key()
        self.correlation_id = self._set_correlation_id()
        # Asked now, not when a retry is considered: sending reads a one-shot stream into
        # memory, after which it would look replayable (it is not: it was sent once).
        try:
            request.content  # noqa: B018 - raises if the body is a one-shot stream
            self.replayable = True
        except pipeline.flavor.RequestNotRead:
            self.replayable = False
        if self._observers:
            self._emit(_CALL_STARTED)

    def _emit(self, event: Event) -> None:
        for observer in self._observers:
            observer.on_event(self, event)

    # -- headers set once per call -------------------------------------------------

    def _set_idempotency_key(self) -> str | None:
        request = self.request
        idempotency = self.policy.idempotency
        key = request.extensions.get(EXT_IDEMPOTENCY_KEY)
        header = idempotency.header if idempotency is not None else "Idempotency-Key"
        # A key the caller sent counts on any method: a keyed PUT's 409 is retried too.
        present = first_value(request.headers, _lower_name(header))
        if present is not None:
            return present.strip('"')
        if key is None and idempotency is not None and request.method in idempotency.methods:
            key = new_idempotency_key()
        if key is None:
            return None
        if not isinstance(key, str) or not key:
            raise TypeError(f'extensions["{EXT_IDEMPOTENCY_KEY}"] must be a non-empty str')
        request.headers[header] = idempotency.encode(key) if idempotency is not None else key
        return key

    def _set_correlation_id(self) -> str | None:
        pipeline = self._pipeline
        if pipeline.correlation_header is None:
            return current_correlation_id()
        headers = self.request.headers
        key = pipeline.correlation_key
        present = first_value(headers, key)
        if present is not None:
            return present
        value = current_correlation_id() or os.urandom(16).hex()
        # ASCII: correlation_id() checks a caller's id; ours is hex.
        add_header(headers, pipeline.correlation_raw, key, value)
        return value

    # -- admission ------------------------------------------------------------------

    def shed(self) -> None:
        """Raise ``LoadShedError`` if the adaptive throttle sheds this call."""
        throttle = self.throttle
        if throttle is not None and throttle.should_reject():
            key = self.endpoint.key
            _notice(throttle.take_refusal_notice(key), self)
            raise self._rejected(
                self._pipeline.flavor.LoadShedError(key, request=self.request), "throttle"
            )

    def admitted(self, decision: Permit | Rejection) -> Permit:
        """The breaker's permit for the next attempt; ``CircuitOpenError`` if it refused."""
        if isinstance(decision, Rejection):
            error = self._pipeline.flavor.CircuitOpenError(
                decision.endpoint, decision.retry_at, request=self.request
            )
            raise self._rejected(error, "breaker")
        return decision

    def breaker_result(self, outcome: httpx.Response | BaseException) -> tuple[Outcome, float]:
        """What an attempt's outcome means to the breaker, and how long the attempt took."""
        assert self.breaker is not None
        policy = self.breaker.policy  # the endpoint's: an override only switches it off
        # The duration matters only to a slow-call rule: skip the clock read otherwise.
        if policy.slow_call_duration is None:
            if not isinstance(outcome, BaseException) and outcome.status_code < 400:
                return _PLAIN_SUCCESS  # the common case, decided without classifying
            duration = 0.0
        else:
            duration = self.clock.monotonic() - self._attempt_started
        if not isinstance(outcome, BaseException):
            return classify_for_breaker(policy, outcome.status_code), duration
        if classify_exception(outcome) is Failure.FATAL or not isinstance(outcome, Exception):
            return "ignored", duration  # ours, a bad URL, or cancelled: says nothing of health
        return "failure", duration

    def bulkhead_wait(self) -> float:
        """Seconds a call may wait for a bulkhead slot: ``max_wait``, cut to the deadline."""
        assert self.bulkhead is not None  # asked only of calls that have one
        wait = self.bulkhead.policy.max_wait
        if self.deadline is not None:
            wait = min(wait, self.deadline - self.clock.monotonic())
        return wait

    def bulkhead_full(self) -> Exception:
        """The error for a call that got no bulkhead slot in time."""
        assert self.bulkhead is not None
        key = self.endpoint.key
        _notice(self.bulkhead.take_refusal_notice(key), self)
        return self._rejected(
            self._pipeline.flavor.BulkheadFull(key, request=self.request), "bulkhead"
        )

    def _rejected(
        self, error: Exception, kind: Literal["breaker", "bulkhead", "throttle"]
    ) -> Exception:
        """``error``, for a call refused locally, once its observers were told."""
        if self._observers:
            self._emit(CallRejected(kind))
        return error

    # -- one attempt ----------------------------------------------------------------

    def time_attempt(self) -> None:
        """Fix the next attempt's :attr:`limit`: its cap, or what is left of the deadline
        if that is less. ``DeadlineExceeded`` if nothing is left - asked before the breaker
        and before the attempt is announced, so a call out of time counts no attempt."""
        limit = self._attempt_cap
        if self.deadline is not None:
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
        if self._observers:
            self._emit(_new_tuple(AttemptStarted, (self.attempts,)))
        return request

    def attempt_ended(self, outcome: httpx.Response | BaseException) -> None:
        """Record an attempt's outcome with the endpoint's state and the observers."""
        throttle = self.throttle
        failed = isinstance(outcome, BaseException)
        if throttle is not None and not failed:
            throttle.record(outcome.status_code not in _OVERLOAD_STATUSES)  # type: ignore[union-attr]
        if self._observers:
            duration = self.clock.monotonic() - self._attempt_started
            event: tuple[int, httpx.Response | None, BaseException | None, float] = (
                (self.attempts, None, outcome, duration)  # type: ignore[assignment]
                if failed
                else (self.attempts, outcome, None, duration)
            )
            self._emit(_new_tuple(AttemptEnded, event))

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

    # -- decisions --------------------------------------------------------------------

    def judge(self, outcome: httpx.Response | BaseException) -> Verdict:
        """Whether this outcome is retried (cached: tenacity and the fast path both ask)."""
        if self._judged is outcome:
            return self.verdict  # type: ignore[return-value] # set with _judged
        retry = self.policy.retry
        keyed = self.idempotency_key is not None
        method = self.request.method
        if isinstance(outcome, BaseException):
            verdict = judge_failure(classify_exception(outcome), method, keyed, self.replayable)
            if retry is None and verdict.retry:
                verdict = Verdict(False, "retry_off")
        elif outcome.status_code < 400:
            verdict = FINAL_SUCCESS
        elif retry is None:
            verdict = Verdict(False, "retry_off")
        else:
            hint = server_retry_hint(outcome.headers)
            problem = None
            # Only a body already read is parsed: parsing an unread stream would consume
            # what the caller is about to read.
            if outcome.is_stream_consumed and status_is_candidate(
                outcome.status_code, keyed, retry, hint
            ):
                problem = self.problem(outcome)
            verdict = judge_status(
                outcome.status_code, method, keyed, self.replayable, retry, hint, problem
            )
        self._judged = outcome
        self.verdict = verdict
        return verdict

    def problem(self, response: httpx.Response) -> Problem:
        """The response's problem, parsed once per attempt."""
        if self._problem is None:
            self._problem = parse_problem(response, now=self.clock.wall())
        return self._problem

    def next_delay(self, outcome: httpx.Response | BaseException) -> float:
        """The wait before the next attempt: the server's hint, else the backoff."""
        retry = self.policy.retry
        assert retry is not None  # only asked after a verdict to retry
        hint: float | None = None
        if retry.respect_retry_after and not isinstance(outcome, BaseException):
            hint = retry_after_seconds(outcome.headers, now=self.clock.wall())
            if hint is None and self._problem is not None:
                hint = self._problem.retry_after
        if hint is not None:
            delay = hint
            if hint > retry.max_retry_after:
                self.stop_reason = "retry_after_too_long"
        else:
            rnd = self.clock.random()
            delay = backoff_delay(retry.backoff, self.attempts, self._previous_delay, rnd)
        self.planned_delay = delay
        return delay

    def stops(self) -> bool:
        """Whether the call ends now with its last outcome instead of waiting to retry.

        Checked in order: attempts, Retry-After cap, deadline, an open breaker that would
        still refuse when the wait ends (no spinning against it), then the retry budget
        (last, so a retry token is spent only on a retry that really happens).
        """
        retry = self.policy.retry
        if self.stop_reason is None:
            if retry is None or self.attempts >= retry.max_attempts:
                self.stop_reason = "max_attempts"
            elif self.deadline is not None and (
                self.clock.monotonic() + self.planned_delay >= self.deadline
            ):
                self.stop_reason = "deadline"
            elif self._breaker_refuses():
                self.stop_reason = "breaker"
            elif not self._budget_allows():
                self.stop_reason = "budget"
        if self.stop_reason is not None:
            return True
        assert self.verdict is not None
        reason = self.verdict.reason
        self.retry_reasons += (reason,)
        self._previous_delay = self.planned_delay
        if self._observers:
            self._emit(RetryScheduled(self.attempts, reason, self.planned_delay))
        return False

    def _breaker_refuses(self) -> bool:
        if self.breaker is None:
            return False
        retry_at = self.breaker.retry_at()
        if retry_at is None or retry_at <= self.clock.monotonic() + self.planned_delay:
            return False
        if self._observers:
            self._emit(RetryRefused(self.attempts, "breaker"))
        return True

    def _budget_allows(self) -> bool:
        budget = self.budget
        if budget is None or budget.try_retry():
            return True
        _notice(budget.take_refusal_notice(self.endpoint.key), self)
        if self._observers:
            self._emit(RetryRefused(self.attempts, "budget"))
        return False

    # -- the end ------------------------------------------------------------------------

    def fallback(self, failure: httpx.Response | BaseException) -> httpx.Response | None:
        """The policy's fallback answer for a failed call, or ``None`` (no fallback).

        Asked at most once per call: a final 5xx that the fallback declined does not ask
        again when ``raise_for_error`` turns it into an ``ApiError``.
        """
        fallback = self.policy.fallback
        if fallback is None or self._fallback_asked:
            return None
        self._fallback_asked = True
        response = fallback(self.request, failure)
        if response is None:
            return None
        self.fallback_used = True
        response.request = self.request
        response.extensions["resilience"] = self.info(response)
        return response

    def ended(self, response: httpx.Response | None, error: BaseException | None) -> None:
        """Announce the end of the call, once: the drivers' last word on every path."""
        if self._observers:
            self._emit(_new_tuple(CallEnded, (response, error, self.fallback_used)))

    @property
    def final_reason(self) -> str | None:
        """Why the call ended where it did: its stop reason, else its last verdict's."""
        if self.stop_reason is None and self.verdict is not None:
            return self.verdict.reason
        return self.stop_reason

    def info(self, response: httpx.Response | None = None) -> ResilienceInfo:
        request_id = None if response is None else response_request_id(response.headers)
        return _new_tuple(
            ResilienceInfo,
            (
                self.endpoint.key,
                self.attempts,
                self.clock.monotonic() - self.started,
                self.idempotency_key,
                self.correlation_id,
                request_id,
                self.retry_reasons,
                self.final_reason,
                self.fallback_used,
            ),
        )

    def conclude(self, outcome: httpx.Response | BaseException) -> httpx.Response:
        """The call's last outcome as the caller sees it: :meth:`finish`ed, the fallback's
        answer for a failure, or the failure raised."""
        if not isinstance(outcome, BaseException):
            return self.finish(outcome)
        error = outcome
        if (
            isinstance(error, self._pipeline.flavor.TimeoutException)
            and not isinstance(error, _exceptions.DeadlineExceededMixin)
            and self.deadline_passed()
        ):
            error = self.deadline_exceeded()
        # Asked before anything is logged: a failure the fallback answers is no failure.
        replacement = self.fallback(error)
        if replacement is not None:
            return replacement
        info = self.info()
        self._log(info, logging.ERROR, None, None, type(error).__name__)
        if self.attempts > 1:
            error.add_note(
                f"resilient_client: endpoint {info.endpoint!r}, {info.attempts} attempts "
                f"in {info.elapsed:.3f}s, stopped by {info.stop_reason}"
            )
        if error is outcome:
            raise outcome
        raise error from outcome

    def recover(self, exc: Exception) -> httpx.Response:
        """The fallback answer for a call that raised ``exc``, or ``exc`` re-raised; the
        call's end is announced either way, even if the fallback itself raises."""
        try:
            fallback = self.fallback(exc)
        except Exception as error:
            self.ended(None, error)
            raise
        if fallback is None:
            self.ended(None, exc)
            raise exc
        return fallback

    def finish(self, response: httpx.Response) -> httpx.Response:
        """Attach the call's record; raise an ``ApiError`` if the client asked for that."""
        status = response.status_code
        if (status >= 500 or status == 429) and self.policy.fallback is not None:
            replacement = self.fallback(response)
            if replacement is not None:
                return replacement
        info = self.info(response)
        response.extensions["resilience"] = info
        if status >= 400:
            level = logging.WARNING if status < 500 else logging.ERROR
            raising = self._pipeline.raise_for_error
            # Parsed only for a reader: the log (when on) or the ApiError. An unread
            # stream is parsed only for the error, as the caller will not read it then.
            problem = None
            if raising or (response.is_stream_consumed and logger.isEnabledFor(level)):
                problem = self.problem(response)
            self._log(info, level, status, problem)
            if raising:
                response.request = self.request  # the client would set it only later
                raise_for_error(
                    response, error_class=self._pipeline.flavor.api_error_class, problem=problem
                )
        elif self.attempts > 1:
            self._log(info, logging.DEBUG, status, None)
        return response

    def deadline_passed(self) -> bool:
        return self.deadline is not None and self.clock.monotonic() >= self.deadline

    def deadline_exceeded(self) -> _exceptions.DeadlineExceededMixin:
        total = self.policy.timeouts.total or 0.0
        self.stop_reason = "deadline"
        return self._pipeline.flavor.DeadlineExceeded(
            self.endpoint.key, self.attempts, total, request=self.request
        )

    def attempt_timed_out(self) -> Exception:
        """The error for an attempt cut short by its :attr:`limit` - an attempt failure like
        any read timeout, whether the cap or the deadline set the limit (:meth:`conclude`
        reports a call that ran out of time as ``DeadlineExceeded``)."""
        return self._pipeline.flavor.AttemptTimeout(self.limit or 0.0, request=self.request)

    def _log(
        self,
        info: ResilienceInfo,
        level: int,
        status: int | None,
        problem: Problem | None,
        error: str | None = None,
    ) -> None:
        if not logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "endpoint": info.endpoint,
            "status": status,
            "category": problem.category.value if problem is not None else error and "network",
            "code": problem.code if problem is not None else None,
            "request_id": (problem.request_id if problem is not None else None) or info.request_id,
            "attempts": info.attempts,
            "correlation_id": info.correlation_id,
            "error": error,
        }
        what = f"status {status}" if status is not None else error
        verb = "recovered" if level == logging.DEBUG else "failed"
        message = f"call to {info.endpoint} {verb} after {info.attempts} attempt(s): {what}"
        self._pipeline.failures.emit(level, message, fields)
