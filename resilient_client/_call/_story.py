"""A call's life, told once: the story both drivers run.

:func:`story` is a generator in the manner of httpx's ``Auth.auth_flow``. It makes every
decision of one call and yields a step whenever the call needs I/O; the driver does that
I/O and sends the result back in. The sync and async drivers (``_transport.py``) are short
loops over it that differ only in ``await``::

    admit          the throttle may shed the call; the bulkhead may make it wait
      ├─ Acquire(wait)        → the driver waits for a slot, sends back whether it got one
    attempt        (repeated)
      ├─ SEND                 → the driver asks the breaker, sends the attempt, reads it,
      │                         tells the breaker, and sends back the outcome
    judge + wait   the retry room's rules, run by tenacity's decision machine
      ├─ Wait(delay, discard) → the driver closes the outcome being retried and sleeps
    stop           when the rules say so, the last outcome ends the call
    park           a keyed write that the outage refused goes to the outbox
      ├─ Park(details)        → the driver stores it, sends back the outbox entry
    record         the end (``_end.py``): a response with its record, a fallback, or the
                   failure raised with a note saying why the call stopped

The first attempt and every retry are the same ``SEND`` step; a call that succeeds at once
yields it once and never builds a retry loop.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from .._logging import logger
from ._end import end_raised, end_with_outcome, end_with_response, fallback_answer, parked_error

if TYPE_CHECKING:
    import httpx

    from ._call import Call

__all__ = ["SEND", "Acquire", "Park", "Step", "Wait", "story"]


class Acquire(NamedTuple):
    """Wait up to ``wait`` seconds for one of the endpoint's bulkhead slots; send back
    whether one was had."""

    wait: float


class _Send:
    """Send the next attempt; send back its outcome (a response, or the exception)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SEND"


SEND: Final = _Send()


class Wait(NamedTuple):
    """Close ``discard`` (the response being retried, returning its connection), then
    sleep ``delay`` seconds before the next attempt."""

    delay: float
    discard: Any  # httpx.Response | None, of either library


class Park(NamedTuple):
    """Store the call's request in the pipeline's outbox (``details``: the keywords of
    ``Outbox.park``); send back the entry."""

    details: dict[str, Any]


Step = Acquire | _Send | Wait | Park


def story(call: Call) -> Generator[Step, Any, httpx.Response]:
    """Run ``call`` to its end, yielding the steps that need I/O; return its response.

    Raises what the caller is to see (the last failure, a local refusal, an
    ``ApiError``). A ``BaseException`` thrown in at a step (cancellation) ends the call's
    record and propagates.
    """
    try:
        if call.throttle is not None:
            call.admit()
        bulkhead = call.bulkhead
        if bulkhead is not None and not (yield Acquire(call.slot_wait())):
            raise call.refused_by_bulkhead()
        try:
            outcome = yield SEND
            while (delay := call.after(outcome)) is not None:
                discard = None if isinstance(outcome, BaseException) else outcome
                yield Wait(delay, discard)
                outcome = yield SEND
        finally:
            if bulkhead is not None:
                bulkhead.release()
        # (policy.outbox first: no frame for the calls of endpoints without an outbox)
        if call.policy.outbox and call.parks(outcome) and fallback_answer(call, outcome) is None:
            try:
                entry = yield Park(call.park_details(outcome))
            except Exception:  # the store failed: the write's own failure stands
                logger.warning(
                    "could not park a write in the outbox; its failure is raised instead",
                    exc_info=True,
                    extra={"endpoint": call.endpoint.key, "correlation_id": call.correlation_id},
                )
            else:
                raise parked_error(call, entry, outcome)
        # A response is finished directly: a frame less on every call that answers.
        response = (
            end_with_outcome(call, outcome)
            if isinstance(outcome, BaseException)
            else end_with_response(call, outcome)
        )
    except Exception as exc:  # announces the end itself, whether it answers or raises
        response = end_raised(call, exc)
    except BaseException as exc:  # cancelled: the call's record ends all the same
        call.announce_end(None, exc)
        raise
    if call.observers:  # (a frame per call spared when nobody listens)
        call.announce_end(response, None)
    return response
