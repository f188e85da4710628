"""Policies: immutable, validated descriptions of how calls to an endpoint behave.

A policy is a frozen pydantic model. ``None`` for a strategy (``retry=None``,
``idempotency=None``, ...) switches it off; a field that was not given keeps the value
of the policy it is merged over. Merging (:func:`merge`) follows the fields each
policy was *given*, recursively, and re-validates the result, so an endpoint policy
``Policy(timeouts=Timeouts(read=2.0))`` changes the read timeout and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._breaker import Breaker
from ._budget import RetryBudget
from ._bulkhead import Bulkhead
from ._idempotency import Idempotency
from ._throttle import AdaptiveThrottle

__all__ = ["Backoff", "Policy", "Retry", "Timeouts", "merge"]

Jitter = Literal["full", "equal", "decorrelated", "none"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

DEFAULT_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _positive_or_none(value: float | None, name: str) -> float | None:
    if value is not None and not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return value


class Timeouts(BaseModel):
    """Timeouts in seconds. ``None`` means no limit for that phase.

    ``connect``, ``read``, ``write`` and ``pool`` are httpx's per-phase timeouts for
    one attempt. ``attempt`` caps one attempt as a whole (connect to last body byte
    when the body is read by the pipeline). ``total`` is the call's deadline: all
    attempts and the waits between them; each attempt's timeouts are clipped to what
    is left of it, and when it runs out the call raises ``DeadlineExceeded``.
    """

    model_config = _FROZEN

    connect: float | None = 5.0
    read: float | None = 10.0
    write: float | None = 10.0
    pool: float | None = 5.0
    attempt: float | None = 10.0
    total: float | None = 30.0

    @field_validator("connect", "read", "write", "pool", "attempt", "total")
    @classmethod
    def _check_positive(cls, value: float | None, info: Any) -> float | None:
        return _positive_or_none(value, info.field_name)


class Backoff(BaseModel):
    """Exponential backoff between attempts, in seconds.

    The base delay before retry ``n`` (1 for the second attempt) is
    ``min(max, initial * multiplier ** (n - 1))``; the jitter then picks the delay
    with ``r`` uniform in ``[0, 1)``:

    - ``"full"``: ``r * base`` (AWS "full jitter"; the default: it spreads a fleet best)
    - ``"equal"``: ``base / 2 + r * base / 2``
    - ``"decorrelated"``: ``min(max, initial + r * (3 * previous - initial))``, where
      ``previous`` is the last delay (``initial`` before the first)
    - ``"none"``: ``base``
    """

    model_config = _FROZEN

    initial: float = Field(default=0.25, ge=0.0)
    multiplier: float = Field(default=2.0, ge=1.0)
    max: float = Field(default=8.0, ge=0.0)
    jitter: Jitter = "full"

    @model_validator(mode="after")
    def _check_order(self) -> Backoff:
        if self.max < self.initial:
            raise ValueError(f"max ({self.max}) must not be below initial ({self.initial})")
        return self


class Retry(BaseModel):
    """Which failed attempts are tried again, how often, and how long to wait.

    ``max_attempts`` counts every attempt, the first included (1 = never retry).
    Transport failures and statuses in ``retry_on_status`` are retried for methods
    RFC 9110 calls idempotent; POST and PATCH only with an idempotency key, or when the
    failure proves the request was not processed (connect error, 421, 425).
    With ``respect_retry_after``, a server's ``Retry-After``/``retry-after-ms`` or body
    hint replaces the backoff; a hint above ``max_retry_after`` seconds ends the call
    at once with its last outcome instead of sleeping.
    """

    model_config = _FROZEN

    max_attempts: int = Field(default=3, ge=1, le=100)
    backoff: Backoff = Backoff()
    retry_on_status: frozenset[int] = DEFAULT_RETRY_STATUSES
    respect_retry_after: bool = True
    max_retry_after: float = Field(default=60.0, ge=0.0)

    @field_validator("retry_on_status")
    @classmethod
    def _check_statuses(cls, value: frozenset[int]) -> frozenset[int]:
        bad = sorted(code for code in value if not 100 <= code <= 599)
        if bad:
            raise ValueError(f"not HTTP status codes: {bad}")
        return value


Fallback = Callable[[httpx.Request, BaseException | httpx.Response], httpx.Response | None]


class Policy(BaseModel):
    """Everything the pipeline does for one endpoint.

    Defaults: 3 attempts with capped full-jitter backoff, a 30 s deadline, 10 s per
    attempt, idempotency keys on POST and PATCH, a breaker per endpoint (5 consecutive
    failures open it for 30 s), a retry budget of 10 % plus 1/s per endpoint; no
    bulkhead, no adaptive throttle, no fallback. A field set to ``None`` is off.

    ``breaker``, ``budget``, ``bulkhead`` and ``throttle`` keep state per endpoint: their
    parameters come from the endpoint's policy, and a per-call override can only switch
    them off. ``fallback(request, failure)`` is called when a call fails - ``failure``
    is the exception about to be raised (an open breaker, a deadline, the last transport
    error, an ``ApiError`` with ``raise_for_error=True``...) or the final 5xx/429
    response - and may return a response to use instead
    (``ResilienceInfo.fallback`` is then true) or ``None``. It is a plain function, run
    on the caller's thread or event loop: keep it quick (a cache lookup, a default).
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
