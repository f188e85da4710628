"""The :class:`Breaker` policy, what counts as a failure, and the values a breaker hands out.

The policy is a frozen value, validated at construction (``pydantic.ValidationError``
naming the field). The values are what a caller of the breaker holds: a :class:`Permit`
to make one attempt, a :class:`Rejection` to raise on, a :class:`BreakerSnapshot` to read.
The rules that change state are ``_circuit.py``; the driver that applies them is
``_breaker.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .._mask import neutralize

__all__ = [
    "Breaker",
    "BreakerSnapshot",
    "BreakerState",
    "FailurePredicate",
    "Outcome",
    "Permit",
    "Rejection",
    "classify_for_breaker",
]

Outcome = Literal["success", "failure", "ignored"]

FailurePredicate = Callable[[Any, Any, "BaseException | None", Any], "bool | None"]
"""``failure_if(request, response, error, problem) -> bool | None`` (see :class:`Breaker`)."""

BreakerState = Literal["closed", "open", "half_open"]
"""The breaker's states; how one leads to another is ``_circuit.TRANSITIONS``."""


class Breaker(BaseModel):
    """A circuit breaker per endpoint (after resilience4j's ``CircuitBreakerConfig``).

    Defaults (chosen by ``benchmarks/scenarios.py``; README, "How it behaves in an
    outage"): open when at least 70 % of the calls of the last 5 s failed, once those
    5 s hold 100 calls, for 1 s. A rate over a time window does not trip on the streaks
    that random failures make, and a short open period lets a recovered provider back in
    within a second; a client making fewer than 20 attempts/s never trips it and is left
    to the retry budget.

    Trip rule by ``window``:

    - ``"time"`` (default): over the calls of the last ``window_size`` seconds (default 5,
      kept in 10 buckets, so resolution is a tenth of it); ``"count"``: over the last
      ``window_size`` calls (default 100). Once the window holds ``minimum_calls`` calls
      (default 100; at most ``window_size`` for a count window), open when the share of
      failures reaches ``failure_rate_threshold`` (default 0.7) or the share of slow calls
      reaches ``slow_call_rate_threshold``.
    - ``"consecutive"``: open after ``failure_threshold`` failures in a row (default 5).
      A breaker given ``failure_threshold`` but no ``window`` is a consecutive one.

    The first open period lasts ``reset_timeout`` seconds (default 1); then half-open lets
    at most ``half_open_max_calls`` probes run at once (the rest are rejected), closes
    after ``success_threshold`` successful probes and reopens on a failed or slow probe. A
    probe that never reports holds its slot for at most ``reset_timeout`` seconds.

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

    ``failure_if(request, response, error, problem)``, when given, decides instead of the
    rule above for every attempt that was sent (the breaker's own refusals and cancelled
    attempts are never asked): ``response`` (``None`` for an error) has its body read (for
    a streamed call, only a body of at most 64 KiB with a ``Content-Length``), ``problem``
    is its parsed problem for a 4xx/5xx (else ``None``), ``error`` the exception the
    attempt raised. ``True``: a failure (a 200 whose body says the provider is degraded);
    ``False``: a success (a 500 you know says nothing of the provider's health), as
    resilience4j's ``recordResultPredicate`` counts it; ``None``: the built-in rule. It
    runs on the caller's thread or event loop once per attempt: keep it quick; what it
    raises ends the call.

    Raises ``pydantic.ValidationError`` naming the field for any value out of range.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    failure_threshold: int = Field(5, ge=1)
    """Failures in a row that open a ``"consecutive"`` breaker."""
    reset_timeout: float = Field(1.0, gt=0, allow_inf_nan=False)
    """Seconds the breaker stays open (the first time) before letting probes through."""
    reset_timeout_max: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Cap in seconds on an open period grown by failed probes; ``None`` = no growth."""
    reset_multiplier: float = Field(2.0, ge=1, allow_inf_nan=False)
    """Factor (≥ 1) from one open period to the next after a failed probe."""
    half_open_max_calls: int = Field(1, ge=1)
    """Probes allowed in flight at once in half-open (fleet-wide with shared storage)."""
    success_threshold: int = Field(1, ge=1)
    """Successful probes that close a half-open breaker."""
    window: Literal["consecutive", "count", "time"] = "time"
    """How failures are counted: a streak, the last N calls, or the last N seconds. Not
    given: ``"consecutive"`` if ``failure_threshold`` is given, else ``"time"``."""
    window_size: int | float = 5.0
    """Seconds (``"time"``, default 5) or calls (``"count"``, a whole number, default
    100); unused for ``"consecutive"``."""
    minimum_calls: int = Field(100, ge=1)
    """Calls the window must hold before a rate can open the breaker. Not given with
    ``window="count"``: at most ``window_size`` (a window of 5 calls could never hold 100)."""
    failure_rate_threshold: float = Field(0.7, gt=0, le=1)
    """Share of failed calls (0 < x ≤ 1) that opens a ``"count"``/``"time"`` breaker."""
    slow_call_duration: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Seconds from which a call is slow; ``None`` = calls are never slow."""
    slow_call_rate_threshold: float = Field(1.0, gt=0, le=1)
    """Share of slow calls (0 < x ≤ 1) that opens a ``"count"``/``"time"`` breaker."""
    failure_on_429: bool = False
    """Count 429 Too Many Requests as a failure (default: ignored, like other 4xx)."""
    failure_if: FailurePredicate | None = None
    """Decides whether an attempt counts as a failure; ``None`` = the built-in rule."""

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

    @model_validator(mode="after")
    def _derive_defaults(self) -> Breaker:
        # The defaults that depend on other fields, derived for the fields not given (so
        # merge() derives them again for merged values). Frozen: they are set in place and
        # stay out of model_fields_set.
        given = self.model_fields_set
        if "window" not in given and "failure_threshold" in given:
            # A breaker written as Breaker(failure_threshold=N) keeps meaning N in a row.
            object.__setattr__(self, "window", "consecutive")
        if self.window != "count":
            return self
        if "window_size" not in given:
            # window_size counts calls here, not seconds: resilience4j's 100.
            object.__setattr__(self, "window_size", _COUNT_WINDOW_SIZE)
        size = int(self.window_size)
        if "minimum_calls" not in given:
            # A count window never holds more than window_size calls: with the default
            # above it, the rate rule could never open the breaker (resilience4j clamps too).
            object.__setattr__(self, "minimum_calls", min(self.minimum_calls, size))
        elif self.minimum_calls > size:
            # Checked here, where window_size is known whether given or derived; the error
            # names the field the caller wrote.
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "value_error",
                            "Value error, minimum_calls ({minimum}) must not exceed "
                            "window_size ({size}) for window='count'",
                            {"minimum": self.minimum_calls, "size": size},
                        ),
                        loc=("minimum_calls",),
                        input=self.minimum_calls,
                    )
                ],
            )
        return self


# A count window's size when not given (calls); a time window's is the field default.
_COUNT_WINDOW_SIZE = 100


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


def apply_failure_predicate(answer: bool | None, built_in: Outcome) -> Outcome:
    """An attempt's outcome for the breaker once ``failure_if`` answered ``answer`` about
    it: ``None`` keeps the built-in ``built_in``."""
    if answer is None:
        return built_in
    return "failure" if answer else "success"


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
    the latest (a probe that finishes sooner frees it sooner). ``isolated``: the
    operator's reason when the shared storage says the endpoint is isolated (a kill
    switch, ``_isolation.py``), refused whatever the state; ``None`` otherwise.
    """

    endpoint: str
    retry_at: float
    state: BreakerState
    isolated: str | None = None


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
    ``isolated``: the operator's reason while the endpoint is isolated (a kill switch,
    ``client.isolate()``), which refuses every call whatever the state; ``None`` if not.

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
    isolated: str | None = None

    def __str__(self) -> str:
        head = f"{self.endpoint}: {self.state}"
        if self.isolated is not None:
            head = f"{self.endpoint}: isolated: {neutralize(self.isolated)}; {self.state}"
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
