"""The state of one endpoint's breaker and the steps its two drivers share.

:class:`~._breaker.EndpointBreaker` is the sync and async driver over this class: each
driver method is a few of these steps around at most one storage exchange. Every step
here is free of I/O and holds the lock for O(1) work only, so both drivers reuse them
unchanged and stay short enough to diff. Kept apart from the drivers to keep each module
to one purpose; the decisions themselves are the state machine of ``_breaker_core.py``.
A base class rather than an object the breaker holds, so the hot path (``admit`` and
``record`` on every call) reads the state as its own attributes, with no extra hop.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid

from .._clock import Clock
from ._circuit import (
    CLOSED,
    FAILED,
    HALF_OPEN,
    OPEN,
    SLOW,
    Admission,
    BreakerState,
    Circuit,
)
from ._policy import Breaker, Outcome
from ._storage import BreakerStorage, Exchange, ProbeResult, SharedView
from ._types import BreakerSnapshot, Permit, Rejection

__all__ = ["BreakerSteps"]

_PROCESS = uuid.uuid4().hex[:12]
_tokens = itertools.count()
# Outcomes of one process waiting for its next admission: bounded by its concurrency in
# practice, capped here in case a caller records without ever admitting again.
_MAX_PENDING = 1024


def _new_token() -> str:
    # The pid tells forked children apart; _PROCESS tells hosts apart.
    return f"{_PROCESS}:{os.getpid()}:{next(_tokens)}"


def _quiet_eligible(policy: Breaker, storage: BreakerStorage | None) -> bool:
    # Whether a closed-state success can change nothing at all: no storage to tell, a
    # consecutive-failures window, and no slow-call rule that could make it count.
    return storage is None and policy.window == "consecutive" and policy.slow_call_duration is None


class BreakerSteps:
    """The state of one endpoint's breaker, the steps that change it, and reads of it.

    Only :class:`~._breaker.EndpointBreaker` is instantiated: it adds the drivers and
    tells listeners of the transitions the steps report (:meth:`_notify`).
    """

    def __init__(
        self, endpoint: str, policy: Breaker, storage: BreakerStorage | None, clock: Clock
    ) -> None:
        self.endpoint = endpoint
        self._policy = policy
        self._storage = storage
        # No shared storage: every decision is in memory, so the async driver may call
        # admit / record without awaiting aadmit / arecord.
        self.local = storage is None
        self._clock = clock
        self._lock = threading.Lock()
        self._circuit = Circuit(policy)
        self._pending: list[tuple[int, int]] = []
        self._view: SharedView | None = None
        self._fallback = False
        # When the last shared rejection ends (monotonic): the local mirror holds none of
        # the fleet's probe leases, so it cannot tell otherwise. None = not rejected.
        self._shared_retry_at: float | None = None
        self._opened_wall: float | None = None
        self._call = Permit(endpoint, 0)  # reused by every closed call of a generation
        self._quiet_eligible = _quiet_eligible(policy, storage)
        # The policy's, read per attempt by the pipeline: an attribute, not the property.
        self.slow_call_duration = policy.slow_call_duration

    @property
    def policy(self) -> Breaker:
        return self._policy

    def reconfigure(self, policy: Breaker) -> None:
        """Use ``policy`` from now on; the state (and, for the same window, counts) stays."""
        with self._lock:
            # The flag first: a success racing this call may then be counted in vain, but
            # is never skipped by a window that now counts successes.
            self._quiet_eligible = _quiet_eligible(policy, self._storage)
            self._policy = policy
            self.slow_call_duration = policy.slow_call_duration
            self._circuit.reconfigure(policy)

    # -- the steps both drivers share (no I/O; the lock is held for O(1) work) ----------

    def _bits(self, outcome: Outcome, duration: float) -> int | None:
        if outcome == "ignored":
            return None
        if outcome == "failure":
            bits = FAILED
        elif outcome == "success":
            bits = 0
        else:
            raise ValueError(f"outcome must be 'success', 'failure' or 'ignored', not {outcome!r}")
        slow = self.slow_call_duration
        if slow is not None and duration >= slow:
            bits |= SLOW
        return bits

    def _take_pending(self) -> tuple[tuple[int, int], ...]:
        with self._lock:
            if not self._pending:
                return ()
            pending, self._pending = tuple(self._pending), []
        return pending

    def _begin_admit(self) -> Exchange:
        return Exchange(self.endpoint, self._policy, self._take_pending(), _new_token())

    def _release_request(self, token: str) -> Exchange:
        return Exchange(self.endpoint, self._policy, probe=ProbeResult(token, -1, None))

    def _begin_record(self, permit: Permit, bits: int | None) -> Exchange | None:
        if not permit.shared:
            self._record_locally(permit, None, bits)
            return None
        if permit.token is None:
            # A closed-state outcome travels with this process's next admission.
            if bits is not None:
                with self._lock:
                    if len(self._pending) < _MAX_PENDING:
                        self._pending.append((permit.generation, bits))
            return None
        probe = ProbeResult(permit.token, permit.generation, bits)
        return Exchange(self.endpoint, self._policy, self._take_pending(), probe=probe)

    def _admit_locally(self, failed: Exchange | None) -> Permit | Rejection:
        now = self._clock.monotonic()
        with self._lock:
            circuit = self._circuit
            if failed is not None:
                self._enter_fallback(failed, now)
            token = _new_token() if circuit.state != CLOSED else ""
            admission = circuit.admit(now, token)
            answer = self._answer(admission, token, circuit.state)
            changes = self._drain()
        if changes:
            self._notify(changes)
        return answer

    def _answer(self, admission: Admission, token: str, state: BreakerState) -> Permit | Rejection:
        if admission.kind == "call":
            permit = self._call
            if permit.generation != admission.generation:
                permit = self._call = Permit(self.endpoint, admission.generation)
            return permit
        if admission.kind == "probe":
            return Permit(self.endpoint, admission.generation, token)
        return Rejection(self.endpoint, admission.retry_at, state)

    def _record_locally(
        self, permit: Permit, failed: Exchange | None, bits: int | None = None
    ) -> None:
        now = self._clock.monotonic()
        with self._lock:
            circuit = self._circuit
            if failed is not None:
                # The storage failed while finishing a shared probe: count it here.
                self._enter_fallback(failed, now)
                bits = failed.probe.bits if failed.probe is not None else None
                circuit.record(circuit.generation, permit.token, bits, now)
            elif self._storage is None or self._fallback:
                circuit.record(permit.generation, permit.token, bits, now)
            elif permit.token is not None:
                # A probe from a past fallback: free its slot, count nothing (the shared
                # state is in charge again).
                circuit.release(permit.token)
            changes = self._drain()
        if changes:
            self._notify(changes)

    def _enter_fallback(self, failed: Exchange, now: float) -> None:
        circuit = self._circuit
        if not self._fallback:
            # In-process counts start afresh; the state mirrored from the fleet stays.
            self._fallback = True
            circuit.reset_counts()
        for _generation, bits in failed.pending:
            circuit.record(circuit.generation, None, bits, now)

    def _admitted(self, request: Exchange, view: SharedView) -> Permit | Rejection:
        now = self._follow(view)
        if view.admitted == "call":
            return Permit(self.endpoint, view.generation, None, True)
        if view.admitted == "probe":
            return Permit(self.endpoint, view.generation, request.admit_token, True)
        return Rejection(self.endpoint, now + view.retry_after, view.state)

    def _follow(self, view: SharedView) -> float:
        now = self._clock.monotonic()
        with self._lock:
            self._view = view
            self._fallback = False
            # retry_after is 0 unless this exchange was rejected.
            self._shared_retry_at = now + view.retry_after if view.retry_after > 0 else None
            self._circuit.follow(view.state, now + view.open_remaining)
            changes = self._drain()
        if changes:
            self._notify(changes)
        return now

    def _drain(self) -> list[tuple[BreakerState, BreakerState]]:
        changes = self._circuit.changes
        if not changes:
            return changes
        self._circuit.changes = []
        if any(new == OPEN for _, new in changes):
            self._opened_wall = self._clock.wall()
        return changes

    def _notify(self, changes: list[tuple[BreakerState, BreakerState]]) -> None:
        # The driver's part: listeners are handed the EndpointBreaker itself.
        raise NotImplementedError

    # -- observation ------------------------------------------------------------------

    def retry_at(self) -> float | None:
        """When a call could next be let through, as far as this process knows.

        A ``clock.monotonic()`` instant in the future while the breaker would reject a
        call: while open, the end of the break; in half-open with every probe slot taken,
        when the oldest slot's lease ends at the latest (with a shared storage: the
        instant its last rejection named). ``None`` when an admission now could succeed:
        closed, an open break that is over, a free probe slot, or nothing known. Asks no
        storage; while closed, takes no lock and reads no clock. Never raises.
        """
        if self._circuit.state == CLOSED:
            return None  # the hot case: no clock read, no lock
        now = self._clock.monotonic()
        with self._lock:
            return self._retry_at(now)

    def _retry_at(self, now: float) -> float | None:
        # The lock is held.
        circuit = self._circuit
        if circuit.state == OPEN:
            # A break that is over becomes half_open (with free slots) on the next admission.
            return circuit.open_until if now < circuit.open_until else None
        if circuit.state != HALF_OPEN:
            return None
        if self._storage is not None and not self._fallback:
            at = self._shared_retry_at
        elif len(circuit.probes) >= self._policy.half_open_max_calls:
            at = min(circuit.probes.values())
        else:
            at = None
        return at if at is not None and at > now else None

    def snapshot(self) -> BreakerSnapshot:
        """The state and counts now; from the shared storage's last answer when shared."""
        now = self._clock.monotonic()
        with self._lock:
            circuit = self._circuit
            state = circuit.state
            if state == OPEN and now >= circuit.open_until:
                state = HALF_OPEN  # due; the next admission moves it
            view = self._view if self._storage is not None and not self._fallback else None
            shared = view is not None
            if view is not None:
                failures, calls, slow = view.failures, view.calls, view.slow
                successes, probes = view.successes, view.probes
            else:
                circuit.window.expire(now)
                window = circuit.window
                failures, calls, slow = window.failures, window.calls, window.slow
                successes, probes = circuit.half_open_successes, len(circuit.probes)
            retry_at = self._retry_at(now)
        rated = self._policy.window != "consecutive" and calls > 0
        return BreakerSnapshot(
            endpoint=self.endpoint,
            state=state,
            failures=failures,
            successes=successes,
            calls=calls,
            slow_calls=slow,
            failure_rate=failures / calls if rated else None,
            slow_call_rate=slow / calls if rated else None,
            retry_at=retry_at,
            probes_in_flight=probes,
            shared=shared,
        )
