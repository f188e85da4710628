"""Per-endpoint circuit breakers: the state the pipeline asks before each attempt.

The pipeline asks :meth:`EndpointBreaker.admit` before an attempt and answers with
:meth:`~EndpointBreaker.record`, or :meth:`~EndpointBreaker.release` if the attempt ended
without an outcome (cancelled), so a half-open probe slot is never lost::

    breaker = registry.get(endpoint, policy.breaker)
    permit = breaker.admit()                      # or: await breaker.aadmit()
    if isinstance(permit, Rejection):
        raise CircuitOpenError(permit.endpoint, permit.retry_at)
    try:
        response = send()
    except httpx.TransportError:
        breaker.record(permit, "failure", elapsed)
        raise
    except BaseException:
        breaker.release(permit)
        raise
    outcome = classify_for_breaker(policy.breaker, response.status_code)
    breaker.record(permit, outcome, elapsed)

The decisions are the pure state machine of ``_circuit.py``. This module holds one
endpoint's state around it, the lock-held steps (O(1) work, no I/O) that the sync and
async drivers share, the two drivers themselves (the only code that talks to a shared
storage, ``_storage.py``), the reporting of transitions to listeners and the log, and
the registry of breakers. A lock guards only O(1) state updates, never the guarded call,
so concurrent calls run concurrently (pybreaker's ``call()`` holds its lock across it).

What pybreaker provides here: the state names (its ``half-open`` is spelt ``half_open``
in this SDK) and its listener protocol: a ``pybreaker.CircuitBreakerListener`` passed as a
listener is notified through a real ``pybreaker.CircuitBreaker`` mirroring the endpoint
(name = endpoint key), whose storage is a read-only :class:`_PybreakerView` of our state.
The admission rules are ours: pybreaker admits every call in half-open and counts
consecutive failures only.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import anyio
import pybreaker

from .._clock import SYSTEM_CLOCK, Clock, renew_after_fork
from ._circuit import (
    CLOSED,
    FAILED,
    HALF_OPEN,
    OPEN,
    SLOW,
    Admission,
    Circuit,
    TimeWindow,
    describe_trip,
)
from ._policy import Breaker, BreakerSnapshot, BreakerState, Outcome, Permit, Rejection
from ._storage import BreakerStorage, BreakerStorageUnavailable, Exchange, ProbeResult, SharedView

__all__ = ["BreakerListener", "BreakerRegistry", "EndpointBreaker"]

logger = logging.getLogger("resilient_client.breaker")

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


def _counts_unlocked(policy: Breaker, storage: BreakerStorage | None) -> bool:
    # Whether a closed-state fast success may be counted without the lock: an in-process
    # time window (TimeWindow).
    return storage is None and policy.window == "time"


class BreakerListener(Protocol):
    """Told of every state change this process observes (pybreaker's method name)."""

    def state_change(self, breaker: EndpointBreaker, old: BreakerState, new: BreakerState) -> None:
        """Called after the change, outside the breaker's lock; exceptions are logged."""


class EndpointBreaker:
    """The breaker of one endpoint. Thread-safe and task-safe; create through
    :class:`BreakerRegistry`.

    Without a storage every decision is local. With one, each admission is one exchange
    with it, carrying the outcomes recorded since the last one; a half-open probe's
    outcome (or release) is one more. If the storage is unreachable the local state,
    which mirrors the shared one, takes over, and yields again when the storage answers.
    """

    def __init__(
        self,
        endpoint: str,
        policy: Breaker,
        *,
        storage: BreakerStorage | None = None,
        clock: Clock = SYSTEM_CLOCK,
        listeners: Sequence[BreakerListener | pybreaker.CircuitBreakerListener] = (),
    ) -> None:
        self.endpoint = endpoint
        # Read by the pipeline on every 4xx/5xx attempt (classify_for_breaker): an
        # attribute, not a property (a frame). Changed only by reconfigure().
        self.policy = policy
        self._storage = storage
        # No shared storage: every decision is in memory, so the async driver may call
        # admit / record without awaiting aadmit / arecord.
        self.local = storage is None
        self._clock = clock
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._circuit = Circuit(policy)
        self._pending: list[tuple[int, int]] = []
        self._view: SharedView | None = None
        self._fallback = False
        # When the last shared rejection ends (monotonic): the local mirror holds none of
        # the fleet's probe leases, so it cannot tell otherwise. None = not rejected.
        self._shared_retry_at: float | None = None
        self._opened_wall: float | None = None
        # The shared storage's last word on the endpoint's kill switch (the operator's
        # reason, or None): it holds while the storage cannot be reached.
        self.isolated: str | None = None
        self._call = Permit(endpoint, 0)  # reused by every closed call of a generation
        # What admit() hands out without the lock: the closed generation's permit while an
        # in-process circuit is closed, else None (then it asks the circuit or storage).
        # Set under the lock, where the state changes (_drain).
        self._door: Permit | None = self._call if storage is None else None
        self._quiet_eligible = _quiet_eligible(policy, storage)
        self._counts_unlocked = _counts_unlocked(policy, storage)
        self._now = clock.monotonic
        # The policy's, read per attempt by the pipeline: an attribute, not the property.
        self.slow_call_duration = policy.slow_call_duration
        self._listeners = [
            x for x in listeners if not isinstance(x, pybreaker.CircuitBreakerListener)
        ]
        pb_listeners = [x for x in listeners if isinstance(x, pybreaker.CircuitBreakerListener)]
        self._pybreaker: pybreaker.CircuitBreaker | None = None
        self._pybreaker_view: _PybreakerView | None = None
        if pb_listeners:
            self._pybreaker_view = _PybreakerView(self)
            self._pybreaker = pybreaker.CircuitBreaker(
                fail_max=policy.failure_threshold,
                reset_timeout=policy.reset_timeout,
                success_threshold=policy.success_threshold,
                listeners=pb_listeners,
                state_storage=self._pybreaker_view,
                name=endpoint,
            )

    def _after_fork(self) -> None:
        """In a forked child: fresh locks (pybreaker's too), as another thread of the
        parent may have held them; the circuit's state is kept."""
        self._lock = threading.Lock()
        if self._pybreaker is not None:
            self._pybreaker._lock = threading.RLock()

    def is_closed(self) -> bool:
        """Whether this process's view of the circuit is closed (an endpoint whose breaker
        is not may not be forgotten: its open state is what protects the upstream)."""
        return self._circuit.state == CLOSED

    @property
    def name(self) -> str:
        """The endpoint key (pybreaker's ``CircuitBreaker.name``)."""
        return self.endpoint

    def reconfigure(self, policy: Breaker) -> None:
        """Use ``policy`` from now on; the state (and, for the same window, counts) stays."""
        with self._lock:
            # The flag first: a success racing this call may then be counted in vain, but
            # is never skipped by a window that now counts successes.
            self._quiet_eligible = _quiet_eligible(policy, self._storage)
            # A success racing a change of window is safe either way: it is counted
            # without the lock into a time window only.
            self._counts_unlocked = _counts_unlocked(policy, self._storage)
            self.policy = policy
            self.slow_call_duration = policy.slow_call_duration
            self._circuit.reconfigure(policy)

    # -- sync driver ------------------------------------------------------------------

    def admit(self) -> Permit | Rejection:
        """A :class:`Permit` for one attempt, or a :class:`Rejection` to raise on."""
        # The hot path, lock-free: a closed in-process circuit admits with the generation's
        # shared permit (a racing trip is indistinguishable from an admission just before
        # it). One attribute, not the state and the generation: ~400 instructions a call.
        permit = self._door
        if permit is not None:
            return permit
        if self._storage is None:
            return self._admit_locally(None)
        request = self._begin_admit()
        try:
            view = self._storage.exchange(request)
        except BreakerStorageUnavailable:
            return self._admit_locally(request)
        except BaseException:
            self._abandon(request)
            raise
        return self._admitted(request, view)

    def record(self, permit: Permit, outcome: Outcome, duration: float) -> None:
        """Count ``outcome`` of the attempt ``permit`` allowed, which took ``duration`` s.

        With a shared storage, a closed-state outcome travels with this process's next
        admission (no I/O here); a probe's outcome is sent at once. Raises ``ValueError``
        for an unknown ``outcome``.
        """
        if permit.token is None:
            if outcome == "success":
                circuit = self._circuit
                if self._counts_unlocked:  # the default policy's case: tested first
                    slow = self.slow_call_duration
                    if slow is None or duration < slow:
                        # A closed time window counts a fast success without the lock,
                        # and takes it only when a trip rule could be met: TimeWindow's
                        # five steps, and why that is safe. Inline, as every call comes
                        # here: a frame, ~550 instructions a call (cachegrind).
                        window = circuit.window  # before the generation
                        if (
                            permit.generation == circuit.generation
                            and circuit.state == CLOSED
                            and type(window) is TimeWindow
                            and self._now() < window.ends
                        ):
                            next(window.fast)
                            if (
                                window.failures >= circuit.failure_floor
                                or window.slow >= circuit.slow_floor
                            ):
                                self._settle()
                            return
                elif (
                    self._quiet_eligible
                    and circuit.state == CLOSED
                    and circuit.window.failures == 0
                ):
                    # A success that changes nothing - closed, no failure streak to reset
                    # - is skipped without the lock: the common case by far.
                    return
            elif outcome == "ignored":
                # Nothing to count and no probe slot to free. The only work left would be
                # moving a due open state to half_open, which the next admission does.
                return
        bits = self._bits(outcome, duration)
        if not permit.shared:
            self._record_locally(permit, None, bits)
            return
        request = self._begin_record(permit, bits)
        # None: sent with the next admission. (Only a shared permit makes a request, so
        # the storage check is for the type checker.)
        if request is None or self._storage is None:
            return
        try:
            view = self._storage.exchange(request)
        except BreakerStorageUnavailable:
            self._record_locally(permit, request)
            return
        self._follow(view)

    def release(self, permit: Permit) -> None:
        """Hand ``permit`` back without an outcome (the attempt was cancelled)."""
        self.record(permit, "ignored", 0.0)

    def _settle(self) -> None:
        # A success counted without the lock may have met the trip rule: apply it.
        now = self._clock.monotonic()
        with self._lock:
            self._circuit.settle(now)
            changes = self._drain()
        if changes:
            self._notify(changes)

    def _abandon(self, request: Exchange) -> None:
        # Interrupted mid-exchange: the storage may have granted a probe slot nobody holds.
        if request.admit_token is not None and self._storage is not None:
            # On failure the slot's lease reclaims it.
            with contextlib.suppress(Exception):
                self._storage.exchange(self._release_request(request.admit_token))

    # -- async driver: the same steps, awaiting the storage ---------------------------

    async def aadmit(self) -> Permit | Rejection:
        """:meth:`admit` for async callers; storage I/O never blocks the event loop."""
        if self._storage is None:
            return self.admit()  # no I/O: the sync path, lock-free fast path included
        request = self._begin_admit()
        try:
            view = await self._storage.aexchange(request)
        except BreakerStorageUnavailable:
            return self._admit_locally(request)
        except BaseException:
            await self._aabandon(request)
            raise
        return self._admitted(request, view)

    async def arecord(self, permit: Permit, outcome: Outcome, duration: float) -> None:
        """:meth:`record` for async callers."""
        if self._storage is None or permit.token is None or not permit.shared:
            # No I/O (a closed-state outcome travels with the next admission; a probe
            # admitted while the storage was unreachable is counted here): the sync path,
            # shortcuts included, so the decisions are written once.
            return self.record(permit, outcome, duration)
        request = self._begin_record(permit, self._bits(outcome, duration))
        if request is None:  # sent with the next admission
            return
        # A probe's outcome or release frees a fleet-wide slot. The pipeline sends a
        # release from its ``except BaseException`` while the caller is being cancelled;
        # under trio or an anyio cancel scope every await there raises again, and the
        # slot would stay taken until its lease ends. The storage's timeout bounds this.
        with anyio.CancelScope(shield=True):
            try:
                view = await self._storage.aexchange(request)
            except BreakerStorageUnavailable:
                self._record_locally(permit, request)
                return
        self._follow(view)

    async def arelease(self, permit: Permit) -> None:
        """:meth:`release` for async callers."""
        await self.arecord(permit, "ignored", 0.0)

    async def _aabandon(self, request: Exchange) -> None:
        if request.admit_token is not None and self._storage is not None:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(Exception):
                    await self._storage.aexchange(self._release_request(request.admit_token))

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
        return Exchange(self.endpoint, self.policy, self._take_pending(), _new_token())

    def _release_request(self, token: str) -> Exchange:
        return Exchange(self.endpoint, self.policy, probe=ProbeResult(token, -1, None))

    def _begin_record(self, permit: Permit, bits: int | None) -> Exchange | None:
        # Only for a shared permit; an in-process one is counted by _record_locally.
        if permit.token is None:
            # A closed-state outcome travels with this process's next admission.
            if bits is not None:
                with self._lock:
                    if len(self._pending) < _MAX_PENDING:
                        self._pending.append((permit.generation, bits))
            return None
        # The random number is drawn here, once, so every storage decides with it.
        probe = ProbeResult(permit.token, permit.generation, bits, self._clock.random())
        return Exchange(self.endpoint, self.policy, self._take_pending(), probe=probe)

    def _admit_locally(self, failed: Exchange | None) -> Permit | Rejection:
        now = self._clock.monotonic()
        with self._lock:
            circuit = self._circuit
            if failed is not None:
                self._enter_fallback(failed, now)
            answer: Permit | Rejection
            if self.isolated is not None:  # the fleet's kill switch, last seen, holds
                answer = Rejection(self.endpoint, now, circuit.state, self.isolated)
            else:
                token = _new_token() if circuit.state != CLOSED else ""
                admission = circuit.admit(now, token)
                answer = self._answer(admission, token, circuit.state)
            changes = self._drain()
        if changes:
            self._notify(changes)
        return answer

    def _answer(self, admission: Admission, token: str, state: BreakerState) -> Permit | Rejection:
        if admission.kind == "call":
            return self._call_permit(admission.generation)
        if admission.kind == "probe":
            return Permit(self.endpoint, admission.generation, token)
        return Rejection(self.endpoint, admission.retry_at, state)

    def _record_locally(
        self, permit: Permit, failed: Exchange | None, bits: int | None = None
    ) -> None:
        # Only a probe's outcome can reopen the breaker and need the random number.
        rand = self._clock.random() if permit.token is not None else 0.0
        now = self._clock.monotonic()
        with self._lock:
            circuit = self._circuit
            if failed is not None:
                # The storage failed while finishing a shared probe: count it here.
                self._enter_fallback(failed, now)
                bits = failed.probe.bits if failed.probe is not None else None
                circuit.record(circuit.generation, permit.token, bits, now, rand)
            elif self._storage is None or self._fallback:
                circuit.record(permit.generation, permit.token, bits, now, rand)
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
        if view.isolated is not None:
            return Rejection(self.endpoint, now, view.state, view.isolated)
        if view.admitted == "call":
            return Permit(self.endpoint, view.generation, None, True)
        if view.admitted == "probe":
            return Permit(self.endpoint, view.generation, request.admit_token, True)
        return Rejection(self.endpoint, now + view.retry_after, view.state)

    def _follow(self, view: SharedView) -> float:
        now = self._clock.monotonic()
        with self._lock:
            self._view = view
            self.isolated = view.isolated
            self._fallback = False
            # retry_after is 0 unless this exchange was rejected.
            self._shared_retry_at = now + view.retry_after if view.retry_after > 0 else None
            self._circuit.follow(view.state, now + view.open_remaining)
            changes = self._drain()
        if changes:
            self._notify(changes)
        return now

    def _call_permit(self, generation: int) -> Permit:
        # The permit every closed call of ``generation`` shares.
        permit = self._call
        if permit.generation != generation:
            permit = self._call = Permit(self.endpoint, generation)
        return permit

    def _drain(self) -> list[tuple[BreakerState, BreakerState]]:
        circuit = self._circuit
        changes = circuit.changes
        if not changes:
            return changes
        circuit.changes = []
        if any(new == OPEN for _, new in changes):
            self._opened_wall = self._clock.wall()
        if self._storage is None:
            # The state moved (a new generation comes only with a move): so does the door.
            closed = circuit.state == CLOSED
            self._door = self._call_permit(circuit.generation) if closed else None
        return changes

    # -- reporting: the transitions the steps drained, told outside the lock -------------

    def _notify(self, changes: list[tuple[BreakerState, BreakerState]]) -> None:
        # The record's endpoint field too, not only its text: handlers filter on it.
        extra = {"endpoint": self.endpoint}
        for old, new in changes:
            if new == OPEN:
                left = max(0.0, self._circuit.open_until - self._clock.monotonic())
                logger.warning(
                    "circuit breaker for endpoint %r: %s -> open (next probe in %.3gs)",
                    self.endpoint,
                    old,
                    left,
                    extra=extra,
                )
            else:
                logger.info(
                    "circuit breaker for endpoint %r: %s -> %s",
                    self.endpoint,
                    old,
                    new,
                    extra=extra,
                )
            for listener in self._listeners:
                try:
                    listener.state_change(self, old, new)
                except Exception:
                    logger.exception("breaker listener %r failed", listener)
            if self._pybreaker is not None and self._pybreaker_view is not None:
                self._pybreaker_view.reported = _PYBREAKER_NAMES[new]
                try:
                    # pybreaker builds its state object and notifies its listeners.
                    self._pybreaker.state = _PYBREAKER_NAMES[new]
                except Exception:
                    logger.exception("pybreaker listener failed")

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
        elif len(circuit.probes) >= self.policy.half_open_max_calls:
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
            if view is not None:
                failures, calls, slow = view.failures, view.calls, view.slow
                successes, probes, trip = view.successes, view.probes, view.trip
            else:
                circuit.window.expire(now)
                window = circuit.window
                failures, calls, slow = window.failures, window.calls, window.slow
                successes, probes, trip = (
                    circuit.half_open_successes,
                    len(circuit.probes),
                    circuit.trip,
                )
            retry_at = self._retry_at(now)
        rated = self.policy.window != "consecutive" and calls > 0
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
            shared=view is not None,
            retry_in=None if retry_at is None else retry_at - now,
            opened_by=None if state == CLOSED else describe_trip(trip),
            isolated=self.isolated,
        )

    def __repr__(self) -> str:
        return f"EndpointBreaker({self.endpoint!r}, state={self._circuit.state!r})"


