"""The core shared by the sync and async drivers: one :class:`Call` per logical request.

The drivers in ``_transport.py`` only send, read, close, sleep and await; every
decision - which endpoint, which policy, which timeouts for this attempt, whether an
outcome is retried, how long to wait, when to stop - is a method here, over the
injected clock. The retry loop itself is tenacity's (see ``_loop.py``), fed by these
decisions.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from . import _exceptions
from ._clock import SYSTEM_CLOCK, Clock
from ._context import current_correlation_id
from ._idempotency import new_idempotency_key
from ._info import ResilienceInfo
from ._policy import Policy, Timeouts, merge
from ._retry import (
    FINAL_SUCCESS,
    IDEMPOTENT_METHODS,
    Verdict,
    backoff_delay,
    classify_exception,
    judge_failure,
    judge_status,
    status_is_candidate,
)
from ._routing import Router
from .problems import (
    parse_problem,
    raise_for_error,
    request_id_from_headers,
    retry_after_seconds,
    server_retry_hint,
)

if TYPE_CHECKING:
    from .problems import Problem

__all__ = ["Call", "Endpoint", "Pipeline"]

logger = logging.getLogger("resilient_client")

# Request extensions the pipeline reads. The first two are public (API.md §1).
EXT_POLICY = "resilience"
EXT_IDEMPOTENCY_KEY = "idempotency_key"
# Set by ResilientClient: whether the caller streams the body, and whether the
# request's timeout was given explicitly rather than httpx's client default.
EXT_STREAM = "resilient_client.stream"
EXT_EXPLICIT_TIMEOUT = "resilient_client.explicit_timeout"

# Error bodies up to this size are read inside the attempt, so the retry decision can
# see the problem; larger ones are judged on status and headers alone.
ERROR_BODY_LIMIT = 64 * 1024
_PHASES = ("connect", "read", "write", "pool")


PhaseTable = tuple[Mapping[str, float | None], float]


def phase_table(timeouts: Mapping[str, Any] | Timeouts) -> PhaseTable:
    """httpx's per-phase timeout dict, and its longest phase (``inf`` if one is unlimited)."""
    get = timeouts.get if isinstance(timeouts, Mapping) else timeouts.__getattribute__
    phases: dict[str, float | None] = {phase: get(phase) for phase in _PHASES}
    values = phases.values()
    longest = math.inf if None in values else max(v for v in values if v is not None)
    return phases, longest


class Endpoint:
    """Runtime state of one endpoint key: its merged policy (and later its breaker, budget...)."""

    __slots__ = ("key", "phases", "policy")

    def __init__(self, key: str, policy: Policy) -> None:
        self.key = key
        self.policy = policy
        self.phases = phase_table(policy.timeouts)


class Pipeline:
    """Endpoint routing and per-endpoint state for one transport (or one client's transports)."""

    def __init__(
        self,
        policy: Policy | None = None,
        endpoints: Mapping[str, Policy] | None = None,
        *,
        base_url: httpx.URL | str = "",
        clock: Clock = SYSTEM_CLOCK,
        correlation_header: str | None = "X-Correlation-ID",
        raise_for_error: bool = False,
    ) -> None:
        if policy is not None and not isinstance(policy, Policy):
            raise TypeError(
                f"policy must be a resilient_client.Policy, not {type(policy).__name__}"
            )
        self.default = policy if policy is not None else Policy()
        entries: list[tuple[str, Endpoint]] = []
        for key, endpoint_policy in (endpoints or {}).items():
            if not isinstance(endpoint_policy, Policy):
                raise TypeError(
                    f"endpoints[{key!r}] must be a resilient_client.Policy, "
                    f"not {type(endpoint_policy).__name__}"
                )
            entries.append((key, Endpoint(key, merge(self.default, endpoint_policy))))
        self._router = Router(entries)
        self._hosts: dict[str, Endpoint] = {}
        self._base_path = httpx.URL(base_url).path.rstrip("/")
        self.clock = clock
        self.correlation_header = correlation_header
        self.raise_for_error = raise_for_error

    def endpoint_for(self, request: httpx.Request) -> Endpoint:
        """The endpoint a request belongs to: its most specific key, else its host's default."""
        path = request.url.path
        base = self._base_path
        if base and (path == base or path.startswith(base + "/")):
            path = path[len(base) :]
        found = self._router.match(request.method, path)
        if found is not None:
            return found[1]
        url = request.url
        host = url.host if url.port is None else f"{url.host}:{url.port}"
        endpoint = self._hosts.get(host)
        if endpoint is None:
            endpoint = self._hosts.setdefault(host, Endpoint(f"* {host}", self.default))
        return endpoint

    def begin(self, request: httpx.Request) -> Call:
        """Start a call: resolve endpoint and policy, set the call's headers."""
        endpoint = self.endpoint_for(request)
        policy = endpoint.policy
        override = request.extensions.get(EXT_POLICY)
        if override is not None:
            if not isinstance(override, Policy):
                raise TypeError(
                    f'extensions["{EXT_POLICY}"] must be a resilient_client.Policy, '
                    f"not {type(override).__name__}"
                )
            policy = merge(policy, override)
        return Call(self, request, endpoint, policy)


