"""The resilient transports: two thin drivers, sync and async, over one call story.

One call flows through a fixed order, outermost first::

    deadline → bulkhead / throttle → rate limit → retry (budget, backoff, Retry-After)
             → hedging → kill switch → failover → breaker → attempt timeout → inner transport

Every decision is made by the call's story (``_call/_story.py``), a generator that yields
the steps needing I/O: wait for a bulkhead slot, wait for the rate limit's turn, send an
attempt, run a hedge race of attempts (``_race.py``), wait before a retry, await an
async fallback.
Each driver is one loop that does the step and sends the result back in - the sync and
async drivers are line-for-line mirrors that differ only in ``await``. Redirects, auth,
cookies and event hooks run above this transport (in the client), so each redirect hop
is a call of its own.

An attempt, for the driver, is: refuse it if the endpoint is isolated (a kill switch,
``_isolation.py``), ask the breaker (I/O when its state is shared; with failover, the
call's breaker across origins, which also picks the attempt's origin), send
through the inner transport with the attempt's timeouts, read the body when the call says
so, and tell the breaker the outcome. Each attempt ends by its limit (its cap or the
deadline, ``_timeout.py``): the async driver guards it with the loop's watchdog; the sync
driver, which has no task to cancel, has the inner transport's connections end every
socket operation by the attempt's end (httpx's ``HTTPTransport``; another inner
transport keeps its own timeouts only).

Hostile servers: a streamed call's small error body, read so the retry decision can see
its problem, is decoded with a bound (``problems/_bounded.py``), so a compressed bomb
cannot inflate in memory. httpcore 1.0.9 can leave a connection that a cancelled request
had been given "in use" forever (a wedged pool); after an attempt that timed out or was
cancelled, the async driver evicts such connections (:func:`_evict_orphans`).

``fork()``: in a child, a driver drops its inner transport's connections (they are its
parent's sockets) and its pool's lock, without closing anything the parent uses.
"""

from __future__ import annotations

import contextlib

# Imported now, not by the first connection's getaddrinfo (which encodes the host with
# the idna codec and imports it lazily): a process forked while one of its threads was
# in that import leaves the child waiting for the module's lock forever (CPython keeps
# per-module import locks across fork). One stdlib module, once.
import encodings.idna  # noqa: F401
import sys
import threading
import time
from types import TracebackType
from typing import Any, ClassVar, Self, Unpack

import httpx

from ._breaker import Rejection
from ._call._call import ERROR_BODY_LIMIT, Call
from ._call._extensions import EXT_STREAM
from ._call._pipeline import EndpointHealth, Pipeline, PipelineOptions
from ._call._story import SEND, AwaitFallback, Discard, Hedge, Park, Wait, story, throw
from ._clock import renew_after_fork
from ._flavor import HTTPX, Flavor
from ._hedging import Lane
from ._race import AsyncRace, SyncRace
from ._timeout import ATTEMPT_END, bound_attempts, guard_attempt, leave
from .chaos._inject import ChaosInjector
from .problems._bounded import decodes_within

__all__ = ["AsyncDriver", "AsyncResilientTransport", "ResilientTransport", "SyncDriver"]


