"""How a call ends: what the caller sees, and what is logged and announced.

A mixin of :class:`~resilient_client._call._call.Call`, kept apart so the end of every path
reads in one place: a response with its :class:`ResilienceInfo`, the fallback's answer,
an ``ApiError`` when the client asked for one, or the last failure raised with a note of
the attempts - and the call's end announced to the observers exactly once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from .. import _exceptions
from .._logging import logger
from .._retry._rules import FINAL_SUCCESS
from ..problems import raise_for_error
from ..problems._headers import response_request_id
from ._events import CallEnded
from ._info import ResilienceInfo
from ._state import CallState, new_tuple

if TYPE_CHECKING:
    from ..problems import Problem

__all__ = ["CallEnd"]


class CallEnd(CallState):
    """The end of a call, over the state :class:`Call` keeps."""

    __slots__ = ()  # as CallState's: Call keeps no __dict__

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
        if self.observers:
            self._emit(new_tuple(CallEnded, (response, error, self.fallback_used)))

    @property
    def final_reason(self) -> str | None:
        """Why the call ended where it did: its stop reason, else its last verdict's."""
        if self.stop_reason is None and self.verdict is not None:
            return self.verdict.reason
        return self.stop_reason

    def info(self, response: httpx.Response | None = None) -> ResilienceInfo:
        request_id = None if response is None else response_request_id(response.headers)
        return new_tuple(
            ResilienceInfo,
            (
                self.endpoint.key,
                self.attempts,
                self.clock.monotonic() - self.started,
                self.idempotency_key,
                self.correlation_id,
                request_id,
                self.retry_reasons,
                # final_reason, inlined: a frame per call
                self.stop_reason
                if self.stop_reason is not None or self.verdict is None
                else self.verdict.reason,
                self.fallback_used,
            ),
        )

    def settle(self, outcome: httpx.Response | BaseException) -> httpx.Response | None:
        """The first attempt's outcome as the caller sees it (:meth:`conclude`), or
        ``None`` if it is to be retried. A success is settled without judging it."""
        if (
            not isinstance(outcome, BaseException)
            and outcome.status_code < 400
            and self.attempts == 1
        ):
            # The common end by far: what judge() and conclude() would do, in one frame.
            self.verdict = FINAL_SUCCESS
            self._judged = outcome
            outcome.extensions["resilience"] = self.info(outcome)
            return outcome
        if self.judge(outcome).retry:
            return None
        return self.conclude(outcome)

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
