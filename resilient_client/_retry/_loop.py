"""The retry loop's decision machine: tenacity's, fed by the call's rules.

tenacity does real work here: its ``BaseRetrying.iter()`` is a sans-IO state machine that,
after each attempt's outcome, runs the *retry?* → *wait* → *stop?* sequence, counts the
attempts and the time slept (``RetryCallState``, ``statistics``) and answers ``DoSleep``
or the end. The call plugs its own rules into it (``Call.judge``: which outcomes are
retried, ``_rules.py``; ``Call.next_delay``: the wait, ``_waits.py``; ``Call.stops``: when
to stop, ``_stop.py``). tenacity never sleeps or sends here: the call's story turns its
answer into a ``Wait`` step and the drivers do the I/O.

A loop is built only when a call's first outcome is not a plain success: most calls never
pay for one (the loop costs about a quarter of a raw httpx call).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import tenacity
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

if TYPE_CHECKING:
    import httpx

    from ._rules import Verdict

__all__ = ["RetryLoop", "Rules"]

Outcome = Any  # httpx.Response | BaseException, of either library


class Rules(Protocol):
    """What the loop asks of a call after each outcome."""

    def judge(self, outcome: httpx.Response | BaseException) -> Verdict: ...
    def next_delay(self, outcome: httpx.Response | BaseException) -> float: ...
    def stops(self) -> bool: ...


def _outcome(state: tenacity.RetryCallState) -> Outcome:
    future = state.outcome
    assert future is not None
    return future.exception() if future.failed else future.result()


# The strategies are shared by every loop: each finds its call's rules in the loop's
# state (``args``), which tenacity hands them (three objects fewer to build per retried
# call).


class _RetryIf(retry_base):
    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        rules: Rules = retry_state.args[0]
        return rules.judge(_outcome(retry_state)).retry


class _Wait(wait_base):
    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        rules: Rules = retry_state.args[0]
        return rules.next_delay(_outcome(retry_state))


class _StopIf(stop_base):
    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        # The call's rules also count max_attempts: tenacity's own stop stays out so
        # that the stop reason is recorded in one place.
        rules: Rules = retry_state.args[0]
        return rules.stops()


_RETRY_IF, _WAIT, _STOP_IF = _RetryIf(), _Wait(), _StopIf()


def _stopped(retry_state: tenacity.RetryCallState) -> None:
    """On stop: no RetryError; the call ends with its last outcome, as it came."""
    return None


def _never_sleep(seconds: float) -> None:
    raise AssertionError("the retry loop decides; the drivers sleep")  # pragma: no cover


class RetryLoop:
    """One call's retry decisions, one outcome at a time."""

    __slots__ = ("_retrying", "_state")

    def __init__(self, rules: Rules) -> None:
        self._retrying = tenacity.Retrying(
            retry=_RETRY_IF,
            wait=_WAIT,
            stop=_STOP_IF,
            retry_error_callback=_stopped,
            sleep=_never_sleep,
        )
        self._retrying.begin()
        self._state = tenacity.RetryCallState(self._retrying, fn=None, args=(rules,), kwargs={})

    def after(self, outcome: Outcome) -> float | None:
        """Feed one attempt's outcome: the delay before the next attempt, or ``None``
        when the call ends with this outcome."""
        state = self._state
        if isinstance(outcome, BaseException):
            state.set_exception((type(outcome), outcome, outcome.__traceback__))
        else:
            state.set_result(outcome)
        try:
            action = self._retrying.iter(state)
        except BaseException as exc:
            if exc is outcome:  # tenacity re-raises a failure it will not retry: the end
                return None
            raise
        if isinstance(action, tenacity.DoSleep):
            state.prepare_for_next_attempt()
            return float(action)
        return None  # the outcome itself (not retried) or _stopped's None (stopped)