class _Driver:
    """What both drivers share: the inner transport and the pipeline (their one core).

    ``transport`` is the inner transport doing the network I/O (default: the library's
    own ``HTTPTransport``/``AsyncHTTPTransport``). ``base_url``: endpoint paths are
    matched relative to its path (the clients pass theirs). ``pipeline`` shares an
    existing pipeline (the clients wrap each mounted transport so); otherwise the
    pipeline's keywords (``policy``, ``endpoints``, ... see
    :class:`~resilient_client._call._pipeline.PipelineOptions`) build one.
    """

    _flavor: ClassVar[Flavor]

    def __init__(
        self,
        transport: Any = None,
        *,
        base_url: httpx.URL | str = "",
        pipeline: Pipeline | None = None,
        **options: Unpack[PipelineOptions],
    ) -> None:
        self._inner = transport if transport is not None else self._default_inner()
        self._pipeline = pipeline or Pipeline(base_url=base_url, flavor=self._flavor, **options)
        self._clock = self._pipeline.clock
        # The kill switches (_isolation.py): those in force here, tested once per attempt,
        # and the fleet's storage, read per attempt of an endpoint without a breaker.
        isolations = self._pipeline.isolations
        self._isolated = isolations.local
        self._fleet = isolations if isolations.shared is not None else None
        renew_after_fork(self)

    def _after_fork(self) -> None:
        """In a forked child: none of the parent's connections (see the module docstring)."""
        _forget_connections(self._inner)

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    def health(self) -> dict[str, EndpointHealth]:
        """Each endpoint's breaker, budget, bulkhead and throttle state, by endpoint key."""
        return self._pipeline.health()

    def isolate(self, endpoint_key: str, *, reason: str) -> None:
        """Isolate an endpoint until :meth:`restore` (a kill switch); see
        ``ResilientClient.isolate``."""
        self._pipeline.isolate(endpoint_key, reason=reason)

    def restore(self, endpoint_key: str) -> bool:
        """Lift an endpoint's isolation; see ``ResilientClient.restore``."""
        return self._pipeline.restore(endpoint_key)

    def _default_inner(self) -> Any:
        raise NotImplementedError


class SyncDriver(_Driver, SyncRace):
    """The sync driver: everything a sync resilient transport does, for either library."""

    def __init__(self, transport: Any = None, **kwargs: Any) -> None:
        super().__init__(transport, **kwargs)
        self._race_lock = threading.Lock()
        # Whether the inner transport ends socket operations by the attempt's end.
        self._bounded = bound_attempts(self._inner)

    def _default_inner(self) -> Any:
        return self._flavor.default_transport()

    def __enter__(self) -> Self:
        # As httpx does for a transport given to a client: the inner one is entered and
        # exited with it (and closed by its own __exit__).
        self._inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self._end_races()
        self._inner.__exit__(exc_type, exc_value, traceback)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        call = Call(self._pipeline, request)
        flow = story(call)
        step = next(flow, None)
        while step is not None:
            error = None
            try:
                if step is SEND:
                    call.reply = self._attempt(call)
                elif type(step) is Wait:
                    if step.discard is not None:
                        step.discard.close()
                    self._clock.sleep(step.delay)
                elif type(step) is Park:
                    call.reply = self._pipeline.outbox.park(call.request, **step.details)  # type: ignore[union-attr]
                elif type(step) is AwaitFallback:
                    _refuse_async_fallback(step.answer)
                elif type(step) is Hedge:
                    call.reply = self._race(call, step)
                elif type(step) is Discard:
                    step.response.close()
                else:  # Acquire
                    call.reply = call.bulkhead.acquire(step.wait)  # type: ignore[union-attr]
            except BaseException as exc:  # the story decides; cancellation ends its record
                error = exc
            # Thrown in outside the except block, so that what the story raises then is
            # not made the step error's sequel (its __context__) by the driver.
            step = next(flow, None) if error is None else throw(flow, error)
        return call.response

    def _attempt(self, call: Call) -> httpx.Response | Exception:
        """One attempt: its outcome, a response or the exception it raised."""
        try:
            call.time_attempt()
        except Exception as exc:
            return exc
        isolated = self._isolated
        if isolated and (reason := isolated.get(call.endpoint.key)) is not None:
            return call.refused_isolated(reason)
        breaker = call.breaker
        permit = None
        if breaker is not None:
            decision = breaker.admit()
            if isinstance(decision, Rejection):
                return call.refused_by_breaker(decision)
            permit = decision
        elif self._fleet is not None and (reason := self._fleet.read(call.endpoint.key)):
            return call.refused_isolated(reason)
        try:
            response = self._exchange(call, call.start_attempt(), call.limit)
        except BaseException as exc:  # cancellation too: observers must see every end
            try:
                result = call.attempt_ended(exc)
            except BaseException:
                self._give_back(call, permit, exc)
                raise
            if permit is not None:
                breaker.record(permit, *result)  # type: ignore[union-attr]
            if isinstance(exc, Exception):
                return exc
            raise
        try:
            result = call.attempt_ended(response)
        except BaseException:
            self._give_back(call, permit, response)
            raise
        if permit is not None:
            breaker.record(permit, *result)  # type: ignore[union-attr]
        return response

    def _exchange(
        self, call: Call, request: httpx.Request, limit: float | None, lane: Lane | None = None
    ) -> httpx.Response:
        """An attempt's I/O: send ``request``, read what the call reads, within ``limit``
        (:meth:`_attempt`'s, or a hedge race's attempt's on a thread of its own: ``lane``,
        ``_race.py``)."""
        end = None if limit is None or not self._bounded else time.monotonic() + limit
        token = None if end is None else ATTEMPT_END.set(end)
        try:
            if call.chaos is None:
                response: httpx.Response = self._inner.handle_request(request)
            else:
                response = self._send_or_inject(call, call.chaos, request, limit, lane)
            if call.reads_body(response):
                try:
                    if request.extensions.get(EXT_STREAM) is False:
                        response.read()
                    else:
                        _read_error_body(response)
                except BaseException:
                    response.close()
                    raise
        except self._flavor.TimeoutException as exc:
            if end is not None and time.monotonic() >= end:
                raise call.attempt_timed_out(limit) from exc
            raise
        finally:
            if token is not None:
                ATTEMPT_END.reset(token)
        return response

    def _send_or_inject(
        self,
        call: Call,
        chaos: ChaosInjector,
        request: httpx.Request,
        limit: float | None,
        lane: Lane | None = None,
    ) -> httpx.Response:
        """The attempt under ``rc.Chaos``: its latency first, then the inner transport's
        answer or, when chaos picks a fault, the fault's outcome, never sent. A latency
        reaching the attempt's ``limit`` times the attempt out there, as a slow provider
        would be."""
        delay = chaos.pick_latency()
        if delay is not None:
            if limit is not None and delay >= limit:
                self._clock.sleep(limit)
                raise call.attempt_timed_out(limit)
            self._clock.sleep(delay)
        fault = chaos.pick()
        if fault is None:
            return self._inner.handle_request(request)  # type: ignore[no-any-return]
        if lane is None:
            call.inject(fault)
        else:  # told to the call when the race takes this attempt's outcome
            lane.fault = str(fault)
        return chaos.answer(fault, request, self._flavor)  # type: ignore[no-any-return]

    def _after_fork(self) -> None:
        super()._after_fork()
        self._race_pool = None  # the parent's threads: none of them runs here
        self._race_lock = threading.Lock()  # one of them may have held it

    def close(self) -> None:
        self._end_races()
        self._inner.close()


