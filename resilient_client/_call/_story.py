"""A call's life, told once: the story both drivers run.

:func:`story` is a generator in the manner of httpx's ``Auth.auth_flow``. It makes every
decision of one call and yields a step whenever the call needs I/O; the driver does that
I/O and leaves the result in ``call.reply`` (or raises its error in the story at the step:
:func:`throw`) before resuming it. The sync and async drivers (``_transport.py``) are short
loops over it that differ only in ``await``::

    admit          the throttle may shed the call; the bulkhead may make it wait
      ├─ Acquire(wait)        → the driver waits for a slot, replies whether it got one
    pace           the rate limit may make the attempt wait for its turn, or refuse it
      ├─ Wait(delay, None)    → the driver sleeps
    attempt        (repeated)
      ├─ SEND                 → the driver asks the breaker, sends the attempt, reads it,
      │                         tells the breaker, and replies with the outcome
      ├─ Hedge(delay, max)    → in place of SEND for a call that may hedge: the driver
      │                         runs a race of attempts (``_hedging.py``), each as SEND's,
      │                         and replies with the outcome that won it
    judge + wait   a success ends the call; any other outcome meets the retry room's
                   rules, run by tenacity's decision machine
      ├─ Wait(delay, discard) → the driver closes the outcome being retried and sleeps
                                (the backoff, and the rate limit's turn after it)
    stop           when the rules say so, the last outcome ends the call
    park           a keyed write that the outage refused goes to the outbox
      ├─ Park(details)        → the driver stores it, replies with the outbox entry
    record         the end (``_end.py``): a response with its record, a fallback, or the
                   failure raised with a note saying why the call stopped
      ├─ AwaitFallback(answer) → the async driver awaits an async fallback's answer and
                                replies with it (the sync driver refuses: TypeError)
      ├─ Discard(response)    → the driver closes the last response, still open, that
                                the caller will not get (a fallback's answer, an
                                ApiError or WriteParked in its place)

The story ends with the call's response in ``call.response``, or raising what the caller is
to see. The first attempt and every retry are the same ``SEND`` step; a call that succeeds
at once yields it once and never builds a retry loop.

Why replies go through the call and not ``generator.send()``: a generator resumed by
``send()`` ends by raising ``StopIteration``, which the driver must catch - an exception
object and a traceback entry on every call. Resumed by ``next(flow, None)``, a story that
returns ``None`` ends with no exception at all: 1,300 instructions and 100 instruction
cache misses a call less, sync and async (cachegrind), and about a point of the timed
ratio to raw httpx.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

from .._hedging import HedgeState, may_hedge
from .._logging import logger
from .._retry import FINAL_SUCCESS
from ._end import (
    FallbackPending,
    end_raised,
    end_with_outcome,
    end_with_response,
    fallback_answer,
    parked_error,
)

if TYPE_CHECKING:
    import httpx

    from ._call import Call

__all__ = [
    "SEND",
    "Acquire",
    "AwaitFallback",
    "Discard",
    "Hedge",
    "Park",
    "Step",
    "Story",
    "Wait",
    "story",
    "throw",
]

_T = TypeVar("_T")


class Acquire(NamedTuple):
    """Wait up to ``wait`` seconds for one of the endpoint's bulkhead slots; reply whether
    one was had."""

    wait: float


class _Send:
    """Send the next attempt; reply with its outcome (a response, or the exception)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SEND"


SEND: Final = _Send()


class Hedge(NamedTuple):
    """Send an attempt and, each time ``delay`` seconds pass without a final outcome,
    another, up to ``max_hedges`` more; reply with the outcome that ends the race."""

    delay: float
    max_hedges: int


def _hedge(state: HedgeState) -> Hedge:
    return Hedge(state.delay(), state.policy.max_hedges)


class Wait(NamedTuple):
    """Close ``discard`` (the response being retried, returning its connection), then
    sleep ``delay`` seconds before the next attempt."""

    delay: float
    discard: Any  # httpx.Response | None, of either library


class Discard(NamedTuple):
    """Close ``response``, which the caller will not get (a fallback's answer, an
    ``ApiError`` or ``WriteParked`` takes its place): its connection goes back to the
    pool. Only a response still open is discarded so (a streamed call's unread body)."""

    response: Any  # httpx.Response, of either library


class Park(NamedTuple):
    """Store the call's request in the pipeline's outbox (``details``: the keywords of
    ``Outbox.park``); reply with the entry."""

    details: dict[str, Any]


class AwaitFallback(NamedTuple):
    """Await ``answer``, what an ``async def`` fallback returned; reply with its result.
    A sync driver cannot: it throws in a ``TypeError`` (and closes ``answer``)."""

    answer: Any  # an awaitable of httpx.Response | None


Step = Acquire | _Send | Hedge | Wait | Discard | Park | AwaitFallback
Story = Generator[Step, None, None]


def throw(flow: Story, error: BaseException) -> Step | None:
    """Raise ``error``, what doing the story's step raised, in ``flow`` at that step: the
    story's next step, or ``None`` once it has ended (its response in ``call.response``)."""
    try:
        return flow.throw(error)
    except StopIteration:
        return None


