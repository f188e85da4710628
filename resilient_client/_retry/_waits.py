"""How long a call waits before its next attempt: the server's word, else the backoff.

Pure: the caller passes the response's headers, its parsed problem, the time and a random
number in, and gets a delay back. With ``Retry.respect_retry_after`` a server's
``retry-after-ms``, ``Retry-After`` (seconds or an HTTP-date) or a body's retry hint
(Google ``RetryInfo``) may lengthen the wait, never shorten it: the delay is the longer
of the hint and the backoff's own delay (jitter included), so a server answering
``Retry-After: 0``, a negative value or a date in the past cannot make the client retry
faster than it would unprompted. A hint longer than ``max_retry_after`` ends the call
instead (the stop rules in ``_stop.py`` read :attr:`Wait.too_long`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ..problems import retry_after_seconds

if TYPE_CHECKING:
    import httpx

    from ..problems import Problem
    from ._policy import Backoff, Retry

__all__ = ["Wait", "backoff_delay", "next_wait"]


class Wait(NamedTuple):
    """The delay before the next attempt, and whether a server hint asked for more than
    the policy allows (the call then stops instead of waiting)."""

    delay: float
    too_long: bool


def next_wait(
    retry: Retry,
    headers: httpx.Headers | None,
    problem: Problem | None,
    retry_num: int,
    previous: float,
    rnd: float,
    now: float,
) -> Wait:
    """The wait before retry ``retry_num`` (1 = the second attempt): the server's hint
    when it is longer than the backoff's delay, else that delay.

    ``headers`` and ``problem`` are the last response's (``None`` after a transport
    failure); ``previous`` the call's last delay (``0.0`` before the first retry), ``rnd``
    uniform in ``[0, 1)``, ``now`` wall-clock seconds (for an HTTP-date ``Retry-After``).
    """
    hint: float | None = None
    if retry.respect_retry_after and headers is not None:
        hint = retry_after_seconds(headers, now=now)
        if hint is None and problem is not None:
            hint = problem.retry_after
    # previous' 0.0 before the first retry counts as none: "decorrelated" never starts
    # below ``initial``.
    delay = backoff_delay(retry.backoff, retry_num, previous, rnd)
    if hint is None:
        return Wait(delay, False)
    if hint > retry.max_retry_after:
        return Wait(hint, True)
    # The backoff is the floor: a hint of 0, negative or past must not turn the retries
    # into a tight loop against a server that is already failing.
    return Wait(hint if hint > delay else delay, False)


def backoff_delay(backoff: Backoff, retry_num: int, previous: float | None, rnd: float) -> float:
    """The delay in seconds before retry ``retry_num`` (1 = the second attempt).

    ``previous`` is the last delay chosen for this call (used by ``"decorrelated"``),
    ``rnd`` a number uniform in ``[0, 1)``. Formulas: see :class:`Backoff`.
    """
    if backoff.jitter == "decorrelated":
        last = backoff.initial if previous is None else max(previous, backoff.initial)
        return min(backoff.max, backoff.initial + rnd * (3.0 * last - backoff.initial))
    try:
        base = min(backoff.max, backoff.initial * backoff.multiplier ** (retry_num - 1))
    except OverflowError:
        base = backoff.max
    if backoff.jitter == "full":
        return rnd * base
    if backoff.jitter == "equal":
        return base / 2.0 + rnd * base / 2.0
    return base