class AsyncDriver(_Driver, AsyncRace):
    """The async driver: :class:`SyncDriver`'s mirror, line for line."""

    def _default_inner(self) -> Any:
        return self._flavor.default_async_transport()

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc_value, traceback)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call = Call(self._pipeline, request)
        flow = story(call)
        step = next(flow, None)
        while step is not None:
            error = None
            try:
                if step is SEND:
                    call.reply = await self._attempt(call)
                elif type(step) is Wait:
                    if step.discard is not None:
                        await step.discard.aclose()
                    await self._clock.asleep(step.delay)
                elif type(step) is Park:
                    call.reply = await self._pipeline.outbox.apark(call.request, **step.details)  # type: ignore[union-attr]
                elif type(step) is AwaitFallback:
                    call.reply = await step.answer
                elif type(step) is Hedge:
                    call.reply = await self._race(call, step)
                elif type(step) is Discard:
                    await step.response.aclose()
                else:  # Acquire
                    call.reply = await call.bulkhead.aacquire(step.wait)  # type: ignore[union-attr]
            except BaseException as exc:  # the story decides; cancellation ends its record
                error = exc
            # Thrown in outside the except block, so that what the story raises then is
            # not made the step error's sequel (its __context__) by the driver.
            step = next(flow, None) if error is None else throw(flow, error)
        return call.response

    async def _attempt(self, call: Call) -> httpx.Response | Exception:
        """One attempt: its outcome, a response or the exception it raised."""
        try:
            call.time_attempt()
        except Exception as exc:
            return exc
        isolated = self._isolated
        if isolated and (reason := isolated.get(call.endpoint.key)) is not None:
            return call.refused_isolated(reason)
        breaker = call.breaker
        permit = None
        if breaker is not None:
            # A breaker without storage does no I/O: skip a coroutine per step.
            decision = breaker.admit() if breaker.local else await breaker.aadmit()
            if isinstance(decision, Rejection):
                return call.refused_by_breaker(decision)
            permit = decision
        elif self._fleet is not None and (reason := await self._fleet.aread(call.endpoint.key)):
            return call.refused_isolated(reason)
        try:
            response = await self._exchange(call, call.start_attempt(), call.limit)
        except BaseException as exc:  # cancellation too: observers must see every end
            try:
                result = call.attempt_ended(exc)
            except BaseException:
                await self._give_back(call, permit, exc)
                raise
            if permit is not None:
                if breaker.local:  # type: ignore[union-attr]
                    breaker.record(permit, *result)  # type: ignore[union-attr]
                else:
                    await breaker.arecord(permit, *result)  # type: ignore[union-attr]
            if not isinstance(exc, Exception) or isinstance(exc, self._flavor.TimeoutException):
                # Cut short: httpcore may have left the pool a connection nobody will free.
                await _evict_orphans(self._inner)
            if isinstance(exc, Exception):
                return exc
            raise
        try:
            result = call.attempt_ended(response)
        except BaseException:
            await self._give_back(call, permit, response)
            raise
        if permit is not None:
            if breaker.local:  # type: ignore[union-attr]
                breaker.record(permit, *result)  # type: ignore[union-attr]
            else:
                await breaker.arecord(permit, *result)  # type: ignore[union-attr]
        return response

    async def _exchange(
        self, call: Call, request: httpx.Request, limit: float | None, lane: Lane | None = None
    ) -> httpx.Response:
        """:meth:`SyncDriver._exchange`, awaited, under a guard of ``limit`` (its task's:
        a race's attempt runs in a task of its own)."""
        guard = None if limit is None else guard_attempt(limit)
        try:
            if call.chaos is None:
                response: httpx.Response = await self._inner.handle_async_request(request)
            else:
                response = await self._send_or_inject(call, call.chaos, request, limit, lane)
            if call.reads_body(response):
                try:
                    if request.extensions.get(EXT_STREAM) is False:
                        await response.aread()
                    else:
                        await _aread_error_body(response)
                except BaseException:
                    await response.aclose()
                    raise
        except BaseException as exc:
            if (guard is not None and leave(guard, exc)) or isinstance(exc, TimeoutError):
                raise call.attempt_timed_out(limit) from exc
            raise
        if guard is not None:
            leave(guard, None)
        return response

    async def _send_or_inject(
        self,
        call: Call,
        chaos: ChaosInjector,
        request: httpx.Request,
        limit: float | None,
        lane: Lane | None = None,
    ) -> httpx.Response:
        """:meth:`SyncDriver._send_or_inject`, awaited (inside the attempt's guard)."""
        delay = chaos.pick_latency()
        if delay is not None:
            if limit is not None and delay >= limit:
                await self._clock.asleep(limit)
                raise call.attempt_timed_out(limit)
            await self._clock.asleep(delay)
        fault = chaos.pick()
        if fault is None:
            return await self._inner.handle_async_request(request)  # type: ignore[no-any-return]
        if lane is None:
            call.inject(fault)
        else:  # told to the call when the race takes this attempt's outcome
            lane.fault = str(fault)
        return chaos.answer(fault, request, self._flavor)  # type: ignore[no-any-return]

    async def _cut_short(self) -> None:
        """An attempt was cut short: httpcore may have left the pool a connection nobody
        will free (:func:`_evict_orphans`)."""
        await _evict_orphans(self._inner)

    async def aclose(self) -> None:
        await self._inner.aclose()


