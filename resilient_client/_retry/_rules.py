"""Retry rules as pure functions: is this outcome retried, and how long is the wait.

Nothing here sends, sleeps or reads a clock; the pipeline passes in the outcome, the
policy, the time and a random number, and gets a decision back.

Which outcomes are retried (API.md §2):

=============================  =============================================
outcome                        retried when
=============================  =============================================
connect error / timeout,       always: the request provably never reached the
pool timeout, 421, 425         server (or was refused unprocessed), so even POST
                               is safe; 421 and 425 whether listed or not
read/write timeout,            the method is idempotent (RFC 9110: GET, HEAD,
dropped connection,            OPTIONS, PUT, DELETE, TRACE) or the request
status in ``retry_on_status``  carries an idempotency key
409 with an idempotency key    always (the draft's "original still in progress")
``x-should-retry`` /           the server's word wins over the status table,
``Stripe-Should-Retry``        the method rule still applies
=============================  =============================================

A request whose body is a one-shot stream is never resent. An error body whose
problem says it is permanent (e.g. a 500 carrying Google ``INVALID_ARGUMENT``) is not
retried even when its status is listed. Our own refusals (an open breaker, a full
bulkhead, the throttle, the rate limit, the deadline) are never retried.

A ``Retry.retry_if`` predicate then has its say (:func:`apply_predicate`): ``None``
keeps the verdict above, ``False`` refuses a retry, ``True`` asks for one - which the
method rule and a one-shot body still refuse, and our own refusals stay final.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..problems import Problem
    from ._policy import Retry

__all__ = [
    "IDEMPOTENT_METHODS",
    "Failure",
    "Verdict",
    "apply_predicate",
    "classify_exception",
    "judge_failure",
    "judge_status",
    "refusal_verdict",
    "status_is_candidate",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_NOT_PROCESSED_STATUSES = frozenset({421, 425})


class Failure(enum.Enum):
    """What a failed attempt tells about the request's fate on the server."""

    NOT_SENT = "not_sent"  # connect error/timeout, pool timeout: never reached the server
    TIMEOUT = "timeout"  # read/write/attempt timeout: may have been processed
    BROKEN = "broken"  # connection dropped, protocol error: may have been processed
    FATAL = "fatal"  # anything else (bad URL, decoding, our own rejections): not retried


# Class names, not classes, so the same rules serve httpx and httpx2 (same hierarchy).
_FAILURE_BY_NAME = {
    "ConnectError": Failure.NOT_SENT,
    "ConnectTimeout": Failure.NOT_SENT,
    "PoolTimeout": Failure.NOT_SENT,
    "CircuitOpenError": Failure.FATAL,
    "BulkheadFull": Failure.FATAL,
    "LoadShedError": Failure.FATAL,
    "RateLimited": Failure.FATAL,
    "DeadlineExceeded": Failure.FATAL,
    "TimeoutException": Failure.TIMEOUT,
    "NetworkError": Failure.BROKEN,
    "RemoteProtocolError": Failure.BROKEN,
}
_failure_cache: dict[type[BaseException], Failure] = {}


