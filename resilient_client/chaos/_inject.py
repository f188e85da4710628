"""Fault injection inside the pipeline: :class:`Chaos` (the policy) and its injector.

Polly's Simmy, for httpx: per attempt, a seeded draw decides whether the attempt is
replaced by a fault - an error status in any vendor's envelope, a dropped connection, a
read timeout - and, separately, whether a delay goes before it. The pipeline reacts to
an injected fault exactly as to a real one (retry, breaker, budget, telemetry), and the
fault never reaches the provider: the inner transport is not called.

Decisions are pure and seeded (:class:`ChaosInjector`); the outcome a fault stands for is
built by :func:`fault_outcome` for httpx or httpx2, with the chaos upstream's own error
bodies (:func:`~resilient_client.chaos.envelope`). ``RESILIENT_CLIENT_CHAOS=off`` in the
environment switches every injector off, process-wide, read at each decision (so a
running service, or a test, can flip it).
"""

from __future__ import annotations

import importlib
import math
import os
import random
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from .._clock import Clock, renew_after_fork
from ._envelopes import envelope as build_envelope

__all__ = [
    "ENVIRONMENT_SWITCH",
    "RETRY_AFTER",
    "Chaos",
    "ChaosInjector",
    "Envelope",
    "Fault",
    "chaos_enabled",
    "fault_outcome",
    "injected_fault",
    "injector_for",
]

Fault = int | Literal["reset", "timeout"]
"""What replaces one attempt: an error status (400-599), ``"reset"`` (the connection is
dropped before any response byte) or ``"timeout"`` (the read times out)."""

Envelope = Literal[
    "rfc9457",
    "google",
    "microsoft",
    "jsonapi",
    "openai",
    "anthropic",
    "stripe",
    "graphql",
    "unstructured",
    "html",
    "text",
    "empty",
]
"""The error body of an injected status: a format of ``rc.Problem.format`` (``"openai"``
also has its ``"anthropic"`` variant; ``"unstructured"`` is a proxy's HTML page, as are
``"html"``, ``"text"`` and ``"empty"`` in their ways)."""

_BODIES = {"unstructured": "html"}  # envelope → the chaos upstream's builder, where named apart

ENVIRONMENT_SWITCH = "RESILIENT_CLIENT_CHAOS"
"""The environment variable that, set to ``off`` (or ``0``, ``false``, ``no``), disables
all injection in the process."""

_OFF = frozenset({"off", "0", "false", "no"})

RETRY_AFTER = 1
"""Seconds an injected 429 or 503 asks the client to wait, where the vendor sends a hint."""

# Vendors whose 429/503 carry a Retry-After header (RFC 9110 §10.2.3 says a 503 may;
# Azure, OpenAI and Anthropic do). Google puts RetryInfo in the body instead (the
# envelope builder does); Stripe, GraphQL servers and proxies' pages send none.
_RETRY_AFTER_HEADER = frozenset({"rfc9457", "microsoft", "jsonapi", "openai", "anthropic"})

_EXTENSION = "resilient_client.chaos"