class ResilientTransport(SyncDriver, httpx.BaseTransport):
    """An ``httpx.BaseTransport`` that runs every request through the resilience pipeline.

    ``transport`` is the inner transport that does the network I/O (default
    ``httpx.HTTPTransport()``). ``policy`` is the default :class:`Policy`,
    ``endpoints`` maps endpoint keys to policies merged over it. ``base_url``: endpoint
    paths are matched relative to its path (the clients pass theirs). ``clock`` is
    injected for tests (see ``resilient_client.testing``).
    """

    _flavor = HTTPX


class AsyncResilientTransport(AsyncDriver, httpx.AsyncBaseTransport):
    """The async mirror of :class:`ResilientTransport` (inner: ``httpx.AsyncHTTPTransport()``).

    Each attempt also runs under a guard of its limit (:attr:`Call.limit`), so an
    attempt never outlives its cap or the deadline, whatever the server trickles.
    """

    _flavor = HTTPX


def _refuse_async_fallback(answer: Any) -> None:
    """A sync client's fallback returned an awaitable: nothing here can await it."""
    close = getattr(answer, "close", None)
    if close is not None:
        close()  # a coroutine never awaited would warn at collection instead
    raise TypeError(
        "Policy.fallback returned an awaitable (an async def?) under a sync client; "
        "use a plain function, or the async client"
    )


