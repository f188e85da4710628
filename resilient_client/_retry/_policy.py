"""The retry policies: :class:`Retry` (which outcomes, how often) and :class:`Backoff`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DEFAULT_RETRY_STATUSES", "Backoff", "Jitter", "Retry", "RetryPredicate"]

RetryPredicate = Callable[[Any, Any, "BaseException | None", Any], "bool | None"]
"""``retry_if(request, response, error, problem) -> bool | None`` (see :class:`Retry`)."""

Jitter = Literal["full", "equal", "decorrelated", "none"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

# 529 is Anthropic's "overloaded": a 503 by another name.
DEFAULT_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 529})


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

    ``retry_if(request, response, error, problem)``, when given, is asked about every
    outcome but the pipeline's own refusals: ``response`` (``None`` for an error) has its
    body read (for a streamed call, only a body of at most 64 KiB with a
    ``Content-Length``) and ``problem`` is its parsed problem for a 4xx/5xx (else
    ``None``); ``error`` is the exception an attempt raised. It returns ``None`` to keep
    the built-in decision, ``True`` to retry (a 200 with an error in its body, say) or
    ``False`` not to (a 503 you know is final). It cannot make a write unsafe to repeat
    retryable: a POST or PATCH without an idempotency key, or a one-shot body, is still
    not retried. It runs on the caller's thread or event loop, once per outcome: keep it
    quick, and let it not raise (what it raises ends the call).
    """

    model_config = _FROZEN

    max_attempts: int = Field(default=3, ge=1, le=100)
    backoff: Backoff = Backoff()
    retry_on_status: frozenset[int] = DEFAULT_RETRY_STATUSES
    respect_retry_after: bool = True
    max_retry_after: float = Field(default=60.0, ge=0.0)
    retry_if: RetryPredicate | None = None

    @field_validator("retry_on_status")
    @classmethod
    def _check_statuses(cls, value: frozenset[int]) -> frozenset[int]:
        bad = sorted(code for code in value if not 100 <= code <= 599)
        if bad:
            raise ValueError(f"not HTTP status codes: {bad}")
        return value
