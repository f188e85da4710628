"""``rc.Outbox``: park keyed writes that an outage refused, replay them exactly once.

Exactly once is the provider's deduplication made reliable: every replay sends the
write's original idempotency key, and a replayer claims an entry under a lease before
sending it, so no two replayers send one entry at once and a crashed replayer's entries
are taken up again when its lease runs out (their resend carries the same key, and the
provider answers it from its record instead of acting twice).

The sync and async drivers below only claim, send, settle and call back; the decisions
are :class:`~resilient_client.outbox._replay.ReplayPass`'s. Store I/O under the async
client runs in a worker thread (``anyio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Unpack, overload

import anyio.to_thread
import httpx
from pydantic import BaseModel, ConfigDict, Field

from .._call._extensions import EXT_IDEMPOTENCY_KEY, EXT_POLICY, EXT_REPLAY
from .._clock import SYSTEM_CLOCK, Clock
from .._deadline import Timeouts, clip, phase_table
from .._policy import Policy
from .._redact import DEFAULT_REDACTION, Redaction
from .._retry import Backoff
from ._model import OutboxEntry, ParkDetails, ReplayResult, new_entry, utc
from ._open import open_store
from ._replay import REPLAY_BACKOFF, ReplayPass, Step, held_endpoints, outcome_of
from ._store import OutboxStore

if TYPE_CHECKING:
    from ._background import AsyncReplayWorker, ReplayWorker

__all__ = ["Outbox"]

logger = logging.getLogger("resilient_client.outbox")

OnDelivered = Callable[[OutboxEntry, httpx.Response], object]
OnDead = Callable[[OutboxEntry, str], object]


class _Settings(BaseModel):
    """The outbox's numbers, validated (errors name the field)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    max_age: float = Field(gt=0.0, allow_inf_nan=False)
    lease: float = Field(gt=0.0, allow_inf_nan=False)
    batch: int = Field(ge=1)
    backoff: Backoff


