"""Policies: immutable, validated descriptions of how calls to an endpoint behave.

:class:`Policy` gathers one policy per strategy, each defined in its strategy's room
(``Timeouts`` in ``_deadline``, ``Retry``/``Backoff`` in ``_retry``, ``Breaker`` in
``_breaker``...). A policy is a frozen pydantic model. ``None`` for a strategy (``retry=None``,
``idempotency=None``, ...) switches it off; a field that was not given keeps the value
of the policy it is merged over. Merging (:func:`merge`) follows the fields each
policy was *given*, recursively, and re-validates the result, so an endpoint policy
``Policy(timeouts=Timeouts(read=2.0))`` changes the read timeout and nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict

from ._breaker import Breaker
from ._budget import RetryBudget
from ._bulkhead import Bulkhead
from ._deadline import Timeouts
from ._hedging import Hedging
from ._idempotency import Idempotency
from ._rate_limit import RateLimit
from ._retry import Backoff, Retry
from ._throttle import AdaptiveThrottle
from .chaos._inject import Chaos

__all__ = ["Backoff", "Policy", "Retry", "Timeouts", "merge"]

# An async client's fallback may be a coroutine function (the async driver awaits it).
Fallback = Callable[
    [httpx.Request, BaseException | httpx.Response],
    httpx.Response | Awaitable[httpx.Response | None] | None,
]


class Policy(BaseModel):
    """Everything the pipeline does for one endpoint.

    Defaults: 3 attempts with capped full-jitter backoff, a 30 s deadline, 10 s per
    attempt, idempotency keys on POST and PATCH, a breaker per endpoint (70 % of the last
    5 s of calls failed, once they hold 100 calls, opens it for 1 s), a retry budget of
    25 % plus 1/s per endpoint; no bulkhead, no adaptive throttle, no fallback. The
    breaker and budget defaults are the ones ``benchmarks/scenarios.py`` chose (README,
    "How it behaves in an outage"). A field set to ``None`` is off.

    ``breaker``, ``budget``, ``bulkhead`` and ``throttle`` keep state per endpoint: their
    parameters come from the endpoint's policy, and a per-call override can only switch
    them off. ``fallback(request, failure)`` is called when a call fails - ``failure``
    is the exception about to be raised (an open breaker, a deadline, the last transport
    error, an ``ApiError`` with ``raise_for_error=True``...) or the final 5xx/429
    response - and may return a response to use instead
    (``ResilienceInfo.fallback`` is then true) or ``None``. It is a plain function, run
    on the caller's thread or event loop: keep it quick (a cache lookup, a default).
    Under the async client it may be an ``async def`` (awaited on the call's event
    loop); under the sync client an ``async def`` fallback raises ``TypeError``.

    ``rate_limit`` (``rc.RateLimit``) paces the endpoint's calls to stay under a fixed
    rate and the limits the provider announces in its headers; a call that cannot be
    admitted within its wait raises ``rc.RateLimited`` without reaching the server.

    ``outbox=True`` parks a keyed write that fails with a retryable outcome in the
    client's outbox (``outbox=rc.Outbox(...)``) and raises ``WriteParked``; ``chaos``
    injects faults into this endpoint's attempts (``rc.Chaos``), for tests and rehearsals.

    ``hedging`` (``rc.Hedging``) starts another attempt of an idempotent or keyed call
    when the first has not answered after its delay; the first final answer wins and the
    others are cancelled. Off by default.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    timeouts: Timeouts = Timeouts()
    retry: Retry | None = Retry()
    idempotency: Idempotency | None = Idempotency()
    breaker: Breaker | None = Breaker()
    budget: RetryBudget | None = RetryBudget()
    bulkhead: Bulkhead | None = None
    throttle: AdaptiveThrottle | None = None
    fallback: Fallback | None = None
    rate_limit: RateLimit | None = None
    outbox: bool = False
    chaos: Chaos | None = None
    hedging: Hedging | None = None


_M = TypeVar("_M", bound=BaseModel)


def merge(base: _M, override: BaseModel) -> _M:
    """``override``'s given fields over ``base``, nested policies merged field by field.

    Returns a new, validated ``base``-typed model; neither argument changes.
    """
    if type(override) is not type(base):
        raise TypeError(f"cannot merge {type(override).__name__} over {type(base).__name__}")
    # Only what either side was given: a default that a validator derives (a count
    # window's minimum_calls) is derived again for the merged values, not carried over.
    # The merged model's fields_set is then that union, so it merges on like its parts.
    data: dict[str, Any] = {name: getattr(base, name) for name in base.model_fields_set}
    for name in override.model_fields_set:
        value = getattr(override, name)
        current = getattr(base, name)
        if isinstance(value, BaseModel) and type(current) is type(value):
            value = merge(current, value)
        data[name] = value
    return type(base).model_validate(data)