class Call:
    """One logical call: its attempts, its deadline and the decisions about them."""

    __slots__ = (
        "_judged",
        "_phases",
        "_pipeline",
        "_previous_delay",
        "_problem",
        "attempts",
        "clock",
        "correlation_id",
        "deadline",
        "endpoint",
        "idempotency_key",
        "planned_delay",
        "policy",
        "replayable",
        "request",
        "retry_reasons",
        "started",
        "stop_reason",
        "verdict",
    )

    def __init__(
        self, pipeline: Pipeline, request: httpx.Request, endpoint: Endpoint, policy: Policy
    ) -> None:
        self._pipeline = pipeline
        self.clock = clock = pipeline.clock
        self.request = request
        self.endpoint = endpoint
        self.policy = policy
        self.started = clock.monotonic()
        total = policy.timeouts.total
        self.deadline = None if total is None else self.started + total
        self.attempts = 0
        self.retry_reasons: list[str] = []
        self.stop_reason: str | None = None
        self.verdict: Verdict | None = None
        self.planned_delay = 0.0
        self._previous_delay: float | None = None
        self._judged: object = None
        self._problem: Problem | None = None
        extensions = request.extensions
        if extensions.get(EXT_EXPLICIT_TIMEOUT):
            self._phases = phase_table(extensions.get("timeout") or {})
        elif policy is endpoint.policy:
            self._phases = endpoint.phases
        else:
            self._phases = phase_table(policy.timeouts)
        self.idempotency_key = self._set_idempotency_key()
        self.correlation_id = self._set_correlation_id()
        self.replayable = _is_replayable(request)

    # -- headers set once per call -------------------------------------------------

    def _set_idempotency_key(self) -> str | None:
        request = self.request
        idempotency = self.policy.idempotency
        key = request.extensions.get(EXT_IDEMPOTENCY_KEY)
        if key is None and request.method in IDEMPOTENT_METHODS:
            return None  # a key changes nothing for these; skip the header scan
        header = idempotency.header if idempotency is not None else "Idempotency-Key"
        present: str | None = request.headers.get(header)
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
        header = self._pipeline.correlation_header
        if header is None:
            return current_correlation_id()
        present: str | None = self.request.headers.get(header)
        if present is not None:
            return present
        value = current_correlation_id() or os.urandom(16).hex()
        self.request.headers[header] = value
        return value

    # -- one attempt ----------------------------------------------------------------

    def start_attempt(self) -> httpx.Request:
        """Count the attempt and set its timeouts; ``DeadlineExceeded`` if no time is left."""
        self.attempts += 1
        self._problem = None
        request = self.request
        request.extensions["timeout"] = self._attempt_timeouts()
        return request

    def attempt_limit(self) -> float | None:
        """Seconds this attempt may take as a whole (attempt cap or deadline), or ``None``."""
        cap = self.policy.timeouts.attempt
        if self.deadline is not None:
            left = self.deadline - self.clock.monotonic()
            cap = left if cap is None else min(cap, left)
        return cap

    def _attempt_timeouts(self) -> Mapping[str, float | None]:
        phases, longest = self._phases
        limit = self.attempt_limit()
        if limit is None or limit >= longest:
            return phases  # nothing to clip: share the table, allocate nothing
        if limit <= 0:
            raise self.deadline_exceeded()
        return {
            phase: limit if value is None or value > limit else value
            for phase, value in phases.items()
        }

    def reads_body(self, response: httpx.Response) -> bool:
        """Whether the driver reads the body inside the attempt.

        Always when the caller does not stream (so a connection dropped mid-body is an
        attempt failure that can be retried); for streamed calls only a small error body
        that may be retried, so the decision can see its problem.
        """
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
        if self._judged is outcome and self.verdict is not None:
            return self.verdict
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
            if status_is_candidate(outcome.status_code, keyed, retry, hint):
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
            self._problem = parse_problem(response)
        return self._problem

    def next_delay(self, outcome: httpx.Response | BaseException) -> float:
        """The wait before the next attempt: the server's hint, else the backoff."""
        retry = self.policy.retry
        assert retry is not None  # only asked after a verdict to retry
        hint: float | None = None
        if retry.respect_retry_after and isinstance(outcome, httpx.Response):
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
        """Whether the call ends now with its last outcome instead of waiting to retry."""
        retry = self.policy.retry
        if self.stop_reason is None:
            if retry is None or self.attempts >= retry.max_attempts:
                self.stop_reason = "max_attempts"
            elif self.deadline is not None and (
                self.clock.monotonic() + self.planned_delay >= self.deadline
            ):
                self.stop_reason = "deadline"
        if self.stop_reason is not None:
            return True
        assert self.verdict is not None
        self.retry_reasons.append(self.verdict.reason)
        self._previous_delay = self.planned_delay
        return False

    # -- the end ------------------------------------------------------------------------

    def info(self, response: httpx.Response | None = None) -> ResilienceInfo:
        request_id = None if response is None else request_id_from_headers(response.headers)
        stop_reason = self.stop_reason
        if stop_reason is None and self.verdict is not None:
            stop_reason = self.verdict.reason
        return ResilienceInfo(
            endpoint=self.endpoint.key,
            attempts=self.attempts,
            elapsed=self.clock.monotonic() - self.started,
            idempotency_key=self.idempotency_key,
            correlation_id=self.correlation_id,
            request_id=request_id,
            retry_reasons=tuple(self.retry_reasons),
            stop_reason=stop_reason,
        )

    def finish(self, response: httpx.Response) -> httpx.Response:
        """Attach the call's record; raise an ``ApiError`` if the client asked for that."""
        info = self.info(response)
        response.extensions["resilience"] = info
        status = response.status_code
        if status >= 400:
            problem = self.problem(response) if response.is_stream_consumed else None
            _log_final(info, status, problem, logging.WARNING if status < 500 else logging.ERROR)
            if self._pipeline.raise_for_error:
                response.request = self.request  # the client would set it only later
                raise_for_error(response)
        elif self.attempts > 1:
            _log_final(info, status, None, logging.DEBUG)
        return response

    def fail(self, exc: BaseException) -> BaseException:
        """The exception the caller sees for a call that ended in ``exc``."""
        if (
            isinstance(exc, httpx.TimeoutException)
            and not isinstance(exc, _exceptions.DeadlineExceeded)
            and self.deadline_passed()
        ):
            exc = self.deadline_exceeded()
        info = self.info()
        _log_final(info, None, None, logging.ERROR, type(exc).__name__)
        if self.attempts > 1:
            exc.add_note(
                f"resilient_client: endpoint {info.endpoint!r}, {info.attempts} attempts "
                f"in {info.elapsed:.3f}s, stopped by {info.stop_reason}"
            )
        return exc

    def deadline_passed(self) -> bool:
        return self.deadline is not None and self.clock.monotonic() >= self.deadline

    def deadline_exceeded(self) -> _exceptions.DeadlineExceeded:
        total = self.policy.timeouts.total or 0.0
        self.stop_reason = "deadline"
        return _exceptions.DeadlineExceeded(
            self.endpoint.key, self.attempts, total, request=self.request
        )

    def attempt_timed_out(self) -> httpx.TimeoutException:
        """The error for an attempt cut short by :meth:`attempt_limit`."""
        if self.deadline_passed():
            return self.deadline_exceeded()
        return _exceptions.AttemptTimeout(self.policy.timeouts.attempt or 0.0, request=self.request)


def _is_replayable(request: httpx.Request) -> bool:
    try:
        request.content  # noqa: B018 - raises if the body is a one-shot stream
    except httpx.RequestNotRead:
        return False
    return True


def _log_final(
    info: ResilienceInfo,
    status: int | None,
    problem: Problem | None,
    level: int,
    error: str | None = None,
) -> None:
    if not logger.isEnabledFor(level):
        return
    extra: dict[str, Any] = {
        "endpoint": info.endpoint,
        "status": status,
        "category": problem.category.value if problem is not None else error and "NETWORK",
        "code": problem.code if problem is not None else None,
        "request_id": (problem.request_id if problem is not None else None) or info.request_id,
        "attempts": info.attempts,
        "correlation_id": info.correlation_id,
        "error": error,
    }
    what = f"status {status}" if status is not None else error
    verb = "recovered" if level == logging.DEBUG else "failed"
    logger.log(
        level,
        "call to %s %s after %d attempt(s): %s",
        info.endpoint,
        verb,
        info.attempts,
        what,
        extra=extra,
    )