class Outbox:
    """Parked writes and their replay.

    Args:
        store: ``"sqlite:///relative.db"``, ``"sqlite:////absolute/path.db"``, a
            ``"redis://…"`` URL, or a store object (``rc.RedisOutboxStore(url,
            namespace=...)``, any :class:`OutboxStore`). Opened at once.
        max_age: seconds after parking past which an entry is dead without being sent
            (default 86400: providers forget idempotency keys after about a day).
        lease: seconds a replayer holds an entry it claimed (default 30); a crashed
            replayer's entries are claimable again after it. Longer than one send.
        on_delivered: ``on_delivered(entry, response)`` once per entry delivered.
        on_dead: ``on_dead(entry, reason)`` once per entry that died. Under the async
            client either callback may be ``async``. An exception in a callback is logged
            and does not stop the replay (the entry is settled already).
        backoff: waits between replays of an entry whose provider still fails (default
            5 s doubling up to 5 min, equal jitter); a longer ``Retry-After`` wins.
        batch: entries claimed per store round trip (default 16).
        redaction: names the headers and query parameters never stored (default: the
            SDK's list - Authorization, cookies, API-key headers, …).
        clock: wall time for parking instants, due times and leases; randomness for jitter.

    Raises ``ValueError`` / ``pydantic.ValidationError`` naming a bad argument, and
    :class:`OutboxStoreError` naming a store that cannot be opened (left as it was).
    """

    def __init__(
        self,
        store: str | OutboxStore,
        *,
        max_age: float = 86400.0,
        lease: float = 30.0,
        on_delivered: OnDelivered | None = None,
        on_dead: OnDead | None = None,
        backoff: Backoff = REPLAY_BACKOFF,
        batch: int = 16,
        redaction: Redaction | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._settings = _Settings(max_age=max_age, lease=lease, batch=batch, backoff=backoff)
        self._store = open_store(store)
        self.on_delivered = on_delivered
        self.on_dead = on_dead
        self._redaction = redaction or DEFAULT_REDACTION
        self._clock = clock

    def __repr__(self) -> str:
        return f"Outbox({self._store!r})"

    def _now(self) -> float:
        # Whole microseconds, as the entries' datetimes hold them: an entry parked at an
        # instant is due at that same instant, not a rounding later.
        return utc(self._clock.wall()).timestamp()

    @property
    def store(self) -> OutboxStore:
        return self._store

    @property
    def max_age(self) -> float:
        return self._settings.max_age

    @property
    def lease(self) -> float:
        return self._settings.lease

    # -- parking ---------------------------------------------------------------------

    def park(self, request: httpx.Request, **details: Unpack[ParkDetails]) -> OutboxEntry:
        """Store ``request`` (a write that failed with a retryable outcome) and return its
        pending entry, due at once.

        Keywords (:class:`~resilient_client.outbox._model.ParkDetails`): ``endpoint`` and
        ``idempotency_key`` (required); ``idempotency_header`` (default
        ``"Idempotency-Key"``), ``correlation_id`` (default ``None``: none), ``attempts``
        (the call's attempts, default 1), ``last_error`` (default ``""``; must be short
        and secret-free: ``"status 503"``).

        Sensitive headers, URL credentials and sensitive query parameters are not stored.
        Raises ``ValueError`` for a one-shot streamed body or an empty key,
        :class:`OutboxStoreError` when the store cannot be written."""
        entry = new_entry(request, now=self._now(), redaction=self._redaction, **details)
        self._store.add(entry)
        return entry

    async def apark(self, request: httpx.Request, **details: Unpack[ParkDetails]) -> OutboxEntry:
        """:meth:`park` for async code: the store is written in a worker thread."""
        return await anyio.to_thread.run_sync(partial(self.park, request, **details))

    # -- reading and dropping ----------------------------------------------------------

    def entries(self) -> list[OutboxEntry]:
        """Every stored entry, pending and dead, oldest first (delivered ones are removed
        from the store when delivered)."""
        return self._store.entries()

    def get(self, entry_id: str) -> OutboxEntry | None:
        """The entry with this id, ``None`` if there is none."""
        return self._store.get(entry_id)

    def drop(self, entry_id: str) -> bool:
        """Remove an entry, whatever its state; ``False`` if there was none."""
        return self._store.drop(entry_id)

    def close(self) -> None:
        """Close the store's connections (reopened if the outbox is used again)."""
        self._store.close()

    # -- replay: the two drivers, structurally identical -------------------------------

    def replay(self, client: Any, *, limit: int | None = None) -> ReplayResult:
        """Send every due entry again through ``client`` (a sync resilient client, or
        any httpx-compatible client), with its original idempotency key, and settle it:
        delivered (removed), dead (a non-retryable answer, kept with its problem; or
        older than ``max_age``, not sent), or pending with backoff. Once one entry of an
        endpoint still fails, the endpoint's other entries wait for the next replay.

        ``limit``: entries to handle at most (``None``: all due). Returns what happened;
        raises :class:`OutboxStoreError` when the store fails.
        """
        return self._replay(client, self._pass(limit, frozenset()))

    async def areplay(self, client: Any, *, limit: int | None = None) -> ReplayResult:
        """:meth:`replay` through an async client; store I/O runs in a worker thread."""
        return await self._areplay(client, self._pass(limit, frozenset()))

    def _pass(self, limit: int | None, skip: frozenset[str]) -> ReplayPass:
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0 or None")
        settings = self._settings
        return ReplayPass(
            settings.max_age, settings.lease, settings.backoff, settings.batch, limit, skip
        )

    def _replay(self, client: Any, run: ReplayPass) -> ReplayResult:
        store = self._store
        while size := run.claim_size():
            args = run.claim_args(self._now(), size)
            claimed = store.claim(**args)
            if not claimed:
                break
            for entry in claimed:
                step, request = _decided(client, run, entry, self._now(), args["until"])
                outcome = None if request is None else _send(client, entry, request)
                settled = self._settled(run, entry, step, outcome)
                if settled is not None and store.settle(settled, owner=run.owner):
                    run.record(settled)
                    _call_back(self._callback(settled, outcome))
        return run.result

    async def _areplay(self, client: Any, run: ReplayPass) -> ReplayResult:
        store = self._store
        while size := run.claim_size():
            args = run.claim_args(self._now(), size)
            claimed = await anyio.to_thread.run_sync(partial(store.claim, **args))
            if not claimed:
                break
            for entry in claimed:
                step, request = _decided(client, run, entry, self._now(), args["until"])
                outcome = None if request is None else await _asend(client, entry, request)
                settled = self._settled(run, entry, step, outcome)
                if settled is not None and await anyio.to_thread.run_sync(
                    partial(store.settle, settled, owner=run.owner)
                ):
                    run.record(settled)
                    awaitable = _call_back(self._callback(settled, outcome))
                    if awaitable is not None:
                        await _guarded(awaitable, settled)
        return run.result

    def _settled(
        self, run: ReplayPass, entry: OutboxEntry, step: Step, outcome: Any
    ) -> OutboxEntry | None:
        """The entry after its step: judged by the send's ``outcome``, or unsent."""
        if step is Step.SEND:
            return run.judge(entry, outcome_of(outcome), self._now(), self._clock.random())
        return run.unsent(entry, step, self._now())

    def _callback(self, entry: OutboxEntry, outcome: Any) -> tuple[OutboxEntry, Any]:
        """The callback due for a settled entry, as ``(entry, call)`` (call ``None``:
        none)."""
        if entry.state == "delivered" and self.on_delivered is not None:
            return entry, partial(self.on_delivered, entry, outcome)
        if entry.state == "dead" and self.on_dead is not None:
            return entry, partial(self.on_dead, entry, entry.reason or "dead")
        return entry, None

    # -- the background replayer ---------------------------------------------------------

    @overload
    def start(self, client: httpx.AsyncClient, *, interval: float = ...) -> AsyncReplayWorker: ...

    @overload
    def start(self, client: httpx.Client, *, interval: float = ...) -> ReplayWorker: ...

    @overload
    def start(self, client: Any, *, interval: float = ...) -> ReplayWorker | AsyncReplayWorker: ...

    def start(self, client: Any, *, interval: float = 5.0) -> ReplayWorker | AsyncReplayWorker:
        """Replay in the background while the process runs: a daemon thread for a sync
        client, an asyncio task for an async one (call this inside its event loop).

        Every round replays the due entries of each endpoint whose breaker is not open
        (``client.breakers()``: an open breaker's entries wait until it lets a probe
        through), then waits until the next entry is due or ``interval`` seconds
        (default 5.0) have passed, whichever is sooner. Store failures are logged and
        retried the next round. Stop it with ``worker.stop()`` (``await`` it for the
        async one), or use it as a context manager.
        """
        if not (math.isfinite(interval) and interval > 0.0):
            raise ValueError("interval must be a positive number of seconds")
        from ._background import AsyncReplayWorker, ReplayWorker

        if inspect.iscoroutinefunction(getattr(client, "send", None)):
            return AsyncReplayWorker(self, client, interval)
        return ReplayWorker(self, client, interval)

    def _held(self, client: Any) -> frozenset[str]:
        """Endpoints the background replayer leaves alone this round: an open breaker's,
        and, where an incident monitor watches the client, those it does not judge
        healthy (the provider's incident is still open)."""
        breakers = getattr(client, "breakers", None)
        held = frozenset() if breakers is None else held_endpoints(breakers().values())
        pipeline = _pipeline_of(client)
        for observer in () if pipeline is None else pipeline.observers:
            health = getattr(observer, "health", None)
            if callable(health) and hasattr(observer, "incidents"):  # an IncidentMonitor
                unwell = {
                    key.split(" (", 1)[0] for key, h in health().items() if h.state != "healthy"
                }
                held |= unwell
        return held

    def _wait(self, interval: float) -> float:
        """Seconds until the background replayer's next round."""
        due = self._store.next_due()
        now = self._now()
        return interval if due is None or due <= now else min(interval, due - now)


def _pipeline_of(client: Any) -> Any:
    """The resilience pipeline of a resilient client, or of a plain client whose transport
    is a resilient one; ``None`` for any other client."""
    pipeline = getattr(client, "pipeline", None)
    if pipeline is None:
        pipeline = getattr(getattr(client, "_transport", None), "pipeline", None)
    return pipeline


def _send(client: Any, entry: OutboxEntry, request: Any) -> Any:
    """The replay's outcome: the response, or what a failed send stands for."""
    try:
        return client.send(request)
    except Exception as exc:
        return _failed_send(entry, exc)


async def _asend(client: Any, entry: OutboxEntry, request: Any) -> Any:
    try:
        return await client.send(request)
    except Exception as exc:
        return _failed_send(entry, exc)


def _decided(
    client: Any, run: ReplayPass, entry: OutboxEntry, now: float, until: float
) -> tuple[Step, Any]:
    """A claimed entry's step, and its request when it is to be sent: a send the
    endpoint's budget refuses is held, and the rest of the endpoint waits for the next
    round; a send is made to end by the end of our lease (both drivers ask this).

    Once our lease ends another replayer may claim the entry and send it: a send of ours
    still in flight then would be a second one at once (a slow provider, and the default
    30 s deadline against the default 30 s lease, were enough).
    """
    step = run.step(entry, now, until)
    if step is not Step.SEND:
        return step, None
    request = _replay_request(client, entry)
    left = until - now
    pipeline = _pipeline_of(client)
    if pipeline is None:
        # A plain client has per-operation timeouts only: each is cut to the lease's end.
        timeouts = request.extensions.get("timeout")
        if isinstance(timeouts, dict):
            request.extensions["timeout"] = dict(clip(phase_table(timeouts), left))
        return step, request
    endpoint = pipeline.endpoints.match(request)
    # A replay is a retry of a call that failed, so a provider just back is not flooded
    # by the outbox: a send the budget refuses stays due, for the next round.
    if endpoint.budget is not None and not endpoint.budget.try_retry():
        run.failing.add(entry.endpoint)
        return Step.HOLD, None
    if endpoint.total is None or left < endpoint.total:  # the call's deadline, cut
        request.extensions[EXT_POLICY] = Policy(timeouts=Timeouts(total=left))
    return step, request


def _replay_request(client: Any, entry: OutboxEntry) -> Any:
    """The entry's write, built by ``client`` so that its own auth, headers, cookies and
    params apply; marked as a replay (never parked again) and carrying the original key."""
    # Back to the bytes first sent (stored_headers decoded them as latin-1): as text, a
    # non-ASCII value would be refused by the client on every replay.
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in entry.headers]
    return client.build_request(
        entry.method,
        entry.url,
        content=entry.body,
        headers=headers,
        extensions={EXT_REPLAY: True, EXT_IDEMPOTENCY_KEY: entry.idempotency_key},
    )


def _failed_send(entry: OutboxEntry, exc: Exception) -> Exception:
    if not any(cls.__name__ == "HTTPError" for cls in type(exc).__mro__):
        # Not a network failure: a bug somewhere. The entry stays pending with backoff.
        logger.warning(
            "outbox entry %s: replay raised %s; kept pending", entry.id, type(exc).__name__
        )
    return exc


def _call_back(job: tuple[OutboxEntry, Any]) -> Any:
    """Run a settled entry's callback; an awaitable it returns is handed back."""
    entry, call = job
    if call is None:
        return None
    try:
        result = call()
    except Exception as exc:
        logger.warning("outbox callback for entry %s raised %s", entry.id, type(exc).__name__)
        return None
    return result if inspect.isawaitable(result) else None


async def _guarded(awaitable: Any, entry: OutboxEntry) -> None:
    try:
        await awaitable
    except Exception as exc:
        logger.warning("outbox callback for entry %s raised %s", entry.id, type(exc).__name__)
