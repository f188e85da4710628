"""One logical call: its state, and every rule applied to it along the way.

A :class:`Call` is made when the transport receives a request. It resolves its endpoint and
policy, fixes the idempotency key and correlation id, and then answers the questions its
story (``_story.py``) asks in pipeline order - may the call start (throttle, bulkhead),
when may this attempt start (rate limit), what may this attempt spend (deadline), what
did the outcome mean (breaker, throttle), is it retried, after how long, or does the call
stop (retry, budget, breaker). Each answer is
the rule of one strategy's room, applied to this call's values; the rooms' functions are
pure, and so is this class but for the clock it reads. Every decision is also announced
as a typed event (``_events.py``) to the pipeline's observers.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .. import _context
from .._breaker import apply_failure_predicate, classify_for_breaker
from .._deadline import PhaseTable, attempt_limit, clip, phase_table
from .._headers import LOWER_NAME, Triple, add_header, first_value, request_copy, triples
from .._hedging import Lane
from .._idempotency import IdempotencyRule, new_idempotency_key
from .._logging import logger
from .._rate_limit import Limits, read_limits
from .._retry import (
    FINAL_SUCCESS,
    Failure,
    RetryLoop,
    Verdict,
    classify_exception,
    judge_failure,
    judge_status,
    next_wait,
    status_is_candidate,
    stop_reason,
)
from .._retry._rules import apply_predicate
from ..problems import DEFAULT_MAX_BODY_BYTES, parse_problem, server_retry_hint
from ..problems._retry_after import retry_after_seconds
from ._events import (
    AttemptEnded,
    AttemptStarted,
    CallEnded,
    CallRejected,
    CallStarted,
    CallView,
    Event,
    RetryRefused,
    RetryScheduled,
)
from ._extensions import (
    EXT_EXPLICIT_TIMEOUT,
    EXT_IDEMPOTENCY_KEY,
    EXT_POLICY,
    EXT_REPLAY,
    EXT_RESILIENCE,
    EXT_STREAM,
)

if TYPE_CHECKING:
    from .._breaker import Outcome, Rejection
    from .._rate_limit import RateLimitState
    from .._retry._policy import RetryPredicate
    from ..problems import Problem
    from ._pipeline import Pipeline

__all__ = ["Call"]

_CALL_STARTED = CallStarted()
# A success with no slow-call rule to time it against.
_PLAIN_SUCCESS: tuple[Outcome, float] = ("success", 0.0)
# Answers that say "overloaded, slow down": not accepted, for the adaptive throttle.
_OVERLOAD_STATUSES = frozenset({429, 503, 529})
# Verdicts on the pipeline's own refusals and errors: final, whatever a predicate says.
_REFUSED = frozenset(
    {"breaker", "isolated", "deadline", "bulkhead", "throttle", "rate_limit", "fatal_error"}
)
# Error bodies up to the parser's own bound are read inside the attempt, so the retry
# decision can see the problem; larger ones are judged on status and headers alone.
ERROR_BODY_LIMIT = DEFAULT_MAX_BODY_BYTES


class Call:
    """One logical call: its attempts, its deadline and the decisions about them."""

    __slots__ = (
        "_attempt_cap",
        "_attempt_started",
        "_failure_if",
        "_fault_now",
        "_hint",
        "_judged",
        "_key_header",
        "_lane",
        "_loop",
        "_paced",
        "_phases",
        "_pipeline",
        "_problem",
        "_too_long",
        "attempts",
        "breaker",
        "budget",
        "bulkhead",
        "chaos",
        "clock",
        "correlation_id",
        "deadline",
        "endpoint",
        "fallback_asked",
        "fallback_ready",
        "fallback_used",
        "hedge",
        "hedges",
        "idempotency_key",
        "injected",
        "limit",
        "listeners",
        "observers",
        "origin",
        "planned_delay",
        "policy",
        "rate_limit",
        "read_body",
        "replayable",
        "reply",
        "request",
        "response",
        "retry_if",
        "retry_reasons",
        "sent",
        "started",
        "stop_reason",
        "throttle",
        "verdict",
        "view",
    )

    # Set by the drivers and the story (``_story.py``), not here: each is written before
    # it is read. ``reply``: what the driver found doing the story's last step;
    # ``response``: the call's answer, once its story has ended with one.
    reply: Any
    response: httpx.Response

    def __init__(self, pipeline: Pipeline, request: httpx.Request) -> None:
        self._pipeline = pipeline
        self.endpoint = endpoint = pipeline.endpoints.match(request)
        extensions = request.extensions
        override = extensions.get(EXT_POLICY)
        self.policy = policy = (
            endpoint.policy if override is None else pipeline.overridden(endpoint.policy, override)
        )
        telemetry = pipeline.telemetry
        # Whether the telemetry observer hears this call: it adds the trace context to
        # each attempt's headers, so the call sends a copy of the request (_set_headers).
        traced = telemetry is not None and telemetry.wants_call()
        if traced or telemetry is None:
            self.observers = pipeline.observers
            self.listeners = pipeline.listeners
        else:
            self.observers = pipeline.extra_observers
            self.listeners = pipeline.extra_listeners
        self.clock = clock = pipeline.clock
        self.request = request
        self.started = self._attempt_started = started = clock.monotonic()
        explicit = extensions.get(EXT_EXPLICIT_TIMEOUT)
        if explicit is None:
            # Not through a resilient client (transport mode, under a plain client or an
            # SDK): the timeouts httpx passes with the request are the caller's.
            explicit = "timeout" in extensions
        self._phases: PhaseTable
        # The endpoint's state, less what a per-call override switched off (an override
        # cannot change its parameters: they are the endpoint's).
        if override is None:
            self.breaker = endpoint.breaker
            self.bulkhead = endpoint.bulkhead
            self.budget = endpoint.budget
            self.throttle = endpoint.throttle
            self.chaos = endpoint.chaos
            self.rate_limit = endpoint.rate_limit
            self.hedge = endpoint.hedge
            self.retry_if = endpoint.retry_if
            total, self._attempt_cap = endpoint.total, endpoint.attempt
            self._phases = endpoint.phases
            idempotency = endpoint.idempotency
        else:
            self.breaker = endpoint.breaker if policy.breaker is not None else None
            self.bulkhead = endpoint.bulkhead if policy.bulkhead is not None else None
            self.budget = endpoint.budget if policy.budget is not None else None
            self.throttle = endpoint.throttle if policy.throttle is not None else None
            self.chaos = endpoint.chaos if policy.chaos is not None else None
            self.rate_limit = endpoint.rate_limit if policy.rate_limit is not None else None
            self.hedge = endpoint.hedge if policy.hedging is not None else None
            self.retry_if = None if policy.retry is None else policy.retry.retry_if
            timeouts = policy.timeouts
            total, self._attempt_cap = timeouts.total, timeouts.attempt
            if not explicit:
                self._phases = phase_table(timeouts)
            idempotency = (
                endpoint.idempotency
                if policy.idempotency is endpoint.policy.idempotency  # merge kept it
                else IdempotencyRule(policy.idempotency)
            )
        # The endpoint's breaker is the call's unless an override switched it off.
        self._failure_if = endpoint.failure_if
        if explicit:  # a timeout= given for the call, or the client's
            self._phases = phase_table(extensions.get("timeout") or {})
        self.deadline = None if total is None else started + total
        self.attempts = self.hedges = 0
        self.limit: float | None = None  # the current attempt's, set by time_attempt
        self.fallback_used = False
        self.fallback_asked = False
        # An async fallback's answer once awaited, in a 1-tuple (None is an answer too).
        self.fallback_ready: tuple[Any] | None = None
        self.retry_reasons: tuple[str, ...] = ()
        self.injected: tuple[str, ...] = ()  # faults chaos put in place of attempts
        self.stop_reason: str | None = None
        self.verdict: Verdict | None = None
        self.planned_delay = 0.0  # also the last retry's delay, for "decorrelated"
        self._judged: object = None
        self._problem: Problem | None = None
        self._loop: RetryLoop | None = None
        self._too_long = False
        self._fault_now = False
        self._hint: tuple[object, bool | None] | None = None
        self._paced: float | None = None  # when the rate limit's turn it holds starts
        self.read_body = False  # whether a driver read an attempt's body (reads_body)
        self._set_headers(idempotency, traced)
        # Asked now, not when a retry is considered: sending reads a one-shot stream into
        # memory, after which it would look replayable (it is not: it was sent once).
        try:
            request.content  # noqa: B018 - raises if the body is a one-shot stream
            self.replayable = True
        except pipeline.flavor.RequestNotRead:
            self.replayable = False
        # The request each attempt sends, and the origin it went to: the call's own, but
        # for failover (its breaker across origins points each attempt somewhere).
        self.sent = self.request
        self.origin: str | None = None
        if pipeline.failover is not None:
            pipeline.failover.route(self)
        self.view: CallView | None = None
        if self.observers:
            # (a host's default endpoint knows its provider: no URL to read)
            self.view = CallView(self, endpoint.provider or pipeline.provider_of(request.url))
            if self.listeners[CallStarted]:
                self._emit(_CALL_STARTED)

    def _emit(self, event: Event) -> None:
        for observer in self.listeners[type(event)]:
            observer.on_event(self.view, event)

    @property
    def flavor(self) -> Any:
        """The HTTP library's classes this call's pipeline runs over (httpx or httpx2)."""
        return self._pipeline.flavor

    @property
    def final_reason(self) -> str | None:
        """Why the call ended where it did: its stop reason, else its last verdict's."""
        if self.stop_reason is None and self.verdict is not None:
            return self.verdict.reason
        return self.stop_reason

    # -- headers, set once per call -------------------------------------------------

    def _set_headers(self, rule: IdempotencyRule, traced: bool) -> None:
        """Fix the call's idempotency key and correlation id, sending each that the
        caller did not: set once, the same on every attempt.

        The headers go on a copy of the request, never on the caller's: request hooks,
        a redirect's next hop (built from this request) and a request sent again all see
        the request as the caller made it, and each call adds its own. A ``traced`` call
        gets its copy even when it adds neither: the telemetry adds the trace context.
        """
        request = self.request
        headers = request.headers
        self._key_header = rule.header
        stored: list[Triple] | None = getattr(headers, "_list", None)  # triples(), inlined
        names = list(map(LOWER_NAME, triples(headers) if stored is None else stored))
        # A key the caller sent counts on any method: a keyed PUT's 409 is retried too.
        key = first_value(headers, rule.lower_name) if rule.lower_name in names else None
        add_key = False
        if key is not None:
            key = key.strip('"')
        else:
            key = request.extensions.get(EXT_IDEMPOTENCY_KEY)
            if key is None:
                if request.method in rule.methods:
                    key = new_idempotency_key()
            elif not isinstance(key, str) or not key:
                raise TypeError(f'extensions["{EXT_IDEMPOTENCY_KEY}"] must be a non-empty str')
            add_key = key is not None
        self.idempotency_key = key
        pipeline = self._pipeline
        correlation = None  # the id to add to the request, if the pipeline adds one
        if pipeline.correlation_header is None:  # none on the wire; logs and spans keep one
            self.correlation_id = _context.current_correlation_id() or _context.new_correlation_id()
        else:
            lower = pipeline.correlation_key
            present = first_value(headers, lower) if lower in names else None
            if present is not None:
                self.correlation_id = present
            else:
                self.correlation_id = correlation = (
                    _context.current_correlation_id() or _context.new_correlation_id()
                )
        if not add_key and correlation is None and not traced:
            return  # nothing to add: the caller's request is sent as it is
        self.request = request = request_copy(request)
        headers = request.headers
        if add_key:
            headers[rule.header] = rule.encode(key)  # type: ignore[arg-type]
        if correlation is not None:
            # ASCII: correlation_id() checks a caller's id; ours is hex.
            stored = getattr(headers, "_list", None)
            if stored is None:
                add_header(headers, pipeline.correlation_raw, pipeline.correlation_key, correlation)
            else:  # add_header(), inlined
                stored.append(
                    (
                        pipeline.correlation_raw,
                        pipeline.correlation_key,
                        correlation.encode("ascii"),
                    )
                )

    # -- admission (throttle, bulkhead): once per call ---------------------------------

    def admit(self) -> None:
        """Raise ``LoadShedError`` if the adaptive throttle sheds this call."""
        throttle = self.throttle
        if throttle is not None and throttle.should_reject():
            key = self.endpoint.key
            self._notice(throttle.take_refusal_notice(key))
            # Raised before any attempt, so no verdict will name who stopped the call.
            self.stop_reason = "throttle"
            raise self._refused(self.flavor.LoadShedError(key, request=self.request), "throttle")

    def slot_wait(self) -> float:
        """Seconds the call may wait for a bulkhead slot: ``max_wait``, cut to the deadline."""
        assert self.bulkhead is not None  # asked only of calls that have one
        wait = self.bulkhead.policy.max_wait
        if self.deadline is not None:
            wait = min(wait, self.deadline - self.clock.monotonic())
        return wait

    def refused_by_bulkhead(self) -> Exception:
        """The error for a call that got no bulkhead slot in time."""
        assert self.bulkhead is not None
        key = self.endpoint.key
        self._notice(self.bulkhead.take_refusal_notice(key))
        self.stop_reason = "bulkhead"  # as admit(): no attempt, so no verdict, names it
        return self._refused(self.flavor.BulkheadFull(key, request=self.request), "bulkhead")

    def refused_by_breaker(self, rejection: Rejection) -> Exception:
        """The ``CircuitOpenError`` for an attempt the breaker refused (its shared
        storage may say the endpoint is isolated: :meth:`refused_isolated`)."""
        if rejection.isolated is not None:
            return self.refused_isolated(rejection.isolated)
        retry_after = rejection.retry_at - self.clock.monotonic()
        error = self.flavor.CircuitOpenError(
            rejection.endpoint, rejection.retry_at, request=self.request, retry_after=retry_after
        )
        return self._refused(error, "breaker")

    def refused_isolated(self, reason: str) -> Exception:
        """The ``CircuitOpenError`` (``reason == "isolated"``) for an attempt of an
        endpoint an operator isolated, for ``reason`` (``_isolation.py``): refused until
        restored, so it names no time to retry."""
        error = self.flavor.CircuitOpenError(
            self.endpoint.key, math.inf, request=self.request, isolation=reason
        )
        return self._refused(error, "isolated")

    def _refused(
        self, error: Exception, kind: Literal["breaker", "isolated", "bulkhead", "throttle"]
    ) -> Exception:
        if self.observers and self.listeners[CallRejected]:
            self._emit(CallRejected(kind))
        return error

    def _notice(self, message: str | None) -> None:
        """Log the start of a refusal episode (budget, bulkhead, throttle): once, not per
        call."""
        if message is not None:
            extra = {"endpoint": self.endpoint.key, "correlation_id": self.correlation_id}
            logger.warning(message, extra=extra)

    # -- pacing: when may the next attempt start (the rate-limit room's rule) -----------

    def pace(self, after: float = 0.0) -> float | None:
        """The seconds the next attempt must wait for the endpoint's rate limit, past the
        ``after`` seconds it waits anyway (a retry's backoff), its turn reserved.

        A turn that would come later than the rate limit's ``max_wait`` or the deadline
        allows is not taken: a first attempt raises ``RateLimited`` (it never reaches the
        server); a retry answers ``None`` and the call ends with its last outcome.
        """
        state = self.rate_limit
        assert state is not None  # only asked by a call with a rate limit
        now = self.clock.monotonic()
        start = now + after
        allowance = state.policy.max_wait
        if self.deadline is not None:
            allowance = min(allowance, self.deadline - start)
        delay, granted = state.reserve(now, start, max(0.0, allowance))
        if granted:
            self._paced = start + delay
            return delay
        self.stop_reason = "rate_limit"
        if self.attempts:
            return None
        error: Exception = self.flavor.RateLimited(self.endpoint.key, delay, request=self.request)
        if self.observers and self.listeners[CallRejected]:
            self._emit(CallRejected("rate_limit"))
        raise error

    def unpace(self) -> None:
        """Hand back the rate limit's turn this call holds, if any (its attempt ended,
        or never will)."""
        turn = self._paced
        if turn is not None:
            self._paced = None
            self.rate_limit.release(turn)  # type: ignore[union-attr]

    def _learn(self, state: RateLimitState, response: httpx.Response) -> None:
        """Feed the provider's rate-limit headers on ``response`` to the endpoint's
        state (a 429 that says only ``Retry-After`` means none are left until then)."""
        headers = response.headers
        limits = read_limits(headers, self.clock.wall())
        if limits is None and response.status_code == 429:
            wait = retry_after_seconds(headers, now=self.clock.wall())
            limits = None if wait is None else Limits(0.0, wait)
        if limits is not None:
            state.learn(limits, self.clock.monotonic())

    # -- one attempt: its limit, its start, what its outcome meant ---------------------

    def time_attempt(self) -> None:
        """Fix the next attempt's :attr:`limit` (the deadline room's rule).
        ``DeadlineExceeded`` if nothing is left - asked before the breaker and before the
        attempt is announced, so a call out of time counts no attempt."""
        cap = self._attempt_cap
        deadline = self.deadline
        if deadline is None:
            self.limit = cap
            return
        if self.attempts == 0 and self.bulkhead is None and self.rate_limit is None:
            # Nothing ran since the call started (no slot or rate-limit turn waited for):
            # the whole deadline is left, and the clock need not be read again. (Decided
            # here, not through attempt_limit: a frame less on every call.)
            total = deadline - self.started
            self.limit = total if cap is None or total < cap else cap
            return
        limit = attempt_limit(cap, deadline, self.clock.monotonic())
        if limit is not None and limit <= 0:
            raise self.deadline_exceeded()
        self.limit = limit

    def start_attempt(self, hedge: bool = False) -> httpx.Request:
        """Set the attempt's timeouts, clipped to its :attr:`limit`, and count it; the
        request to send (:attr:`sent`: the call's, or its copy for another origin).
        ``hedge``: the attempt is a hedge (``_hedging.py``), announced as one."""
        request = self.sent
        now = self.clock.monotonic()
        limit = self.limit
        phases = self._phases
        if limit is None or limit >= phases[1]:
            # The common case, nothing to clip, without a call to clip(): a frame per attempt.
            request.extensions["timeout"] = phases[0]
        else:
            if request.extensions is self.request.extensions:  # the caller's own
                request = self._send_alone(request)
            request.extensions["timeout"] = clip(phases, limit)
        if self.attempts == 0 and self.budget is not None:
            self.budget.record_call(now)
        self.attempts += 1
        self._fault_now = False
        self._problem = None
        self._attempt_started = now
        if self.observers and self.listeners[AttemptStarted]:
            self._emit(AttemptStarted(self.attempts, self.origin, hedge))
        return request

    def _send_alone(self, request: httpx.Request) -> httpx.Request:
        """A copy of ``request`` with extensions of its own, sent from now on: an
        attempt's clipped timeouts never go on the caller's extensions, which a redirect's
        next hop, an auth flow's next request and a request sent again inherit (only
        attempts that are clipped pay for the copy)."""
        self.sent = copy = request_copy(request)
        copy.extensions = dict(request.extensions)
        if self.view is not None:  # observers see (and add headers to) what is sent
            self.view.request = copy
        return copy

    # -- a hedge race's attempts (``_hedging.py``), in flight together --------------------

    def open_lane(self, permit: Any, hedge: bool) -> Lane:
        """Start an attempt of a hedge race (its :attr:`limit` fixed, its breaker
        ``permit`` had): counted and announced as any attempt, with a request of its own,
        so the next attempt's trace headers and timeouts never touch one in flight."""
        request = self.start_attempt(hedge)
        if hedge:
            self.hedges += 1
        lane = Lane(self.attempts, hedge, self._attempt_started, self.limit, permit)
        lane.request = copy = request_copy(request)
        copy.extensions = dict(request.extensions)
        return lane

    def grants_hedge(self) -> bool:
        """Whether the endpoint's retry budget grants a hedge (taking a retry from it)."""
        budget = self.budget
        if budget is None or budget.try_retry():
            return True
        self._notice(budget.take_refusal_notice(self.endpoint.key))
        return False

    def close_lane(
        self, lane: Lane, outcome: httpx.Response | BaseException
    ) -> tuple[Outcome, float]:
        """:meth:`attempt_ended` for an attempt of a race, with its own start, fault and
        number (the call's per-attempt state is the latest attempt's)."""
        if lane.fault is not None:
            self.injected += (lane.fault,)
        self._fault_now = lane.fault is not None
        self._attempt_started = lane.started
        self.limit = lane.limit
        self._problem = None  # parsed for this attempt's response, if asked
        self._lane = lane
        try:
            result = self.attempt_ended(outcome)
        finally:
            self._lane = None  # type: ignore[assignment] # unset but in a race
        if not isinstance(outcome, BaseException) and self.hedge is not None:
            self.hedge.answered(self.clock.monotonic() - lane.started)
        return result

    def reads_body(self, response: httpx.Response) -> bool:
        """Whether the driver reads the body inside the attempt.

        Always when the caller does not stream (so a connection dropped mid-body is an
        attempt failure that can be retried); for streamed calls only a small error body
        that may be retried, so the decision can see its problem. Never when the body is
        in memory already. A call whose driver read a body says so in :attr:`read_body`.
        """
        if response.is_stream_consumed:
            return False  # already in memory (an in-process transport, a cache)
        if self.request.extensions.get(EXT_STREAM) is False:
            self.read_body = True
            return True
        if self.retry_if is None and self._failure_if is None:
            # (a predicate sees every small body: it may retry any, or call it a failure)
            retry = self.policy.retry
            if retry is None:
                return False
            status = response.status_code
            if status < 400:
                return False
            hint = self._server_hint(response)
            if not status_is_candidate(status, self.idempotency_key is not None, retry, hint):
                return False
        length = response.headers.get("content-length")
        # ASCII digits only: "²" is a digit to isdigit(), and int() raises ValueError on it.
        if length is None or not (length.isascii() and length.isdigit()):
            return False
        if int(length) <= ERROR_BODY_LIMIT:
            self.read_body = True
            return True
        return False

    def attempt_ended(self, outcome: httpx.Response | BaseException) -> tuple[Outcome, float]:
        """Record an attempt's outcome with the throttle and the observers, and say what it
        means to the breaker, with how long the attempt took (the drivers hand both to
        the breaker, when there is one)."""
        failed = isinstance(outcome, BaseException)
        throttle = self.throttle
        if throttle is not None and not failed:
            throttle.record(outcome.status_code not in _OVERLOAD_STATUSES)  # type: ignore[union-attr]
        rate_limit = self.rate_limit
        if rate_limit is not None:
            self.unpace()
            if not failed and rate_limit.policy.respect_headers:
                self._learn(rate_limit, outcome)  # type: ignore[arg-type]
        if self.observers and self.listeners[AttemptEnded]:
            duration = self.clock.monotonic() - self._attempt_started
            injected = self.injected[-1] if self.injected and self._fault_now else None
            # Set only while a hedge race ends one of its attempts: no store on every call.
            lane: Lane | None = getattr(self, "_lane", None)
            number, hedge = (self.attempts, False) if lane is None else (lane.number, lane.hedge)
            if failed:
                self._emit(AttemptEnded(number, None, outcome, duration, injected, hedge))  # type: ignore[arg-type]
            else:
                self._emit(AttemptEnded(number, outcome, None, duration, injected, hedge))  # type: ignore[arg-type]
        breaker = self.breaker  # the endpoint's (across origins with failover), or None
        if breaker is None:
            return _PLAIN_SUCCESS  # nobody asks
        if self._failure_if is not None:
            return self._breaker_outcome(outcome)
        # The duration matters only to a slow-call rule: skip the clock read otherwise.
        if breaker.slow_call_duration is None:
            if not failed and outcome.status_code < 400:  # type: ignore[union-attr]
                return _PLAIN_SUCCESS  # the common case, decided without classifying
            duration = 0.0
        else:
            duration = self.clock.monotonic() - self._attempt_started
        if not failed:
            return classify_for_breaker(breaker.policy, outcome.status_code), duration  # type: ignore[union-attr]
        if classify_exception(outcome) is Failure.FATAL or not isinstance(outcome, Exception):  # type: ignore[arg-type]
            return "ignored", duration  # ours, a bad URL, or cancelled: says nothing of health
        return "failure", duration

    def _breaker_outcome(self, outcome: httpx.Response | BaseException) -> tuple[Outcome, float]:
        """:meth:`attempt_ended`'s answer to the breaker when ``Breaker.failure_if`` has
        its say (``_breaker/_policy.py``): the built-in rule's outcome, then the
        predicate's."""
        breaker = self.breaker
        predicate = self._failure_if
        assert breaker is not None
        assert predicate is not None
        duration = self.clock.monotonic() - self._attempt_started
        if isinstance(outcome, BaseException):
            if classify_exception(outcome) is Failure.FATAL or not isinstance(outcome, Exception):
                return "ignored", duration  # ours, a misuse, or cancelled: never asked
            answer = predicate(self.request, None, outcome, None)
            return apply_failure_predicate(answer, "failure"), duration
        status = outcome.status_code
        problem = None
        if status >= 400 and outcome.is_stream_consumed:
            problem = self.problem(outcome)
        answer = predicate(self.request, outcome, None, problem)
        built_in = classify_for_breaker(breaker.policy, status)
        return apply_failure_predicate(answer, built_in), duration

    def attempt_timed_out(self, limit: float | None = None) -> Exception:
        """The error for an attempt cut short by its :attr:`limit` (``limit``: a hedge
        race's attempt's own) - an attempt failure like any read timeout, whether the cap
        or the deadline set the limit (the call's end reports a call that ran out of time
        as ``DeadlineExceeded``)."""
        limit = self.limit if limit is None else limit
        return self.flavor.AttemptTimeout(limit or 0.0, request=self.request)  # type: ignore[no-any-return]

    def deadline_passed(self) -> bool:
        return self.deadline is not None and self.clock.monotonic() >= self.deadline

    def deadline_exceeded(self) -> Exception:
        self.stop_reason = "deadline"
        return self.flavor.DeadlineExceeded(  # type: ignore[no-any-return]
            self.endpoint.key,
            self.attempts,
            self.policy.timeouts.total or 0.0,
            request=self.request,
        )

    # -- after an attempt: retried, after how long, or stop (the retry room's rules) ----

    def after(self, outcome: httpx.Response | BaseException) -> float | None:
        """The delay before the next attempt, or ``None``: the call ends with ``outcome``,
        as the call's retry loop (tenacity's decision machine, built on first need) says.
        (A success never gets here unless a retry predicate may retry it: the story ends
        the call on one itself.)
        """
        loop = self._loop
        if loop is None:
            loop = self._loop = RetryLoop(self)
        return loop.after(outcome)

    def judge(self, outcome: httpx.Response | BaseException) -> Verdict:
        """Whether this outcome is retried (``_retry/_rules.py``), remembered per outcome."""
        if self._judged is outcome:
            return self.verdict  # type: ignore[return-value] # set with _judged
        retry = self.policy.retry
        keyed = self.idempotency_key is not None
        method = self.request.method
        if isinstance(outcome, BaseException):
            failure = classify_exception(outcome)
            verdict = judge_failure(failure, method, keyed, self.replayable, outcome)
            if retry is None and verdict.retry:
                verdict = Verdict(False, "retry_off")
        elif outcome.status_code < 400:
            verdict = FINAL_SUCCESS
        elif retry is None:
            verdict = Verdict(False, "retry_off")
        else:
            hint = self._server_hint(outcome)
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
        predicate = self.retry_if
        if predicate is not None and retry is not None and verdict.reason not in _REFUSED:
            verdict = self._ask(predicate, outcome, verdict)
        self._judged = outcome
        self.verdict = verdict
        return verdict

    def _ask(
        self, predicate: RetryPredicate, outcome: httpx.Response | BaseException, verdict: Verdict
    ) -> Verdict:
        """The verdict once ``Retry.retry_if`` has had its say on ``outcome``."""
        if isinstance(outcome, BaseException):
            answer = predicate(self.request, None, outcome, None)
        else:
            problem = None
            if outcome.status_code >= 400 and outcome.is_stream_consumed:
                problem = self.problem(outcome)
            answer = predicate(self.request, outcome, None, problem)
        keyed = self.idempotency_key is not None
        return apply_predicate(answer, verdict, self.request.method, keyed, self.replayable)

    def _server_hint(self, response: httpx.Response) -> bool | None:
        """The server's explicit retry verdict (``x-should-retry``...), read once per
        response: both the body-reading rule and the verdict ask. (One slot holds the
        response with its hint: a hedge race's attempts ask from their own threads.)"""
        hint = self._hint
        if hint is None or hint[0] is not response:
            hint = self._hint = (response, server_retry_hint(response.headers))
        return hint[1]

    def problem(self, response: httpx.Response) -> Problem:
        """The response's problem, parsed once per attempt."""
        if self._problem is None:
            self._problem = parse_problem(response, now=self.clock.wall())
        return self._problem

    def next_delay(self, outcome: httpx.Response | BaseException) -> float:
        """The wait before the next attempt (``_retry/_waits.py``)."""
        retry = self.policy.retry
        assert retry is not None  # only asked after a verdict to retry
        failed = isinstance(outcome, BaseException)
        wait = next_wait(
            retry,
            None if failed else outcome.headers,  # type: ignore[union-attr]
            self._problem,
            self.attempts,
            self.planned_delay,
            self.clock.random(),
            self.clock.wall(),
        )
        self._too_long = wait.too_long
        self.planned_delay = wait.delay
        return wait.delay

    def stops(self) -> bool:
        """Whether the call ends now with its last outcome instead of waiting to retry
        (``_retry/_stop.py``; the budget is asked last, so a retry token is spent only on
        a retry that really happens)."""
        retry = self.policy.retry
        if self.stop_reason is None:
            breaker = self.breaker
            stop = stop_reason(
                attempts=self.attempts,
                max_attempts=0 if retry is None else retry.max_attempts,
                too_long=self._too_long,
                now=self.clock.monotonic(),
                delay=self.planned_delay,
                deadline=self.deadline,
                breaker_retry_at=None if breaker is None else breaker.retry_at(),
            )
            budget = self.budget
            if stop is None and budget is not None and not budget.try_retry():
                self._notice(budget.take_refusal_notice(self.endpoint.key))
                stop = "budget"
            if (stop == "breaker" or stop == "budget") and self.listeners[RetryRefused]:
                self._emit(RetryRefused(self.attempts, stop))
            self.stop_reason = stop
        if self.stop_reason is not None:
            return True
        assert self.verdict is not None
        reason = self.verdict.reason
        self.retry_reasons += (reason,)
        self._log_retry(reason)
        if self.observers and self.listeners[RetryScheduled]:
            self._emit(RetryScheduled(self.attempts, reason, self.planned_delay))
        return False

    def _log_retry(self, reason: str) -> None:
        """One DEBUG line per retry: which attempt failed, why, and the wait."""
        if logger.isEnabledFor(logging.DEBUG):
            retry = self.policy.retry
            total = retry.max_attempts if retry is not None else self.attempts
            self._pipeline.failures.emit(
                logging.DEBUG,
                f"call to {self.endpoint.key}: attempt {self.attempts} of {total} failed "
                f"({reason}); retrying in {self.planned_delay:.3f}s",
                {
                    "endpoint": self.endpoint.key,
                    "attempts": self.attempts,
                    "reason": reason,
                    "delay": self.planned_delay,
                    "correlation_id": self.correlation_id,
                    "request_id": None if self._problem is None else self._problem.request_id,
                },
            )

    # -- chaos: a fault in place of an attempt (the chaos room's injector decides) ------

    def inject(self, fault: object) -> None:
        """Record that ``fault`` replaced the current attempt (it never reaches the server)."""
        self.injected += (str(fault),)
        self._fault_now = True

    # -- the outbox: a write the outage refused, parked for later (outbox/_rule.py) -----

    def parks(self, outcome: httpx.Response | BaseException) -> bool:
        """Whether this call's failure is parked in the outbox instead of raised."""
        outbox = self._pipeline.outbox
        if outbox is None or not self.policy.outbox:
            return False
        if not isinstance(outcome, BaseException) and outcome.status_code < 400:
            return False
        from ..outbox._rule import parks  # only clients with an outbox load its room

        flavor = self.flavor
        refused = isinstance(
            outcome, (flavor.CircuitOpenError, flavor.DeadlineExceeded, flavor.LoadShedError)
        )
        verdict = self.verdict
        return parks(
            method=self.request.method,
            keyed=self.idempotency_key is not None,
            replayable=self.replayable,
            replay=self.request.extensions.get(EXT_REPLAY) is True,
            retryable=refused or (verdict is not None and verdict.retry),
        )

    def park_details(self, outcome: httpx.Response | BaseException) -> dict[str, Any]:
        """The keywords of ``Outbox.park`` for this call."""
        last_error = (
            type(outcome).__name__
            if isinstance(outcome, BaseException)
            else f"status {outcome.status_code}"
        )
        return {
            "endpoint": self.endpoint.key,
            "idempotency_key": self.idempotency_key,
            "idempotency_header": self._key_header,
            "correlation_id": self.correlation_id,
            "attempts": self.attempts,
            "last_error": last_error,
        }

    def announce_end(self, response: httpx.Response | None, error: BaseException | None) -> None:
        """Announce the end of the call, once: the story's last word on every path."""
        if self.observers and self.listeners[CallEnded]:
            if response is not None:
                record = response.extensions.get(EXT_RESILIENCE)
            else:
                record = getattr(error, "__resilience_info__", None)
            event = CallEnded(response, error, self.fallback_used, record)
            for observer in self.listeners[CallEnded]:  # (_emit inlined: every call ends)
                observer.on_event(self.view, event)
        # The view points back at the call: let go of it, so that the two are freed by
        # their reference counts instead of waiting, with all they hold, for the collector.
        self.view = None
