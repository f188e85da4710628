"""The :class:`Breaker` policy, what counts as a failure, and the values a breaker hands out.

The policy is a frozen value, validated at construction (``pydantic.ValidationError``
naming the field). The values are what a caller of the breaker holds: a :class:`Permit`
to make one attempt, a :class:`Rejection` to raise on, a :class:`BreakerSnapshot` to read.
The rules that change state are ``_circuit.py``; the driver that applies them is
``_breaker.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = [
    "Breaker",
    "BreakerSnapshot",
    "BreakerState",
    "Outcome",
    "Permit",
    "Rejection",
    "classify_for_breaker",
]

Outcome = Literal["success", "failure", "ignored"]

BreakerState = Literal["closed", "open", "half_open"]
"""The breaker's states; how one leads to another is ``_circuit.TRANSITIONS``."""


class Breaker(BaseModel):
    """A circuit breaker per endpoint (after resilience4j's ``CircuitBreakerConfig``).

    Trip rule by ``window``:

    - ``"consecutive"`` (default): open after ``failure_threshold`` failures in a row.
    - ``"count"``: over the last ``window_size`` calls; ``"time"``: over the calls of the
      last ``window_size`` seconds (kept in 10 buckets, so resolution is a tenth of it).
      Once the window holds ``minimum_calls`` calls, open when the share of failures
      reaches ``failure_rate_threshold`` or the share of slow calls reaches
      ``slow_call_rate_threshold``.

    The first open period lasts ``reset_timeout`` seconds; then half-open lets at most
    ``half_open_max_calls`` probes run at once (the rest are rejected), closes after
    ``success_threshold`` successful probes and reopens on a failed or slow probe. A probe
    that never reports holds its slot for at most ``reset_timeout`` seconds.

    Open periods that grow (Polly's break-duration generator, Envoy's ejection time):
    with ``reset_timeout_max`` set, each reopening by a failed probe makes the nominal
    period ``reset_multiplier`` times the previous one, capped at ``reset_timeout_max``;
    the period applied is the nominal one less up to 20 % (uniform jitter, so breakers
    that tripped together probe apart, never past the cap). Closing starts again from
    ``reset_timeout``. ``reset_timeout_max=None`` (the default): every period lasts
    ``reset_timeout``.

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
    """Seconds the breaker stays open (the first time) before letting probes through."""
    reset_timeout_max: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Cap in seconds on an open period grown by failed probes; ``None`` = no growth."""
    reset_multiplier: float = Field(2.0, ge=1, allow_inf_nan=False)
    """Factor (≥ 1) from one open period to the next after a failed probe."""
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

    @field_validator("reset_timeout_max")
    @classmethod
    def _check_reset_timeout_max(cls, value: float | None, info: ValidationInfo) -> float | None:
        # reset_timeout is declared first, so it is in info.data once it was valid.
        floor = info.data.get("reset_timeout")
        if value is not None and floor is not None and value < floor:
            raise ValueError(
                f"reset_timeout_max ({value}) must not be below reset_timeout ({floor})"
            )
        return value

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

    An attempt that raised is judged by the pipeline with the retry room's exception
    classes: a connect error, a timeout or a dropped connection is a failure; our own
    refusals, a cancelled attempt or a misuse (a bad URL) are ignored.
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


# -- what a breaker hands out ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make one attempt; hand it back once to ``record`` or ``release``.

    ``token`` names the half-open probe slot this permit holds (``None`` = an ordinary
    call); ``shared`` says the shared storage issued it. A value: the closed-state permits
    of one generation may be one and the same object.
    """

    endpoint: str
    generation: int
    token: str | None = None
    shared: bool = False

    @property
    def probe(self) -> bool:
        return self.token is not None


@dataclass(frozen=True, slots=True)
class Rejection:
    """The breaker refused the call: raise ``CircuitOpenError(endpoint, retry_at)``.

    ``retry_at`` (``time.monotonic()`` seconds): when open, the end of the break; in
    half-open with every probe slot taken, when the oldest probe's slot is reclaimed at
    the latest (a probe that finishes sooner frees it sooner).
    """

    endpoint: str
    retry_at: float
    state: BreakerState


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """One endpoint's breaker, as this process sees it.

    ``failures``: the failure streak (``"consecutive"``) or the failed calls in the window;
    ``calls``/``slow_calls``: calls and slow calls in the window (0 in consecutive mode);
    ``failure_rate``/``slow_call_rate``: their shares, ``None`` with no window or no calls;
    ``successes``: successful probes of this half-open period; ``retry_at``: monotonic
    instant of the next possible probe (``None`` = now); ``shared``: the counts come from
    the shared storage (``False`` without one, or while it is unreachable).
    ``retry_in``: ``retry_at`` as seconds from the snapshot's instant (``None`` = now);
    ``opened_by``: what last opened the breaker, e.g. ``"5 failures in a row"`` (``None``
    while closed; the counts restart at a trip, so they no longer show it).

    ``str()`` reads as one line, with durations from the snapshot's instant, e.g.
    ``GET /v1/users/{id}: open (opened by 5 failures in a row), next probe in 12.0 s``.
    """

    endpoint: str
    state: BreakerState
    failures: int
    successes: int
    calls: int
    slow_calls: int
    failure_rate: float | None
    slow_call_rate: float | None
    retry_at: float | None
    probes_in_flight: int
    shared: bool
    retry_in: float | None = None
    opened_by: str | None = None

    def __str__(self) -> str:
        head = f"{self.endpoint}: {self.state}"
        if self.state != "closed" and self.opened_by:
            head += f" (opened by {self.opened_by})"
        parts = [head]
        if self.state == "closed":
            if self.failure_rate is None and self.calls == 0:
                parts.append(f"{_count(self.failures, 'failure')} in a row")
            else:
                parts.append(_rate(self.failures, self.calls, "failed"))
                if self.slow_calls:
                    parts.append(f"{self.slow_calls} slow")
        elif self.state == "half_open":
            parts.append(f"{_count(self.probes_in_flight, 'probe')} in flight")
            parts.append(f"{_count(self.successes, 'probe')} succeeded")
        if self.state != "closed":
            wait = self.retry_in
            parts.append("next probe now" if not wait else f"next probe in {wait:.1f} s")
        if self.shared:
            parts.append("shared")
        return ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _rate(part: int, calls: int, what: str) -> str:
    if calls == 0:
        return "no calls in the window"
    return f"{part} of {_count(calls, 'call')} {what} ({100 * part / calls:.0f} %)"
