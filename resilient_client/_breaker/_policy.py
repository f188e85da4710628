"""The :class:`Breaker` policy and the classification of outcomes for it.

A frozen value, validated at construction (``pydantic.ValidationError`` naming the
field); the state it governs lives in ``_breaker_steps.py``, driven by ``_breaker.py``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = ["Breaker", "Outcome", "classify_for_breaker"]

Outcome = Literal["success", "failure", "ignored"]


class Breaker(BaseModel):
    """A circuit breaker per endpoint (after resilience4j's ``CircuitBreakerConfig``).

    Trip rule by ``window``:

    - ``"consecutive"`` (default): open after ``failure_threshold`` failures in a row.
    - ``"count"``: over the last ``window_size`` calls; ``"time"``: over the calls of the
      last ``window_size`` seconds (kept in 10 buckets, so resolution is a tenth of it).
      Once the window holds ``minimum_calls`` calls, open when the share of failures
      reaches ``failure_rate_threshold`` or the share of slow calls reaches
      ``slow_call_rate_threshold``.

    Open lasts ``reset_timeout`` seconds; then half-open lets at most
    ``half_open_max_calls`` probes run at once (the rest are rejected), closes after
    ``success_threshold`` successful probes and reopens on a failed or slow probe. A probe
    that never reports holds its slot for at most ``reset_timeout`` seconds.

    Failures: transport errors, timeouts and 5xx (see :func:`classify_for_breaker`); a
    caller's 4xx is ignored, and so is 429 unless ``failure_on_429``. A call lasting at
    least ``slow_call_duration`` seconds is *slow* (``None`` = no slow-call detection): it
    counts toward the slow-call rate, and as a failure in ``"consecutive"`` mode and for
    probes.

    Raises ``pydantic.ValidationError`` naming the field for any value out of range.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    failure_threshold: int = Field(5, ge=1)
    """Failures in a row that open a ``"consecutive"`` breaker."""
    reset_timeout: float = Field(30.0, gt=0, allow_inf_nan=False)
    """Seconds the breaker stays open before letting probes through."""
    half_open_max_calls: int = Field(1, ge=1)
    """Probes allowed in flight at once in half-open (fleet-wide with shared storage)."""
    success_threshold: int = Field(1, ge=1)
    """Successful probes that close a half-open breaker."""
    window: Literal["consecutive", "count", "time"] = "consecutive"
    """How failures are counted: a streak, the last N calls, or the last N seconds."""
    window_size: int | float = 100
    """Calls (``"count"``, a whole number) or seconds (``"time"``); unused otherwise."""
    minimum_calls: int = Field(10, ge=1)
    """Calls the window must hold before a rate can open the breaker. Not given with
    ``window="count"``: at most ``window_size`` (a window of 5 calls could never hold 10)."""
    failure_rate_threshold: float = Field(0.5, gt=0, le=1)
    """Share of failed calls (0 < x ≤ 1) that opens a ``"count"``/``"time"`` breaker."""
    slow_call_duration: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Seconds from which a call is slow; ``None`` = calls are never slow."""
    slow_call_rate_threshold: float = Field(1.0, gt=0, le=1)
    """Share of slow calls (0 < x ≤ 1) that opens a ``"count"``/``"time"`` breaker."""
    failure_on_429: bool = False
    """Count 429 Too Many Requests as a failure (default: ignored, like other 4xx)."""

    @field_validator("window_size")
    @classmethod
    def _check_window_size(cls, value: int | float, info: ValidationInfo) -> int | float:
        if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            raise ValueError("window_size must be a positive finite number")
        if info.data.get("window") == "count":
            if value != int(value):
                raise ValueError("window_size must be a whole number of calls for window='count'")
            return int(value)
        return value

    @field_validator("minimum_calls")
    @classmethod
    def _check_minimum_calls(cls, value: int, info: ValidationInfo) -> int:
        # Runs only for a value given explicitly (pydantic skips defaults), so the error
        # names the field the caller wrote; the default is clamped in _fit_minimum_calls.
        size = info.data.get("window_size")
        if info.data.get("window") == "count" and size is not None and value > size:
            raise ValueError(
                f"minimum_calls ({value}) must not exceed window_size ({size}) for window='count'"
            )
        return value

    @model_validator(mode="after")
    def _fit_minimum_calls(self) -> Breaker:
        # A count window never holds more than window_size calls: with the default
        # minimum_calls above it, the rate rule could never open the breaker. Clamp the
        # default as resilience4j does; an explicit value above it was refused above.
        if (
            self.window == "count"
            and "minimum_calls" not in self.model_fields_set
            and self.minimum_calls > self.window_size
        ):
            # Frozen: set the derived value in place; the field stays out of
            # model_fields_set (it was not given).
            object.__setattr__(self, "minimum_calls", int(self.window_size))
        return self


def classify_for_breaker(policy: Breaker, status: int, is_transport_error: bool = False) -> Outcome:
    """Whether an attempt's outcome counts against the endpoint's health.

    ``"failure"``: a 5xx other than 501/505, a 408, and a 429 when
    ``policy.failure_on_429``. ``"ignored"``: any other 4xx, 501 and 505 (the request's
    fault, which says nothing about the server's health). ``"success"``: a status below
    400. ``is_transport_error=True`` (the attempt got no response: connection error,
    timeout) is a failure whatever ``status`` says.
    """
    if is_transport_error:
        return "failure"
    if status < 400:
        return "success"
    if status == 429:
        return "failure" if policy.failure_on_429 else "ignored"
    if status == 408 or (status >= 500 and status not in (501, 505)):
        return "failure"
    return "ignored"