# --- hostile servers: bounded error bodies -------------------------------------------------


def _stream_class(response: httpx.Response) -> Any:
    """The ``ByteStream`` of the response's own library (httpx or httpx2)."""
    return sys.modules[type(response).__module__.partition(".")[0]].ByteStream


def _read_error_body(response: httpx.Response) -> None:
    """Read a streamed call's small error body (its ``Content-Length`` is within
    :data:`ERROR_BODY_LIMIT`) so the retry decision can see its problem, decoding it only
    if it decodes within that bound too: a compressed bomb stays unread (the caller may
    still read it), its raw bytes kept in memory in place of the network stream."""
    stream: Any = response.stream
    raw = b"".join(stream)
    stream.close()
    response.stream = _stream_class(response)(raw)
    if decodes_within(raw, response.headers.get("content-encoding"), ERROR_BODY_LIMIT):
        response.read()


async def _aread_error_body(response: httpx.Response) -> None:
    """:func:`_read_error_body`, awaited."""
    stream: Any = response.stream
    raw = b"".join([chunk async for chunk in stream])
    await stream.aclose()
    response.stream = _stream_class(response)(raw)
    if decodes_within(raw, response.headers.get("content-encoding"), ERROR_BODY_LIMIT):
        await response.aread()


# --- the inner pool: wedged connections, fork -------------------------------------------


def _pool_of(transport: Any) -> Any:
    """The httpcore (or httpcore2) connection pool of an ``HTTPTransport``, or None."""
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_connections") or not hasattr(pool, "_requests"):
        return None
    return pool


async def _evict_orphans(transport: Any) -> None:
    """Close and drop the pool's connections that no request holds and that will never be
    free again.

    httpcore 1.0.9 assigns a new connection to a queued request; if that request is
    cancelled (or times out) before it starts connecting, the connection stays in the
    pool, neither connected, idle nor closed, for good - and a connection whose request
    was cancelled while it was being released can stay "active" the same way. Either
    counts against ``max_connections`` forever: enough of them and every later request
    waits for a connection until it times out. A connection is an orphan when no request
    in the pool's queue holds it and it is not idle, available or closed.
    """
    pool = _pool_of(transport)
    if pool is None:
        return
    with pool._optional_thread_lock:
        held = {id(request.connection) for request in pool._requests}
        orphans = [
            connection
            for connection in pool._connections
            if id(connection) not in held
            and not (connection.is_idle() or connection.is_available() or connection.is_closed())
        ]
        for connection in orphans:
            pool._connections.remove(connection)
    for connection in orphans:
        with contextlib.suppress(Exception):
            await connection.aclose()


def _forget_connections(transport: Any) -> None:
    """In a forked child: drop the pool's connections and queue, and give it a fresh lock.

    Nothing is closed explicitly: the sockets are shared with the parent, which keeps
    using them; the child's copies of the descriptors are closed when the dropped
    objects are collected (closing a descriptor never ends the parent's connection).
    """
    pool = _pool_of(transport)
    if pool is None:
        return
    pool._connections = []
    pool._requests = []
    lock = getattr(pool, "_optional_thread_lock", None)
    if lock is not None:
        pool._optional_thread_lock = type(lock)()
