"""The retry loop: tenacity's ``Retrying`` / ``AsyncRetrying``, fed by the call's decisions.

tenacity asks, after each attempt: *retry?* (``Call.judge``), *how long to wait?*
(``Call.next_delay``: Retry-After or backoff), *stop?* (``Call.stops``: attempts,
Retry-After too long, deadline, breaker, budget). It then sleeps through the
injected clock and calls the attempt again. The first attempt of every call runs
outside tenacity: a call that succeeds at once never builds a loop (measured: the async
loop alone costs about a quarter of a raw httpx call). Only when that attempt asks for a
retry does the loop start, replaying its outcome as the loop's own first attempt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tenacity import RetryCallState
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

if TYPE_CHECKING:
    from .._call._call import Call

__all__ = ["loop_arguments", "Replay", "AsyncReplay"]


def _outcome(state: RetryCallState) -> Any:
    future = state.outcome
    assert future is not None
    return future.exception() if future.failed else future.result()


class _RetryIfCallSays(retry_base):
    def __init__(self, call: Call) -> None:
        self._call = call

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._call.judge(_outcome(retry_state)).retry


class _WaitForCall(wait_base):
    def __init__(self, call: Call) -> None:
        self._call = call

    def __call__(self, retry_state: RetryCallState) -> float:
        return self._call.next_delay(_outcome(retry_state))


class _StopIfCallSays(stop_base):
    def __init__(self, call: Call) -> None:
        self._call = call

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._call.stops()


def _last_outcome(retry_state: RetryCallState) -> Any:
    """On stop: the call ends with its last outcome, returned or raised as it came."""
    future = retry_state.outcome
    assert future is not None
    return future.result()


def loop_arguments(call: Call) -> dict[str, Any]:
    """The keyword arguments of ``Retrying``/``AsyncRetrying`` for one call."""
    return {
        "retry": _RetryIfCallSays(call),
        "wait": _WaitForCall(call),
        # Call.stops() also enforces max_attempts; tenacity's own stop stays out so
        # that the stop reason is recorded in one place.
        "stop": _StopIfCallSays(call),
        "retry_error_callback": _last_outcome,
    }


class Replay:
    """An attempt function whose first call returns (or raises) an outcome already had."""

    __slots__ = ("_first", "_send")

    def __init__(self, first: Any, send: Callable[[], Any]) -> None:
        self._first: Any = first
        self._send = send

    def __call__(self) -> Any:
        first, self._first = self._first, None
        if first is None:
            return self._send()
        if isinstance(first, BaseException):
            raise first
        return first


class AsyncReplay:
    """:class:`Replay` for the async driver."""

    __slots__ = ("_first", "_send")

    def __init__(self, first: Any, send: Callable[[], Awaitable[Any]]) -> None:
        self._first: Any = first
        self._send = send

    async def __call__(self) -> Any:
        first, self._first = self._first, None
        if first is None:
            return await self._send()
        if isinstance(first, BaseException):
            raise first
        return first
