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

A lock guards only O(1) state updates, never the guarded call, so concurrent calls run
concurrently (pybreaker's ``call()`` holds its lock across the call). The decisions are
the pure state machine of ``_breaker_core.py``; the per-endpoint state and the lock-held
steps both drivers share are ``_breaker_steps.py``. This module is the thin sync and async
driver over them (the only code that talks to a shared storage, ``_breaker_storage.py``),
the reporting of transitions to listeners and the log, and the registry of breakers.

What pybreaker provides here: the state names (its ``half-open`` is spelt ``half_open``
in this SDK) and its listener protocol:
a ``pybreaker.CircuitBreakerListener`` passed as a listener is notified through a real
``pybreaker.CircuitBreaker`` mirroring the endpoint (name = endpoint key), whose storage is
a read-only ``pybreaker.CircuitBreakerStorage`` view of our state. The admission rules
are ours: pybreaker admits every call in half-open and counts consecutive failures only.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence

import anyio
import pybreaker

from .._clock import SYSTEM_CLOCK, Clock
from ._circuit import CLOSED, OPEN, BreakerState
from ._policy import Breaker, Outcome, classify_for_breaker
from ._pybreaker import PYBREAKER_NAMES, PybreakerView
from ._steps import BreakerSteps
from ._storage import BreakerStorage, BreakerStorageUnavailable, Exchange
from ._types import BreakerListener, BreakerSnapshot, Permit, Rejection

__all__ = [
    "Breaker",
    "BreakerListener",
    "BreakerRegistry",
    "BreakerSnapshot",
    "BreakerState",
    "EndpointBreaker",
    "Outcome",
    "Permit",
    "Rejection",
    "classify_for_breaker",
]

logger = logging.getLogger("resilient_client.breaker")


class EndpointBreaker(BreakerSteps):
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
        super().__init__(endpoint, policy, storage, clock)
        self._listeners = [
            x for x in listeners if not isinstance(x, pybreaker.CircuitBreakerListener)
        ]
        pb_listeners = [x for x in listeners if isinstance(x, pybreaker.CircuitBreakerListener)]
        self._pybreaker: pybreaker.CircuitBreaker | None = None
        self._pybreaker_view: PybreakerView | None = None
        if pb_listeners:
            self._pybreaker_view = PybreakerView(self)
            self._pybreaker = pybreaker.CircuitBreaker(
                fail_max=policy.failure_threshold,
                reset_timeout=policy.reset_timeout,
                success_threshold=policy.success_threshold,
                listeners=pb_listeners,
                state_storage=self._pybreaker_view,
                name=endpoint,
            )

    @property
    def name(self) -> str:
        """The endpoint key (pybreaker's ``CircuitBreaker.name``)."""
        return self.endpoint

    # -- sync driver ------------------------------------------------------------------

    def admit(self) -> Permit | Rejection:
        """A :class:`Permit` for one attempt, or a :class:`Rejection` to raise on."""
        if self._storage is None:
            # The hot path, lock-free: a closed circuit admits with the generation's
            # shared permit (reading two attributes is atomic enough under the GIL; a
            # racing trip is indistinguishable from an admission just before it).
            circuit, permit = self._circuit, self._call
            if circuit.state == CLOSED and permit.generation == circuit.generation:
                return permit
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
            if (
                outcome == "success"
                and self._quiet_eligible
                and self._circuit.state == CLOSED
                and self._circuit.window.failures == 0
            ):
                # A success that changes nothing - closed, no failure streak to reset -
                # is skipped without the lock: the common case by far.
                return
            if outcome == "ignored":
                # Nothing to count and no probe slot to free. The only work left would be
                # moving a due open state to half_open, which the next admission does.
                return
        request = self._begin_record(permit, self._bits(outcome, duration))
        # None: counted here, or sent with the next admission. (Only a shared permit makes
        # a request, so the storage check is for the type checker.)
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
        if self._storage is None or permit.token is None:
            # No I/O (a closed-state outcome travels with the next admission): the sync
            # path, shortcuts included, so the decisions are written once.
            return self.record(permit, outcome, duration)
        request = self._begin_record(permit, self._bits(outcome, duration))
        if request is None:  # counted here, or sent with the next admission
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

    # -- reporting: the transitions the steps drained, told outside the lock -------------

    def _notify(self, changes: list[tuple[BreakerState, BreakerState]]) -> None:
        for old, new in changes:
            if new == OPEN:
                left = max(0.0, self._circuit.open_until - self._clock.monotonic())
                logger.warning(
                    "circuit breaker for endpoint %r: %s -> open (next probe in %.3gs)",
                    self.endpoint,
                    old,
                    left,
                )
            else:
                logger.info("circuit breaker for endpoint %r: %s -> %s", self.endpoint, old, new)
            for listener in self._listeners:
                try:
                    listener.state_change(self, old, new)
                except Exception:
                    logger.exception("breaker listener %r failed", listener)
            if self._pybreaker is not None and self._pybreaker_view is not None:
                self._pybreaker_view.reported = PYBREAKER_NAMES[new]
                try:
                    # pybreaker builds its state object and notifies its listeners.
                    self._pybreaker.state = PYBREAKER_NAMES[new]
                except Exception:
                    logger.exception("pybreaker listener failed")

    def __repr__(self) -> str:
        return f"EndpointBreaker({self.endpoint!r}, state={self._circuit.state!r})"


class BreakerRegistry:
    """The breakers of one transport, created on first use, one per endpoint key.

    ``storage``: ``None`` keeps state in this registry; a :class:`BreakerStorage` shares
    it (with every registry, and every process, using the same storage). ``clock``
    times the open state of in-process breakers. ``listeners`` are told of every state
    change (:class:`BreakerListener` or ``pybreaker.CircuitBreakerListener`` instances).
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
        self._breakers: dict[str, EndpointBreaker] = {}

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
