"""Pacing: a client-side rate limit per endpoint, fixed or learned from the provider.

:class:`RateLimit` is the policy; :class:`RateLimitState` the state one endpoint's calls
share. A call asks the state "may I start at ``t``, and if not, after how long?" before
each attempt (:meth:`RateLimitState.reserve`), and tells it what the provider's headers
said after each attempt (:meth:`RateLimitState.learn`). Every decision is pure over the
times passed in; the only state is the endpoint's, under a lock.

Two limits are kept, and a call waits for the later of the two:

- ``per_second``: a token bucket refilled at ``per_second`` tokens a second, holding up
  to one second's worth (at least one token), kept as GCRA's theoretical arrival time
  (the same bucket, one number, and a reservation in the future is the same arithmetic);
- the provider's window, with ``respect_headers``: ``remaining`` calls until the window
  resets ``reset`` seconds from now, then ``quota`` calls per ``window`` seconds when the
  provider said so (IETF ``RateLimit-Policy``, ``X-RateLimit-Limit``...). A call past the
  remaining ones is admitted in the first window that has room.

Reservations are taken when granted: a waiting call holds its place, so calls that wake
together do not race for the same token. A call whose wait would exceed what it may
wait (``max_wait``, or the time left to its deadline) takes nothing and is refused.

An answer's count is already stale when it arrives: the calls still on their way (granted
a turn, their attempt not yet ended) may or may not be in it. They are taken as not in
it, so the estimate errs low; and within one window the estimate only goes down (a
provider's remaining count never rises before its reset), so answers arriving out of
order cannot raise it. The one risk left is a limit shared with other clients, which no
client can see but through the headers.

Headers read (each family optional; the most restrictive of those present wins):

=========================================  ==============================================
``RateLimit`` / ``RateLimit-Policy``       draft-ietf-httpapi-ratelimit-headers (-08 on):
                                           ``"default";r=50;t=30`` / ``"default";q=100;w=60``
``RateLimit-Remaining/-Reset/-Limit``      the same draft up to -06
``X-RateLimit-Remaining/-Reset/-Limit``    GitHub and most others; a reset above 10^9 is an
                                           epoch time, else seconds
``x-ratelimit-remaining-requests``,        OpenAI; durations such as ``6m0s``, ``1s``,
``x-ratelimit-reset-requests``             ``20ms``
``anthropic-ratelimit-requests-remaining``, Anthropic; an RFC 3339 time
``anthropic-ratelimit-requests-reset``
``Retry-After`` on a 429                   none left until then
=========================================  ==============================================
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import http_sf
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Limits", "RateLimit", "RateLimitState", "read_limits"]

# Above this, an X-RateLimit-Reset is an epoch time, not a number of seconds.
_EPOCH_FLOOR = 1e9


class RateLimit(BaseModel):
    """Pace calls so they stay under a rate limit, per endpoint key.

    ``per_second``: a fixed limit, calls per second (``None``: none); a burst of up to
    one second's worth is allowed. ``respect_headers``: also follow the limits the
    provider announces in its response headers (see the module docstring for the
    families read). ``max_wait``: the longest a call waits for its turn, in seconds
    (default 1.0; 0 = never wait); a call that would wait longer, or past its deadline,
    raises ``rc.RateLimited`` without reaching the server and is not retried (a retry
    that would so wait is not made: the call ends with its last outcome).

    Raises ``ValueError`` when neither ``per_second`` nor ``respect_headers`` is given
    (the limit would do nothing).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_second: float | None = Field(default=None, gt=0.0)
    respect_headers: bool = True
    max_wait: float = Field(default=1.0, ge=0.0)

    @model_validator(mode="after")
    def _check_useful(self) -> RateLimit:
        if self.per_second is None and not self.respect_headers:
            raise ValueError("rate_limit: give per_second, or keep respect_headers on")
        return self


@dataclass(frozen=True, slots=True)
class Limits:
    """What a response said of the provider's window: ``remaining`` calls in it, the
    seconds until it ``reset`` (``None``: not said), and when known the ``quota`` of
    calls per ``window`` seconds after it."""

    remaining: float
    reset: float | None = None
    quota: float | None = None
    window: float | None = None


