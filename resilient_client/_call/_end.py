"""How a call ends: what the caller sees, and what is logged and announced.

Every path of a call ends here, once: a response with its :class:`ResilienceInfo`, the
fallback's answer, an ``ApiError`` when the client asked for one, or the last failure
raised with a note saying why the pipeline stopped. Whatever is raised carries the call's
record (:func:`resilience_info`).

An async fallback (an ``async def`` under the async client) is awaited by the driver, not
here: the first ask finds an awaitable and raises :class:`FallbackPending` with it; the
story yields it to the driver and runs the same end again with the answer in
``Call.fallback_ready`` (asking the fallback is the first thing each end does, so running
one again is safe).

Logging follows one rule: a failure handed to the caller as an exception is logged at
DEBUG only - the caller is already handling it; a 4xx/5xx *returned* as a response is
logged at WARNING/ERROR, since nothing else will say it.
"""

from __future__ import annotations

import inspect
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx

from .._exceptions import DeadlineExceededMixin, WriteParkedMixin
from .._logging import logger
from .._retry import IDEMPOTENT_METHODS
from ..problems import raise_for_error
from ..problems._headers import response_request_id
from ..problems._model import shown_code
from ._extensions import EXT_RESILIENCE
from ._info import ResilienceInfo

if TYPE_CHECKING:
    from ..problems import Problem
    from ._call import Call

__all__ = [
    "FallbackPending",
    "end_raised",
    "end_with_outcome",
    "end_with_response",
    "fallback_answer",
    "info",
    "parked_error",
    "resilience_info",
]

# Where an exception raised for a call keeps the call's record.
_INFO_ATTRIBUTE = "__resilience_info__"


class FallbackPending(Exception):  # a signal to the story, never raised out of it
    """The fallback returned ``awaitable``: the driver must await it (``_story.py``)."""

    def __init__(self, awaitable: Any) -> None:
        super().__init__("an async fallback's answer is awaited")
        self.awaitable = awaitable


def resilience_info(outcome: object) -> ResilienceInfo | None:
    """The :class:`ResilienceInfo` of the call that produced ``outcome`` - a response the
    pipeline returned, or any exception it raised (httpx's own included) - else ``None``."""
    if isinstance(outcome, BaseException):
        found = getattr(outcome, _INFO_ATTRIBUTE, None)
        if found is None:
            response = getattr(outcome, "_response", None)  # an HTTPStatusError's
            if response is not None:
                found = response.extensions.get(EXT_RESILIENCE)
    else:
        extensions = getattr(outcome, "extensions", None)
        found = extensions.get(EXT_RESILIENCE) if isinstance(extensions, dict) else None
    return found if isinstance(found, ResilienceInfo) else None


def info(call: Call, response: httpx.Response | None = None) -> ResilienceInfo:
    """The call's record as it stands, with ``response``'s request id."""
    return ResilienceInfo(
        call.endpoint.key,
        call.attempts,
        call.clock.monotonic() - call.started,
        call.idempotency_key,
        call.correlation_id,
        None if response is None else response_request_id(response.headers),
        call.retry_reasons,
        # call.final_reason, inlined: a frame per call
        call.stop_reason
        if call.stop_reason is not None or call.verdict is None
        else call.verdict.reason,
        call.fallback_used,
        call.injected,
        # the failover's choice (without failover, the request's URL says who answered:
        # naming its origin on every call cost ~2,000 instructions for nothing new)
        call.origin,
        call.hedges,
    )


def end_with_outcome(call: Call, outcome: httpx.Response | BaseException) -> httpx.Response:
    """The call's last outcome as the caller sees it: a response (:func:`end_with_response`), the
    fallback's answer for a failure, or the failure raised."""
    if not isinstance(outcome, BaseException):
        return end_with_response(call, outcome)
    error = outcome
    if (
        isinstance(error, call.flavor.TimeoutException)
        and not isinstance(error, DeadlineExceededMixin)
        and call.deadline_passed()
    ):
        error = call.deadline_exceeded()
    # Asked before anything is logged: a failure the fallback answers is no failure.
    replacement = _fallback(call, error)
    if replacement is not None:
        return replacement
    record = info(call)
    _log(call, record, logging.DEBUG, None, None, type(error).__name__)
    _explain(error, call, record)
    if error is outcome:
        raise outcome
    raise error from outcome


def fallback_answer(call: Call, failure: httpx.Response | BaseException) -> httpx.Response | None:
    """The fallback's answer for a failure the call is about to park, or ``None``: a
    fallback still wins over the outbox, for the failures it answers anywhere else (an
    exception, a 5xx or a 429; not a keyed write's 409, which is parked)."""
    if not isinstance(failure, BaseException):
        status = failure.status_code
        if status < 500 and status != 429:
            return None
    return _fallback(call, failure)


def parked_error(call: Call, entry: Any, failure: httpx.Response | BaseException) -> Exception:
    """The ``WriteParked`` to raise for a write stored in the outbox as ``entry``, with
    the call's record and a note; the failure is its cause."""
    error: Exception = call.flavor.WriteParked(entry, request=call.request)
    if isinstance(failure, BaseException):
        error.__cause__ = failure
    # (a response the caller never sees is closed by the driver: the story's Discard step)
    record = info(call, None if isinstance(failure, BaseException) else failure)
    _log(call, record, logging.DEBUG, None, None, "WriteParked")
    _explain(error, call, record)
    return error


