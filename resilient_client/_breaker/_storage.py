"""Where breaker state is shared: the storage protocol, its messages, the in-process backend.

Without a storage (``breaker_storage=None``) each :class:`~._breaker.EndpointBreaker`
keeps its state to itself. With one, the breaker asks the storage once per call, through
:meth:`BreakerStorage.exchange`: one request carries the outcomes recorded since the
previous call and asks for the next admission, so a closed breaker costs one round trip
per call. A storage that cannot answer raises :class:`BreakerStorageUnavailable` and the
breaker goes on with its in-process state until the storage answers again.

A storage may also keep the operator's kill switches (``client.isolate()``): one that
implements :class:`IsolationStorage` stores an isolation beside the endpoint's breaker
state, with no expiry, and reports it in every :class:`SharedView` of that endpoint
(``isolated``), so a breaker learns of it through the exchange it makes anyway; a
storage that does not is still a valid :class:`BreakerStorage` (isolations then hold in
the isolating process only).

Times cross the storage boundary only as durations (seconds from the storage's "now"):
processes of a fleet do not share a monotonic clock.

This module is the contract every backend meets, with :class:`MemoryBreakerStorage` as
the reference one (the same :class:`~._circuit.Circuit` a lone breaker runs). The
Redis backend, with its optional dependency and wire format, is ``_redis.py``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from .._clock import SYSTEM_CLOCK, Clock, renew_after_fork
from ._circuit import OPEN, Circuit, Trip
from ._policy import Breaker, BreakerState

__all__ = [
    "BreakerStorage",
    "BreakerStorageUnavailable",
    "Exchange",
    "IsolationStorage",
    "MemoryBreakerStorage",
    "ProbeResult",
    "SharedView",
]


class BreakerStorageUnavailable(Exception):
    """The storage could not answer; the breaker falls back to in-process state.

    Internal: never escapes the breaker.
    """


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A finished (or released) half-open probe: ``bits`` ``None`` = no outcome to count.

    ``rand`` (from ``[0, 1)``, the breaker's clock) jitters the open period should this
    probe's failure reopen the breaker, so every storage decides with the same number.
    """

    token: str
    generation: int
    bits: int | None
    rand: float = 0.0


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request to the storage for one endpoint.

    ``pending``: ``(generation, bits)`` of closed-state outcomes not yet sent.
    ``admit_token``: ask for an admission (the token names the probe slot if one is
    taken); ``None`` = record only. ``probe``: a probe to finish first.
    """

    endpoint: str
    policy: Breaker
    pending: tuple[tuple[int, int], ...] = ()
    admit_token: str | None = None
    probe: ProbeResult | None = None


@dataclass(frozen=True, slots=True)
class SharedView:
    """The shared state after an :class:`Exchange`.

    ``admitted``: ``"call"``, ``"probe"`` or ``None`` (rejected, or no admission asked).
    ``retry_after``: seconds until a rejected call may be let through again.
    ``open_remaining``: seconds left in the open state (0 unless open). ``failures`` is
    the failure streak (``consecutive``) or the failures in the window; ``successes`` the
    successful probes of this half-open period; ``probes`` the probes in flight (known
    only on a half-open admission, else 0); ``trip`` what last opened the breaker;
    ``isolated`` the operator's reason if the endpoint is isolated (then nothing is
    admitted and no probe slot is taken), ``None`` if not or if the storage keeps no
    isolations.
    """

    state: BreakerState
    generation: int
    admitted: Literal["call", "probe"] | None
    retry_after: float
    open_remaining: float
    failures: int
    calls: int
    slow: int
    successes: int
    probes: int
    trip: Trip
    isolated: str | None = None


@runtime_checkable
class BreakerStorage(Protocol):
    """Breaker state shared beyond one breaker object. Both methods raise
    :class:`BreakerStorageUnavailable` when the state cannot be reached."""

    def exchange(self, request: Exchange, /) -> SharedView:
        """Apply ``request`` and return the state; blocks the calling thread."""
        ...

    async def aexchange(self, request: Exchange, /) -> SharedView:
        """Apply ``request`` and return the state; never blocks the event loop."""
        ...


@runtime_checkable
class IsolationStorage(Protocol):
    """A :class:`BreakerStorage` that also keeps kill switches (``client.isolate()``)
    for a fleet. An isolation never expires (whatever the breaker keys' lifetime) and is
    reported in the ``isolated`` field of every :class:`SharedView` of its endpoint. Every
    method raises :class:`BreakerStorageUnavailable` when the storage cannot be reached.
    """

    def isolate(self, endpoint: str, reason: str, /) -> None:
        """Isolate ``endpoint`` for ``reason`` (replacing an earlier reason); blocks."""
        ...

    def restore(self, endpoint: str, /) -> bool:
        """Lift ``endpoint``'s isolation; whether there was one. Blocks."""
        ...

    def isolation(self, endpoint: str, /) -> str | None:
        """``endpoint``'s isolation reason, ``None`` if not isolated; blocks (asked per
        attempt of an endpoint without a breaker)."""
        ...

    async def aisolation(self, endpoint: str, /) -> str | None:
        """:meth:`isolation`, never blocking the event loop."""
        ...


class MemoryBreakerStorage:
    """Breaker state shared within this process.

    Clients (sync and async) built with the same instance share their breakers, and
    their kill switches (an :class:`IsolationStorage`), as processes sharing one
    :class:`~._redis.RedisBreakerStorage` do. ``clock`` times the open state.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._circuits: dict[str, Circuit] = {}
        self._isolated: dict[str, str] = {}
        renew_after_fork(self)

    def _after_fork(self) -> None:
        # A forked child's own lock: one a parent thread held would stay locked forever.
        self._lock = threading.Lock()

    def exchange(self, request: Exchange, /) -> SharedView:
        now = self._clock.monotonic()
        with self._lock:
            circuit = self._circuits.get(request.endpoint)
            if circuit is None:
                circuit = self._circuits[request.endpoint] = Circuit(request.policy)
            elif circuit.policy is not request.policy and circuit.policy != request.policy:
                circuit.reconfigure(request.policy)
            # No tick of its own: record() and admit() each move a due open state first.
            if request.probe is not None:
                probe = request.probe
                circuit.record(probe.generation, probe.token, probe.bits, now, probe.rand)
            for generation, bits in request.pending:
                circuit.record(generation, None, bits, now)
            admission = None
            isolated = self._isolated.get(request.endpoint)
            if request.admit_token is not None and isolated is None:
                admission = circuit.admit(now, request.admit_token)
            # Each breaker reports the transitions it observes; the store has no listeners.
            circuit.changes.clear()
            window = circuit.window
            return SharedView(
                state=circuit.state,
                generation=circuit.generation,
                admitted=None
                if admission is None or admission.kind == "rejected"
                else admission.kind,
                retry_after=max(0.0, admission.retry_at - now)
                if admission is not None and admission.kind == "rejected"
                else 0.0,
                open_remaining=max(0.0, circuit.open_until - now) if circuit.state == OPEN else 0.0,
                failures=window.failures,
                calls=window.calls,
                slow=window.slow,
                successes=circuit.half_open_successes,
                probes=len(circuit.probes),
                trip=circuit.trip,
                isolated=isolated,
            )

    async def aexchange(self, request: Exchange, /) -> SharedView:
        return self.exchange(request)

    # -- kill switches (IsolationStorage) ---------------------------------------------

    def isolate(self, endpoint: str, reason: str, /) -> None:
        with self._lock:
            self._isolated[endpoint] = reason

    def restore(self, endpoint: str, /) -> bool:
        with self._lock:
            return self._isolated.pop(endpoint, None) is not None

    def isolation(self, endpoint: str, /) -> str | None:
        return self._isolated.get(endpoint)

    async def aisolation(self, endpoint: str, /) -> str | None:
        return self._isolated.get(endpoint)