class RateLimitState:
    """One endpoint's pacing state (see the module docstring); thread-safe."""

    __slots__ = (
        "_interval",
        "_lock",
        "_quota",
        "_remaining",
        "_reset_at",
        "_tat",
        "_tolerance",
        "_turns",
        "_window",
        "policy",
    )

    def __init__(self, policy: RateLimit) -> None:
        self.policy = policy
        rate = policy.per_second
        # GCRA: calls are due every `interval`; `tolerance` lets a burst come early.
        self._interval = 0.0 if rate is None else 1.0 / rate
        self._tolerance = 0.0 if rate is None else (max(1.0, rate) - 1.0) * self._interval
        self._tat = -math.inf  # the theoretical arrival time of the next call
        self._remaining: float | None = None  # left in the provider's window (< 0: queued)
        self._reset_at: float | None = None
        self._quota: float | None = None
        self._window: float | None = None
        # When each granted turn starts, until its attempt ends (a handful: one per call
        # in flight or waiting for its turn).
        self._turns: list[float] = []
        self._lock = threading.Lock()

    def reserve(self, now: float, start: float, allowance: float) -> tuple[float, bool]:
        """Reserve a turn for a call that would start at ``start`` (>= ``now``, both on
        the clock's monotonic scale): the seconds it must wait past ``start``, and
        whether the turn was granted - not when that wait exceeds ``allowance``
        seconds, and then nothing is taken. A granted turn, starting at ``start`` plus
        that wait, is handed back with :meth:`release` once its attempt ended, whatever
        happened to it."""
        with self._lock:
            self._roll(now)
            tat = max(self._tat, start)
            delay = max(0.0, tat - self._tolerance - start) if self._interval else 0.0
            delay = max(delay, self._window_delay(start))
            if delay > allowance:
                return delay, False
            if self._interval:
                self._tat = tat + self._interval
            if self._remaining is not None:
                self._remaining -= 1
            self._turns.append(start + delay)
            return delay, True

    def release(self, turn: float) -> None:
        """The attempt of the turn granted to start at ``turn`` ended (answered, failed,
        refused or cancelled)."""
        with self._lock:
            if turn in self._turns:  # (else handed back twice: nothing to do)
                self._turns.remove(turn)

    def learn(self, limits: Limits, now: float) -> None:
        """Take what an answer said of the provider's window (after its turn's
        :meth:`release`)."""
        with self._lock:
            self._roll(now)
            # The calls on their way are taken as not in the provider's count; those
            # waiting for a later window are already counted against it.
            estimate = limits.remaining - sum(1 for turn in self._turns if turn <= now)
            # An endless reset (a Retry-After of 400 digits reads as inf) is no reset:
            # held to it, the endpoint would refuse every call for good, none of them
            # reaching the server to learn better.
            reset = limits.reset
            reset_at = None if reset is None or reset == math.inf else now + max(0.0, reset)
            current = self._reset_at
            if self._remaining is None or current is None or now >= current:
                self._remaining = estimate
                self._reset_at = reset_at
            else:  # the same window: its count only goes down until it resets
                self._remaining = min(self._remaining, estimate)
                # Each reset told is rounded up (whole seconds): the earliest is the
                # truest, and still not before the provider's.
                if reset_at is not None and reset_at < current:
                    self._reset_at = reset_at
            if limits.quota is not None:
                self._quota = limits.quota
            if limits.window is not None:
                self._window = limits.window

    def _roll(self, now: float) -> None:
        """Move the provider's window on to the one that holds ``now``."""
        reset_at = self._reset_at
        if reset_at is None or reset_at > now:
            return
        window = self._window
        # The windows that ended by now, counted at once rather than stepped through: a
        # server's w=0.001 left a day idle is 86 million of them, under the endpoint's
        # lock.
        ended = 1 if window is None else 1 + math.floor((now - reset_at) / window)
        quota, remaining = self._quota, self._remaining
        if quota is None or remaining is None:
            self._remaining = None  # a fresh window of unknown size: nothing to pace
        else:
            # A window's unused calls end with it: only the calls queued past it (a count
            # below 0) take their share of each next one, up to a full window's quota.
            self._remaining = min(min(remaining, 0.0) + ended * quota, quota)
        self._reset_at = None if window is None else reset_at + ended * window

    def _window_delay(self, start: float) -> float:
        """The seconds past ``start`` until the provider's windows have room for one more
        call (0 with room, or when there is no telling)."""
        remaining, reset_at = self._remaining, self._reset_at
        if remaining is None or remaining >= 1 or reset_at is None:
            return 0.0
        quota, window = self._quota, self._window
        if quota is None or window is None or quota <= 0:
            return max(0.0, reset_at - start)  # the next window's size is unknown
        # Windows needed for the calls queued ahead and this one.
        windows = max(1, math.ceil((1 - remaining) / quota))
        return max(0.0, reset_at + (windows - 1) * window - start)

    def snapshot(self) -> dict[str, float | None]:
        """The state as numbers, for ``health()`` and tests."""
        with self._lock:
            return {
                "remaining": self._remaining,
                "reset_at": self._reset_at,
                "tat": self._tat,
                "turns": float(len(self._turns)),
            }


