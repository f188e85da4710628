"""When a call stops instead of waiting for its next attempt.

Checked in this order, and the first that holds is the call's ``stop_reason``:

==========================  ===========================================================
``max_attempts``            the attempts allowed are used up
``retry_after_too_long``    the server asked for a longer wait than ``max_retry_after``
``deadline``                the wait would end at or past the call's deadline
``breaker``                 the endpoint's breaker would still refuse when the wait ends
``budget``                  the endpoint's retry budget refuses (asked last, by the call:
                            asking spends a retry token, so only a retry that really
                            happens may spend one)
==========================  ===========================================================

Pure: the caller passes the clock's reading and the breaker's ``retry_at`` in.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["StopReason", "stop_reason"]

StopReason = Literal[
    "max_attempts", "retry_after_too_long", "deadline", "breaker", "budget", "retry_off"
]


def stop_reason(
    *,
    attempts: int,
    max_attempts: int,
    too_long: bool,
    now: float,
    delay: float,
    deadline: float | None,
    breaker_retry_at: float | None,
) -> StopReason | None:
    """Why the call stops after ``attempts`` attempts instead of waiting ``delay``
    seconds (``now``, ``deadline`` and ``breaker_retry_at`` on one monotonic clock), or
    ``None`` if the retry may go ahead as far as these rules know (the budget is asked
    after them)."""
    if attempts >= max_attempts:
        return "max_attempts"
    if too_long:
        return "retry_after_too_long"
    wakes = now + delay
    if deadline is not None and wakes >= deadline:
        return "deadline"
    if breaker_retry_at is not None and breaker_retry_at > wakes:
        return "breaker"
    return None
