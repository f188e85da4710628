"""The resilient transports: two thin drivers, sync and async, over one call story.

One call flows through a fixed order, outermost first::

    deadline → bulkhead / throttle → retry (budget, backoff, Retry-After) → breaker
             → attempt timeout → inner transport

Every decision is made by the call's story (``_call/_story.py``), a generator that yields
the steps needing I/O: wait for a bulkhead slot, send an attempt, wait before a retry.
Each driver is one loop that does the step and sends the result back in - the sync and
async drivers are line-for-line mirrors that differ only in ``await``. Redirects, auth,
cookies and event hooks run above this transport (in the client), so each redirect hop
is a call of its own.

An attempt, for the driver, is: ask the breaker (I/O when its state is shared), send
through the inner transport with the attempt's timeouts, read the body when the call says
so, and tell the breaker the outcome. The async driver also guards the attempt with its
limit (``_timeout.py``), so it never outlives its cap or the deadline.
"""

from __future__ import annotations

from typing import Any, ClassVar, Unpack

import httpx

from ._breaker import Rejection
from ._call._call import Call
from ._call._pipeline import EndpointHealth, Pipeline, PipelineOptions
from ._call._story import SEND, Park, Wait, story
from ._flavor import HTTPX, Flavor
from ._timeout import guard_attempt, leave
from .chaos._inject import ChaosInjector

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

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    def health(self) -> dict[str, EndpointHealth]:
        """Each endpoint's breaker, budget, bulkhead and throttle state, by endpoint key."""
        return self._pipeline.health()

    def _default_inner(self) -> Any:
        raise NotImplementedError


class SyncDriver(_Driver):
    """The sync driver: everything a sync resilient transport does, for either library."""

    def _default_inner(self) -> Any:
        return self._flavor.default_transport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        call = Call(self._pipeline, request)
        flow = story(call)
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as end:
                return end.value  # type: ignore[no-any-return]
            error = None
            try:
                if step is SEND:
                    reply = self._attempt(call)
                elif type(step) is Wait:
                    if step.discard is not None:
                        step.discard.close()
                    self._clock.sleep(step.delay)
                    reply = None
                elif type(step) is Park:
                    reply = self._pipeline.outbox.park(call.request, **step.details)  # type: ignore[union-attr]
                else:  # Acquire
                    reply = call.bulkhead.acquire(step.wait)  # type: ignore[union-attr]
            except BaseException as exc:  # the story decides; cancellation ends its record
                error = exc

    def _attempt(self, call: Call) -> httpx.Response | Exception:
        """One attempt: its outcome, a response or the exception it raised."""
        try:
            call.time_attempt()
        except Exception as exc:
            return exc
        breaker = call.breaker
        permit = None if breaker is None else breaker.admit()
        if isinstance(permit, Rejection):
            return call.refused(permit)
        try:
            request = call.start_attempt()
            if call.chaos is None:
                response: httpx.Response = self._inner.handle_request(request)
            else:
                response = self._send_or_inject(call, call.chaos, request)
            if call.reads_body(response):
                try:
                    response.read()
                except BaseException:
                    response.close()
                    raise
        except BaseException as exc:  # cancellation too: observers must see every end
            result = call.attempt_ended(exc)
            if permit is not None:
                breaker.record(permit, *result)  # type: ignore[union-attr]
            if isinstance(exc, Exception):
                return exc
            raise
        result = call.attempt_ended(response)
        if permit is not None:
            breaker.record(permit, *result)  # type: ignore[union-attr]
        return response

    def _send_or_inject(
        self, call: Call, chaos: ChaosInjector, request: httpx.Request
    ) -> httpx.Response:
        """The attempt under ``rc.Chaos``: its latency first, then the inner transport's
        answer or, when chaos picks a fault, the fault's outcome, never sent."""
        delay = chaos.pick_latency()
        if delay is not None:
            self._clock.sleep(delay)
        fault = chaos.pick()
        if fault is None:
            return self._inner.handle_request(request)  # type: ignore[no-any-return]
        call.inject(fault)
        return chaos.answer(fault, request, self._flavor)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._inner.close()


class AsyncDriver(_Driver):
    """The async driver: :class:`SyncDriver`'s mirror, line for line."""

    def _default_inner(self) -> Any:
        return self._flavor.default_async_transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call = Call(self._pipeline, request)
        flow = story(call)
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as end:
                return end.value  # type: ignore[no-any-return]
            error = None
            try:
                if step is SEND:
                    reply = await self._attempt(call)
                elif type(step) is Wait:
                    if step.discard is not None:
                        await step.discard.aclose()
                    await self._clock.asleep(step.delay)
                    reply = None
                elif type(step) is Park:
                    reply = await self._pipeline.outbox.apark(call.request, **step.details)  # type: ignore[union-attr]
                else:  # Acquire
                    reply = await call.bulkhead.aacquire(step.wait)  # type: ignore[union-attr]
            except BaseException as exc:  # the story decides; cancellation ends its record
                error = exc

    async def _attempt(self, call: Call) -> httpx.Response | Exception:
        """One attempt: its outcome, a response or the exception it raised."""
        try:
            call.time_attempt()
        except Exception as exc:
            return exc
        breaker = call.breaker
        permit = None
        if breaker is not None:
            # A breaker without storage does no I/O: skip a coroutine per step.
            decision = breaker.admit() if breaker.local else await breaker.aadmit()
            if isinstance(decision, Rejection):
                return call.refused(decision)
            permit = decision
        try:
            request = call.start_attempt()
            limit = call.limit
            guard = None if limit is None else guard_attempt(limit)
            try:
                if call.chaos is None:
                    response: httpx.Response = await self._inner.handle_async_request(request)
                else:
                    response = await self._send_or_inject(call, call.chaos, request)
                if call.reads_body(response):
                    try:
                        await response.aread()
                    except BaseException:
                        await response.aclose()
                        raise
            except BaseException as exc:
                if (guard is not None and leave(guard, exc)) or isinstance(exc, TimeoutError):
                    raise call.attempt_timed_out() from exc
                raise
            if guard is not None:
                leave(guard, None)
        except BaseException as exc:  # cancellation too: observers must see every end
            result = call.attempt_ended(exc)
            if permit is not None:
                if breaker.local:  # type: ignore[union-attr]
                    breaker.record(permit, *result)  # type: ignore[union-attr]
                else:
                    await breaker.arecord(permit, *result)  # type: ignore[union-attr]
            if isinstance(exc, Exception):
                return exc
            raise
        result = call.attempt_ended(response)
        if permit is not None:
            if breaker.local:  # type: ignore[union-attr]
                breaker.record(permit, *result)  # type: ignore[union-attr]
            else:
                await breaker.arecord(permit, *result)  # type: ignore[union-attr]
        return response

    async def _send_or_inject(
        self, call: Call, chaos: ChaosInjector, request: httpx.Request
    ) -> httpx.Response:
        """:meth:`SyncDriver._send_or_inject`, awaited (inside the attempt's guard)."""
        delay = chaos.pick_latency()
        if delay is not None:
            await self._clock.asleep(delay)
        fault = chaos.pick()
        if fault is None:
            return await self._inner.handle_async_request(request)  # type: ignore[no-any-return]
        call.inject(fault)
        return chaos.answer(fault, request, self._flavor)  # type: ignore[no-any-return]

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
