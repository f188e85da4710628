"""A call's decisions: may it start, may this attempt go, what did its outcome mean, is
it retried, after how long, or does the call stop here.

A mixin of :class:`~resilient_client._call._call.Call`, kept apart so the retry and admission
rules read in one place. No method sends anything: each reads the call, its endpoint's
state and the injected clock, records what it decided on the call and tells the observers
(and the log, once per refusal episode). The one read is :meth:`problem`, which may read a
bounded error body not yet read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import httpx

from .._breaker import Outcome, Rejection, classify_for_breaker
from .._logging import logger
from .._retry._rules import (
    FINAL_SUCCESS,
    Failure,
    Verdict,
    backoff_delay,
    classify_exception,
    judge_failure,
    judge_status,
    status_is_candidate,
)
from ..problems import parse_problem, retry_after_seconds, server_retry_hint
from ._events import AttemptEnded, CallRejected, RetryRefused, RetryScheduled
from ._state import CallState, new_tuple

if TYPE_CHECKING:
    from ..problems import Problem

__all__ = ["CallDecisions"]

# A success with no slow-call rule to time it against.
_PLAIN_SUCCESS: tuple[Outcome, float] = ("success", 0.0)
# Answers that say "overloaded, slow down": not accepted, for the adaptive throttle.
_OVERLOAD_STATUSES = frozenset({429, 503, 529})


class CallDecisions(CallState):
    """Admission and retry decisions, over the state :class:`Call` keeps."""

    __slots__ = ()  # as CallState's: Call keeps no __dict__

    def _notice(self, message: str | None) -> None:
        """Log the start of a refusal episode (budget, bulkhead, throttle): once, not per
        call."""
        if message is not None:
            extra = {"endpoint": self.endpoint.key, "correlation_id": self.correlation_id}
            logger.warning(message, extra=extra)

    # -- admission ------------------------------------------------------------------

    def shed(self) -> None:
        """Raise ``LoadShedError`` if the adaptive throttle sheds this call."""
        throttle = self.throttle
        if throttle is not None and throttle.should_reject():
            key = self.endpoint.key
            self._notice(throttle.take_refusal_notice(key))
            raise self._rejected(
                self._pipeline.flavor.LoadShedError(key, request=self.request), "throttle"
            )

    def refused(self, rejection: Rejection) -> Exception:
        """The ``CircuitOpenError`` for an attempt the breaker refused, to raise."""
        error = self._pipeline.flavor.CircuitOpenError(
            rejection.endpoint, rejection.retry_at, request=self.request
        )
        return self._rejected(error, "breaker")

    def attempt_ended(self, outcome: httpx.Response | BaseException) -> tuple[Outcome, float]:
        """Record an attempt's outcome with the endpoint's throttle and the observers, and
        say what it means to the breaker, with how long the attempt took (asked of every
        attempt; the drivers hand it to the breaker, when there is one)."""
        failed = isinstance(outcome, BaseException)
        throttle = self.throttle
        if throttle is not None and not failed:
            throttle.record(outcome.status_code not in _OVERLOAD_STATUSES)  # type: ignore[union-attr]
        if self.observers:
            duration = self.clock.monotonic() - self._attempt_started
            event: tuple[int, httpx.Response | None, BaseException | None, float] = (
                (self.attempts, None, outcome, duration)  # type: ignore[assignment]
                if failed
                else (self.attempts, outcome, None, duration)
            )
            self._emit(new_tuple(AttemptEnded, event))
        breaker = self.breaker  # the endpoint's: an override only switches it off
        if breaker is None:
            return _PLAIN_SUCCESS  # nobody asks
        # The duration matters only to a slow-call rule: skip the clock read otherwise.
        if breaker.slow_call_duration is None:
            if not failed and outcome.status_code < 400:  # type: ignore[union-attr]
                return _PLAIN_SUCCESS  # the common case, decided without classifying
            duration = 0.0
        else:
            duration = self.clock.monotonic() - self._attempt_started
        if not isinstance(outcome, BaseException):
            return classify_for_breaker(breaker.policy, outcome.status_code), duration
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
        self._notice(self.bulkhead.take_refusal_notice(key))
        return self._rejected(
            self._pipeline.flavor.BulkheadFull(key, request=self.request), "bulkhead"
        )

    def _rejected(
        self, error: Exception, kind: Literal["breaker", "bulkhead", "throttle"]
    ) -> Exception:
        """``error``, for a call refused locally, once its observers were told."""
        if self.observers:
            self._emit(CallRejected(kind))
        return error

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
            # planned_delay still holds the last retry's delay; its 0.0 before the first
            # counts as none, since "decorrelated" never starts below `initial`.
            rnd = self.clock.random()
            delay = backoff_delay(retry.backoff, self.attempts, self.planned_delay, rnd)
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
        if self.observers:
            self._emit(RetryScheduled(self.attempts, reason, self.planned_delay))
        return False

    def _breaker_refuses(self) -> bool:
        if self.breaker is None:
            return False
        retry_at = self.breaker.retry_at()
        if retry_at is None or retry_at <= self.clock.monotonic() + self.planned_delay:
            return False
        if self.observers:
            self._emit(RetryRefused(self.attempts, "breaker"))
        return True

    def _budget_allows(self) -> bool:
        budget = self.budget
        if budget is None or budget.try_retry():
            return True
        self._notice(budget.take_refusal_notice(self.endpoint.key))
        if self.observers:
            self._emit(RetryRefused(self.attempts, "budget"))
        return False