class Chaos(BaseModel):
    """Fault injection for an endpoint's attempts (``Policy(chaos=...)``; None = off).

    - ``rate``: the share of attempts, in [0, 1], that get a fault (default 0.05);
      each attempt is drawn independently.
    - ``faults``: what a picked attempt gets, one chosen uniformly: an int status in
      400..599 (answered with ``envelope``'s error body, and ``Retry-After: 1`` on 429
      and 503 where that vendor sends one), ``"reset"`` (a dropped connection) or
      ``"timeout"`` (a read timeout). Default ``(503, "reset", "timeout")``.
    - ``envelope``: the error body's format (:data:`Envelope`; default ``"rfc9457"``).
    - ``latency``: ``(low, high)`` seconds, ``0 <= low <= high``: an attempt drawn at
      ``rate`` (a draw of its own, apart from the fault's) waits a uniform delay in that
      range first; a delay reaching the attempt's limit (its timeout, or the deadline)
      times the attempt out there, as a slow provider is. None (default): no added delay.
    - ``seed``: makes the sequence of faults and delays reproducible; None draws the
      seed from the pipeline's clock (a ``FakeClock`` is seeded, the real clock is not).

    Raises ``pydantic.ValidationError`` naming the field for a value out of range.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: float = 0.05
    faults: tuple[Fault, ...] = (503, "reset", "timeout")
    envelope: Envelope = "rfc9457"
    latency: tuple[float, float] | None = None
    seed: int | None = None

    @field_validator("rate")
    @classmethod
    def _check_rate(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:  # NaN fails too
            raise ValueError(f"rate must be within [0, 1], got {value!r}")
        return value

    @field_validator("faults")
    @classmethod
    def _check_faults(cls, value: tuple[Fault, ...]) -> tuple[Fault, ...]:
        if not value:
            raise ValueError("faults must name at least one fault")
        bad = [f for f in value if isinstance(f, int) and not 400 <= f <= 599]
        if bad:
            raise ValueError(f"fault statuses must be within 400..599, got {bad}")
        return value

    @field_validator("latency")
    @classmethod
    def _check_latency(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is None:
            return None
        low, high = value
        if not (math.isfinite(low) and math.isfinite(high) and 0.0 <= low <= high):
            raise ValueError(
                f"latency must be (low, high) seconds with 0 <= low <= high, got {value!r}"
            )
        return value


def chaos_enabled() -> bool:
    """False when ``RESILIENT_CLIENT_CHAOS`` says off; read anew at every call."""
    return os.environ.get(ENVIRONMENT_SWITCH, "").strip().lower() not in _OFF


class ChaosInjector:
    """The per-attempt decisions of one :class:`Chaos`, from seeded random streams.

    ``rng`` is the fault stream (default ``random.Random(chaos.seed)``); the latency
    stream is seeded from it once, at construction, so turning ``latency`` on or off
    leaves the sequence of faults as it was. Each :meth:`pick` draws the same amount
    whatever it decides, so the n-th attempt's fate depends on the seed and n alone.
    Thread-safe; one injector per endpoint keeps endpoints' sequences apart.
    """

    __slots__ = ("__weakref__", "_faults", "_latency", "_lock", "chaos")

    def __init__(self, chaos: Chaos, rng: random.Random | None = None) -> None:
        self.chaos = chaos
        self._faults = rng if rng is not None else random.Random(chaos.seed)
        self._latency = random.Random(self._faults.getrandbits(64))
        self._lock = threading.Lock()
        renew_after_fork(self)

    def _after_fork(self) -> None:
        # A forked child's own lock (a parent thread may have held this one); the fault
        # sequence stays the seed's, so a seeded chaos repeats in the child too.
        self._lock = threading.Lock()

    def pick(self) -> Fault | None:
        """The fault replacing the next attempt, or None to send it for real (always
        None while ``RESILIENT_CLIENT_CHAOS=off``)."""
        if not chaos_enabled():
            return None
        with self._lock:
            hit, which = self._faults.random(), self._faults.random()
        if hit >= self.chaos.rate:
            return None
        faults = self.chaos.faults
        return faults[int(which * len(faults))]

    def pick_latency(self) -> float | None:
        """Seconds to wait before the next attempt, or None for no added delay (also
        when ``latency`` is None or ``RESILIENT_CLIENT_CHAOS=off``)."""
        latency = self.chaos.latency
        if latency is None or not chaos_enabled():
            return None
        with self._lock:
            hit, amount = self._latency.random(), self._latency.random()
        if hit >= self.chaos.rate:
            return None
        low, high = latency
        return low + amount * (high - low)

    def answer(self, fault: Fault, request: Any, library: Any = "httpx") -> Any:
        """What a send of ``request`` gives when ``fault`` replaces it: the response of
        :func:`fault_outcome` (in this chaos's envelope), or its exception, raised.
        ``library``: ``"httpx"``, ``"httpx2"`` or the pipeline's ``Flavor``."""
        outcome = fault_outcome(fault, request, envelope=self.chaos.envelope, library=library)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def injector_for(chaos: Chaos, clock: Clock) -> ChaosInjector:
    """An injector seeded by ``chaos.seed``, or, without one, by a draw from ``clock``
    (so a test's ``FakeClock`` makes even an unseeded chaos repeat)."""
    seed = chaos.seed if chaos.seed is not None else int(clock.random() * 2**53)
    return ChaosInjector(chaos, random.Random(seed))


def _library(library: Any) -> Any:
    # A Flavor (the pipeline's) or its name: "httpx" or "httpx2" (_flavor.py).
    name = getattr(library, "name", library)
    if name not in ("httpx", "httpx2"):
        raise ValueError(f"library must be 'httpx' or 'httpx2', got {name!r}")
    return importlib.import_module(name)


def fault_outcome(
    fault: Fault, request: Any, *, envelope: Envelope = "rfc9457", library: Any = "httpx"
) -> Any:
    """The outcome ``fault`` stands for, as ``library`` would produce it for ``request``.

    ``library`` is ``"httpx"``, ``"httpx2"`` or the pipeline's ``Flavor``. Returns, never
    raises, the outcome - the caller raises an exception where a send would have:

    - an int status: a response with that status and ``envelope``'s error body (read,
      so the pipeline parses its problem as a real one's), plus ``Retry-After: 1`` on
      429/503 where the vendor sends one;
    - ``"reset"``: the library's ``RemoteProtocolError``, as when a server closes the
      connection without answering;
    - ``"timeout"``: the library's ``ReadTimeout``.

    Both carry the fault for :func:`injected_fault`. Raises ``ValueError`` for an
    unknown fault or library.
    """
    lib = _library(library)
    if fault == "reset":
        error = lib.RemoteProtocolError(
            "Server disconnected without sending a response (injected by chaos).",
            request=request,
        )
    elif fault == "timeout":
        error = lib.ReadTimeout(
            "Timed out reading the response (injected by chaos).", request=request
        )
    elif isinstance(fault, int) and not isinstance(fault, bool) and 400 <= fault <= 599:
        headers, body = build_envelope(
            _BODIES.get(envelope, envelope), fault, retry_after=float(RETRY_AFTER)
        )
        if fault in (429, 503) and envelope in _RETRY_AFTER_HEADER:
            headers["retry-after"] = str(RETRY_AFTER)
        return lib.Response(
            fault, headers=headers, content=body, request=request, extensions={_EXTENSION: fault}
        )
    else:
        raise ValueError(f"not a chaos fault: {fault!r}")
    error.chaos_fault = fault  # read back by injected_fault()
    return error


def injected_fault(outcome: object) -> Fault | None:
    """The fault an outcome built by :func:`fault_outcome` stands for, else None."""
    extensions = getattr(outcome, "extensions", None)
    if isinstance(extensions, dict) and _EXTENSION in extensions:
        fault: Fault = extensions[_EXTENSION]
        return fault
    if isinstance(outcome, BaseException):
        marked: Fault | None = getattr(outcome, "chaos_fault", None)
        return marked
    return None