def _resume(
    call: Call,
    pending: FallbackPending,
    end: Callable[[Call, Any], _T],
    failure: Any,
    *,
    last: bool = False,
) -> Generator[Step, None, _T]:
    """Have the driver await the async fallback's answer that ``end(call, failure)`` met
    (``pending``), then run that end again with it. ``last``: the end of the call's last
    resort (``end_raised``), which announces the call's end even if the fallback raises.
    (Only calls with an async fallback get here: the others pay no generator for it.)"""
    try:
        yield AwaitFallback(pending.awaitable)
    except BaseException as exc:
        if last:
            call.announce_end(None, exc)
        raise
    call.fallback_ready = (call.reply,)
    return end(call, failure)


def story(call: Call) -> Story:
    """Run ``call`` to its end, yielding the steps that need I/O; leave its response in
    ``call.response``.

    Raises what the caller is to see (the last failure, a local refusal, an
    ``ApiError``). A ``BaseException`` thrown in at a step (cancellation) ends the call's
    record and propagates.
    """
    try:
        if call.throttle is not None:
            call.admit()
        bulkhead = call.bulkhead
        if bulkhead is not None:
            yield Acquire(call.slot_wait())
            if not call.reply:
                raise call.refused_by_bulkhead()
        rate_limit = call.rate_limit
        try:
            if rate_limit is not None and (turn := call.pace()):
                yield Wait(turn, None)
            hedge = call.hedge
            if hedge is not None and not may_hedge(
                call.request.method, call.idempotency_key is not None, call.replayable
            ):
                hedge = None
            yield SEND if hedge is None else _hedge(hedge)
            outcome = call.reply
            # Every outcome but a success goes to the retry rules. A success ends the call
            # (unless a retry predicate may retry one) with no verdict to weigh and no
            # retry loop to feed: decided here, a frame less on every call.
            while (
                isinstance(outcome, BaseException)
                or outcome.status_code >= 400
                or call.retry_if is not None
            ):
                delay = call.after(outcome)
                if delay is None:  # the rules end the call with this outcome
                    break
                if rate_limit is not None:
                    turn = call.pace(delay)
                    if turn is None:  # no turn within the wait: the last outcome stands
                        break
                    delay += turn
                discard = None if isinstance(outcome, BaseException) else outcome
                yield Wait(delay, discard)
                yield SEND if hedge is None else _hedge(hedge)
                outcome = call.reply
            else:  # the loop ended on a success
                call.verdict = FINAL_SUCCESS
        finally:
            if bulkhead is not None:
                bulkhead.release()
            if rate_limit is not None:  # a turn taken for an attempt never sent
                call.unpace()
        # The end: the call's answer, or what it raises. A response the caller will not
        # get (a fallback's answer, an ApiError or WriteParked in its place) is discarded
        # if still open - a streamed call's unread body holds a pooled connection.
        try:
            response = None
            # (policy.outbox first: no frame for the calls of endpoints without an outbox)
            if call.policy.outbox and call.parks(outcome):
                # A fallback still wins over the outbox: asked first, its answer ends the call.
                response = yield from _answer(call, outcome)
                if response is None:
                    yield from _park(call, outcome)  # raises WriteParked, unless it failed
            if response is None:
                # A response is finished directly: a frame less on every call that answers.
                end = end_with_outcome if isinstance(outcome, BaseException) else end_with_response
                try:
                    response = end(call, outcome)
                except FallbackPending as pending:
                    response = yield from _resume(call, pending, end, outcome)
        except Exception:
            if _open(outcome):
                yield Discard(outcome)
            raise
        # (one identity test on every call: the answer is the last outcome but for a fallback)
        if response is not outcome and _open(outcome):
            yield Discard(outcome)
    except Exception as exc:  # announces the end itself, whether it answers or raises
        try:
            response = end_raised(call, exc)
        except FallbackPending as pending:
            response = yield from _resume(call, pending, end_raised, exc, last=True)
    except BaseException as exc:  # cancelled: the call's record ends all the same
        call.announce_end(None, exc)
        raise
    if call.observers:  # (a frame per call spared when nobody listens)
        call.announce_end(response, None)
    call.response = response


def _open(outcome: Any) -> bool:
    """Whether ``outcome`` is a response whose body is still open."""
    return not isinstance(outcome, BaseException) and not outcome.is_closed


def _park(call: Call, failure: Any) -> Generator[Step, None, None]:
    """Store the call's write in the outbox and raise ``WriteParked``; if the store
    fails, log it and return: the write's own failure stands."""
    try:
        yield Park(call.park_details(failure))
    except Exception:
        logger.warning(
            "could not park a write in the outbox; its failure is raised instead",
            exc_info=True,
            extra={"endpoint": call.endpoint.key, "correlation_id": call.correlation_id},
        )
    else:
        raise parked_error(call, call.reply, failure)


def _answer(call: Call, failure: Any) -> Generator[Step, None, httpx.Response | None]:
    """The fallback's answer for a failure about to be parked (awaited if async)."""
    try:
        return fallback_answer(call, failure)
    except FallbackPending as pending:
        return (yield from _resume(call, pending, fallback_answer, failure))