def end_raised(call: Call, exc: Exception) -> httpx.Response:
    """The fallback answer for a call that raised ``exc``, or ``exc`` re-raised; the
    call's end is announced either way, even if the fallback itself raises."""
    try:
        # A parked write's end is decided: answered in its place, it would be sent twice.
        fallback = None if isinstance(exc, WriteParkedMixin) else _fallback(call, exc)
    except FallbackPending:  # the story awaits it, then ends here again
        raise
    except Exception as error:
        call.announce_end(None, error)
        raise
    if fallback is None:
        if getattr(exc, _INFO_ATTRIBUTE, None) is None:  # refused before any attempt
            _explain(exc, call, info(call))
        call.announce_end(None, exc)
        raise exc
    return fallback


def end_with_response(call: Call, response: httpx.Response) -> httpx.Response:
    """Attach the call's record; raise an ``ApiError`` if the client asked for that."""
    status = response.status_code
    if (status >= 500 or status == 429) and call.policy.fallback is not None:
        replacement = _fallback(call, response)
        if replacement is not None:
            return replacement
    record = info(call, response)
    response.extensions[EXT_RESILIENCE] = record
    if call.read_body and not hasattr(response, "_elapsed"):
        # httpx sets it when its own stream wrapper closes, which a body the pipeline read
        # inside the attempt never does: the call's time, waits included, is the answer's.
        # (Only then: httpx never times a body that came in memory either, and setting it
        # on every answer cost ~9,000 instructions a call over MockTransport, cachegrind.)
        response.elapsed = timedelta(0, record.elapsed)
    if status >= 400:
        raising = call._pipeline.raise_for_error
        level = logging.DEBUG if raising else logging.WARNING if status < 500 else logging.ERROR
        # Parsed only for a reader: the log (when on) or the ApiError. An unread stream
        # is parsed only for the error, as the caller will not read it then.
        problem = None
        if raising or (response.is_stream_consumed and logger.isEnabledFor(level)):
            problem = call.problem(response)
        _log(call, record, level, status, problem)
        if raising:
            response.request = call.request  # the client would set it only later
            try:
                raise_for_error(response, error_class=call.flavor.api_error_class, problem=problem)
            except Exception as error:
                _explain(error, call, record)
                raise
    elif call.attempts > 1:
        _log(call, record, logging.DEBUG, status, None)
    return response


def _fallback(call: Call, failure: httpx.Response | BaseException) -> httpx.Response | None:
    """The policy's fallback answer for a failed call, or ``None`` (no fallback).

    Asked at most once per call: a final 5xx that the fallback declined does not ask
    again when ``raise_for_error`` turns it into an ``ApiError``.
    """
    fallback = call.policy.fallback
    if fallback is None:
        return None
    ready = call.fallback_ready
    answer: Any
    if ready is not None:  # an async fallback's answer, awaited by the driver
        call.fallback_ready = None
        answer = ready[0]
    elif call.fallback_asked:
        return None
    else:
        call.fallback_asked = True
        answer = fallback(call.request, failure)
        if inspect.isawaitable(answer):
            raise FallbackPending(answer)
    if answer is None:
        return None
    response: httpx.Response = answer
    call.fallback_used = True
    response.request = call.request
    response.extensions[EXT_RESILIENCE] = info(call, response)
    return response


def _explain(error: BaseException, call: Call, record: ResilienceInfo) -> None:
    """Leave the call's record on ``error`` and a note (PEP 678) saying why it stopped."""
    try:
        setattr(error, _INFO_ATTRIBUTE, record)
    except AttributeError:  # pragma: no cover - an exception class with __slots__
        return
    # No stop rule ended the call: the error came from outside the attempts (the
    # caller's retry_if, failure_if or fallback, say), after any number of them.
    reason = record.stop_reason or "this error, raised outside any attempt"
    note = (
        f"resilient_client: endpoint {record.endpoint!r}, {_attempts(record.attempts)} "
        f"in {record.elapsed:.3f}s, stopped by {reason}"
    )
    if reason == "method_not_retryable":
        note += (
            f"; not retried: a {call.request.method} without an idempotency key may already "
            "have been processed (give it a key to make it retryable)"
        )
    elif call.request.method not in IDEMPOTENT_METHODS and call.idempotency_key is None:
        note += f"; {call.request.method} without an idempotency key"
    error.add_note(note)


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def _log(
    call: Call,
    record: ResilienceInfo,
    level: int,
    status: int | None,
    problem: Problem | None,
    error: str | None = None,
) -> None:
    if not logger.isEnabledFor(level):
        return
    fields: dict[str, Any] = {
        "endpoint": record.endpoint,
        "status": status,
        "category": problem.category.value if problem is not None else error and "network",
        "code": shown_code(problem) if problem is not None else None,
        "request_id": (problem.request_id if problem is not None else None) or record.request_id,
        "attempts": record.attempts,
        "correlation_id": record.correlation_id,
        "error": error,
        "stop_reason": record.stop_reason,
    }
    what = f"status {status}" if status is not None else error
    if status is not None and status < 400:
        message = f"call to {record.endpoint} recovered after {_attempts(record.attempts)}: {what}"
    else:
        message = (
            f"call to {record.endpoint} failed after {_attempts(record.attempts)}: {what}, "
            f"stopped by {record.stop_reason}"
        )
    call._pipeline.failures.emit(level, message, fields)