# --- reading the providers' headers -------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _duration(text: str | None) -> float | None:
    """A Go-style duration (``6m0s``, ``1.5s``, ``20ms``), or plain seconds."""
    if text is None:
        return None
    text = text.strip()
    plain = _number(text)
    if plain is not None:
        return plain
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        return None
    return sum(float(amount) * _UNIT[unit] for amount, unit in parts)


def _until(text: str | None, now_wall: float) -> float | None:
    """The seconds from ``now_wall`` to an RFC 3339 time."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # RFC 3339 always has an offset; a local time says nothing certain
    return max(0.0, moment.timestamp() - now_wall)


def _sf_list(field: str) -> list[tuple[Any, dict[str, Any]]]:
    """A structured-field list's items with their parameters (empty if malformed)."""
    try:
        parsed: Any = http_sf.parse(field.encode(), tltype="list")
    except (http_sf.StructuredFieldError, ValueError, UnicodeError):
        return []
    return [item for item in parsed if isinstance(item, tuple) and isinstance(item[1], dict)]


def _param(params: dict[str, Any], name: str) -> float | None:
    """A non-negative number parameter (a Boolean is no number)."""
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def _ietf(headers: Mapping[str, str]) -> Limits | None:
    """The current draft's ``RateLimit`` (``r``, ``t``), with its ``RateLimit-Policy``
    (``q``, ``w``) of the same name. Parsed with ``http_sf``, as structured fields
    (RFC 9651), since names are quoted strings that may hold delimiters."""
    field = headers.get("ratelimit")
    if field is None or "r=" not in field:
        return None
    best: tuple[Any, float, float | None] | None = None
    for name, params in _sf_list(field):
        remaining = _param(params, "r")
        if remaining is not None and (best is None or remaining < best[1]):
            best = (name, remaining, _param(params, "t"))
    if best is None:
        return None
    quota = window = None
    for name, params in _sf_list(headers.get("ratelimit-policy") or ""):
        if name == best[0]:
            quota, window = _param(params, "q"), _param(params, "w") or None
    return Limits(best[1], best[2], quota, window)


def _counted(
    headers: Mapping[str, str], prefix: str, suffix: str = ""
) -> tuple[float | None, str | None, float | None]:
    """``<prefix>remaining<suffix>``, the raw reset and ``<prefix>limit<suffix>``."""
    return (
        _number(headers.get(f"{prefix}remaining{suffix}")),
        headers.get(f"{prefix}reset{suffix}"),
        _number(headers.get(f"{prefix}limit{suffix}")),
    )


def read_limits(headers: Mapping[str, str], now_wall: float) -> Limits | None:
    """What ``headers`` (a case-insensitive mapping) say of the provider's request limit,
    the most restrictive family present winning; ``None`` if they say nothing readable.
    ``now_wall``: the wall clock (epoch seconds), for the families that send a time."""
    found: list[Limits] = []
    ietf = _ietf(headers)
    if ietf is not None:
        found.append(ietf)
    for prefix in ("ratelimit-", "x-ratelimit-"):
        remaining, reset_raw, limit = _counted(headers, prefix)
        if remaining is not None:
            reset = _number(reset_raw)
            if reset is not None and reset > _EPOCH_FLOOR:
                reset = max(0.0, reset - now_wall)
            found.append(Limits(remaining, reset, limit))
    remaining, reset_raw, limit = _counted(headers, "x-ratelimit-", "-requests")
    if remaining is not None:
        found.append(Limits(remaining, _duration(reset_raw), limit))
    remaining, reset_raw, limit = _counted(headers, "anthropic-ratelimit-requests-")
    if remaining is not None:
        found.append(Limits(remaining, _until(reset_raw, now_wall), limit))
    if not found:
        return None
    return min(found, key=lambda limits: limits.remaining)