class BreakerRegistry:
    """The breakers of one transport, created on first use, one per endpoint key.

    ``storage``: ``None`` keeps state in this registry; a :class:`BreakerStorage` shares
    it (with every registry, and every process, using the same storage). ``clock``
    times the open state of in-process breakers and draws the jitter of grown open
    periods. ``listeners`` are told of every state change (:class:`BreakerListener` or
    ``pybreaker.CircuitBreakerListener`` instances).
    """

    def __init__(
        self,
        storage: BreakerStorage | None = None,
        clock: Clock = SYSTEM_CLOCK,
        *,
        listeners: Sequence[BreakerListener | pybreaker.CircuitBreakerListener] = (),
    ) -> None:
        self.storage = storage
        self._clock = clock
        self._listeners = tuple(listeners)
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._breakers: dict[str, EndpointBreaker] = {}

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held this one)."""
        self._lock = threading.Lock()

    def discard(self, endpoint: str) -> None:
        """Forget ``endpoint``'s breaker (an endpoint table evicting a host's default)."""
        with self._lock:
            self._breakers.pop(endpoint, None)

    def get(self, endpoint: str, policy: Breaker) -> EndpointBreaker:
        """The breaker of ``endpoint``; a different ``policy`` than last time applies to
        the same state from now on."""
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.get(endpoint)
                if breaker is None:
                    breaker = EndpointBreaker(
                        endpoint,
                        policy,
                        storage=self.storage,
                        clock=self._clock,
                        listeners=self._listeners,
                    )
                    self._breakers[endpoint] = breaker
        elif breaker.policy is not policy and breaker.policy != policy:
            breaker.reconfigure(policy)
        return breaker

    def snapshots(self) -> list[BreakerSnapshot]:
        """A snapshot of every breaker created so far, sorted by endpoint."""
        with self._lock:
            breakers = sorted(self._breakers.items())
        return [breaker.snapshot() for _, breaker in breakers]


# -- pybreaker's side: its state names, and a read-only storage view ---------------------

_PYBREAKER_NAMES = {
    CLOSED: pybreaker.STATE_CLOSED,
    OPEN: pybreaker.STATE_OPEN,
    HALF_OPEN: pybreaker.STATE_HALF_OPEN,
}


class _PybreakerView(pybreaker.CircuitBreakerStorage):
    """A read-only ``pybreaker`` storage over an :class:`EndpointBreaker`.

    pybreaker's mutators are no-ops: our state machine is the only writer (the counter
    resets pybreaker performs on a transition have already happened in ours).
    """

    def __init__(self, breaker: EndpointBreaker) -> None:
        super().__init__("resilient-client")
        self._breaker = breaker
        self.reported: str = _PYBREAKER_NAMES[CLOSED]

    @property
    def state(self) -> str:
        # The state pybreaker was last told of, so its own getter never re-notifies.
        return self.reported

    @state.setter
    def state(self, state: str) -> None:
        pass

    @property
    def counter(self) -> int:
        return self._breaker.snapshot().failures

    @property
    def success_counter(self) -> int:
        return self._breaker.snapshot().successes

    @property
    def opened_at(self) -> datetime | None:
        wall = self._breaker._opened_wall
        return None if wall is None else datetime.fromtimestamp(wall, UTC)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        pass