def classify_exception(exc: BaseException) -> Failure:
    """Map an exception raised by an attempt onto a :class:`Failure`."""
    kind = _failure_cache.get(type(exc))
    if kind is None:
        kind = Failure.FATAL
        for cls in type(exc).__mro__:
            found = _FAILURE_BY_NAME.get(cls.__name__)
            if found is not None:
                kind = found
                break
        _failure_cache[type(exc)] = kind
    return kind


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an outcome is retried, and why (a short, bounded reason for telemetry)."""

    retry: bool
    reason: str


FINAL_SUCCESS = Verdict(False, "success")
_METHOD_NOT_RETRYABLE = Verdict(False, "method_not_retryable")
_BODY_NOT_REPLAYABLE = Verdict(False, "body_not_replayable")


def _may_resend(method: str, keyed: bool) -> bool:
    return keyed or method in IDEMPOTENT_METHODS


# Our own refusals are final too; their verdict names who refused, for the caller's note.
_REFUSALS = {
    "CircuitOpenError": Verdict(False, "breaker"),
    "DeadlineExceeded": Verdict(False, "deadline"),
    "BulkheadFull": Verdict(False, "bulkhead"),
    "LoadShedError": Verdict(False, "throttle"),
    "RateLimited": Verdict(False, "rate_limit"),  # (before LoadShedError, its base)
}
_FATAL = Verdict(False, "fatal_error")
# A CircuitOpenError for an endpoint an operator isolated (a kill switch), not its breaker.
_ISOLATED = Verdict(False, "isolated")


def refusal_verdict(exc: BaseException) -> Verdict:
    """The verdict on an attempt that raised a :attr:`Failure.FATAL` exception: who
    refused it when it is one of our own refusals (``"isolated"`` for an isolated
    endpoint), else ``"fatal_error"``."""
    for cls in type(exc).__mro__:
        found = _REFUSALS.get(cls.__name__)
        if found is not None:
            if getattr(exc, "reason", None) == "isolated":
                return _ISOLATED
            return found
    return _FATAL


def judge_failure(
    failure: Failure, method: str, keyed: bool, replayable: bool, exc: BaseException | None = None
) -> Verdict:
    """The verdict on an attempt that raised ``exc`` instead of answering."""
    if failure is Failure.FATAL:
        return _FATAL if exc is None else refusal_verdict(exc)
    if not replayable:
        return _BODY_NOT_REPLAYABLE
    if failure is Failure.NOT_SENT:
        return Verdict(True, "connect_error")
    if not _may_resend(method, keyed):
        return _METHOD_NOT_RETRYABLE
    return Verdict(True, failure.value)


def status_is_candidate(status: int, keyed: bool, policy: Retry, hint: bool | None) -> bool:
    """Whether a status may be retried at all, before the body and method are looked at."""
    if hint is not None:
        return hint
    return (
        status in policy.retry_on_status
        or status in _NOT_PROCESSED_STATUSES
        or (status == 409 and keyed)
    )


def judge_status(
    status: int,
    method: str,
    keyed: bool,
    replayable: bool,
    policy: Retry,
    hint: bool | None,
    problem: Problem | None,
) -> Verdict:
    """The verdict on an attempt that answered with ``status``.

    ``hint`` is the server's explicit verdict (``x-should-retry``, see ``problems``);
    ``problem`` the parsed body, consulted only for statuses that may be retried.
    """
    if status < 400:
        return FINAL_SUCCESS
    if not status_is_candidate(status, keyed, policy, hint):
        return Verdict(False, "server_said_no" if hint is False else "status_not_retryable")
    if not replayable:
        return _BODY_NOT_REPLAYABLE
    reason = f"status_{status}"
    if status in _NOT_PROCESSED_STATUSES:
        return Verdict(True, reason)
    if not _may_resend(method, keyed):
        return _METHOD_NOT_RETRYABLE
    keyed_conflict = status == 409 and keyed
    if hint is None and not keyed_conflict and problem is not None and not problem.retryable:
        return Verdict(False, "problem_not_retryable")
    return Verdict(True, reason)


_PREDICATE_YES = Verdict(True, "retry_if")
_PREDICATE_NO = Verdict(False, "retry_if")


def apply_predicate(
    answer: bool | None, verdict: Verdict, method: str, keyed: bool, replayable: bool
) -> Verdict:
    """The verdict once a ``retry_if`` predicate answered ``answer`` about an outcome the
    built-in rules judged ``verdict`` (never asked about our own refusals)."""
    if answer is None:
        return verdict
    if not answer:
        return _PREDICATE_NO if verdict.retry else verdict
    if verdict.retry:
        return verdict
    if not replayable:
        return _BODY_NOT_REPLAYABLE
    if not _may_resend(method, keyed):
        return _METHOD_NOT_RETRYABLE
    return _PREDICATE_YES
