"""The resilient transports: two thin drivers, sync and async, over one pipeline core.

One call flows through a fixed order, outermost first::

    deadline → bulkhead / throttle → retry (budget, backoff, Retry-After) → breaker
             → attempt timeout → inner transport

The deadline starts when the transport receives the request; every attempt's
timeouts are clipped to what is left of it. The retry loop is tenacity's, fed by the
decisions in ``_call.Call``; the first attempt runs outside it, so a call that
succeeds at once pays for no loop. Redirects, auth, cookies and event hooks run above
this transport (in the client), so each redirect hop is a call of its own.

The two drivers are line-for-line mirrors: they only send, read, close, sleep and
await, and raise what ``Call`` decides. Keep them that way - any ``if`` that is not
about I/O belongs in ``Call``, bar three that each spare a frame per call: a call with
no throttle skips ``Call.shed``, the breaker's own answer says whether it refused, and
a call nobody observes skips ``Call.ended``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import httpx
import tenacity

from ._breaker import BreakerStorage, Rejection
from ._call._call import Call
from ._call._events import Observer
from ._call._pipeline import EndpointHealth, Pipeline
from ._clock import SYSTEM_CLOCK, Clock
from ._flavor import HTTPX, Flavor
from ._policy import Policy
from ._retry._loop import AsyncReplay, Replay, loop_arguments
from ._timeout import guard_attempt, leave

__all__ = ["AsyncDriver", "AsyncResilientTransport", "ResilientTransport", "SyncDriver"]


class _Driver:
    """What both drivers share: the inner transport and the pipeline (their one core).

    ``transport`` is the inner transport doing the network I/O (default: the library's
    own ``HTTPTransport``/``AsyncHTTPTransport``). ``policy`` is the default
    :class:`Policy`, ``endpoints`` maps endpoint keys to policies merged over it;
    ``base_url``: endpoint paths are matched relative to its path (the clients pass
    theirs). ``breaker_storage`` shares breaker state (``rc.RedisBreakerStorage``);
    ``observers`` receive every pipeline event; ``clock`` is injected for tests.
    ``pipeline`` shares an existing pipeline (the clients wrap each mounted transport so).
    """

    _flavor: ClassVar[Flavor]

    def __init__(
        self,
        transport: Any = None,
        *,
        policy: Policy | None = None,
        endpoints: Mapping[str, Policy] | None = None,
        base_url: httpx.URL | str = "",
        correlation_header: str | None = "X-Correlation-ID",
        raise_for_error: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        observers: Iterable[Observer] = (),
        breaker_storage: BreakerStorage | None = None,
        breaker_listeners: Iterable[Any] = (),
        tracer_provider: Any = None,
        meter_provider: Any = None,
        telemetry: bool = True,
        pipeline: Pipeline | None = None,
    ) -> None:
        self._inner = transport if transport is not None else self._default_inner()
        self._pipeline = pipeline or Pipeline(
            policy,
            endpoints,
            base_url=base_url,
            clock=clock,
            correlation_header=correlation_header,
            raise_for_error=raise_for_error,
            observers=observers,
            breaker_storage=breaker_storage,
            breaker_listeners=breaker_listeners,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            telemetry=telemetry,
            flavor=self._flavor,
        )
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
        try:
            if call.throttle is not None:  # (the frame skipped when there is none)
                call.shed()
            bulkhead = call.bulkhead
            if bulkhead is not None and not bulkhead.acquire(call.bulkhead_wait()):
                raise call.bulkhead_full()
            try:
                # The first attempt runs here, outside any loop: most calls need no other.
                try:
                    outcome: httpx.Response | BaseException = self._attempt(call)
                except Exception as exc:
                    outcome = exc
                response = call.settle(outcome)
                if response is None:  # retried
                    response = call.conclude(self._retry(call, outcome))
            finally:
                if bulkhead is not None:
                    bulkhead.release()
        except Exception as exc:
            response = call.recover(exc)
        except BaseException as exc:  # cancelled: the call's record ends all the same
            call.ended(None, exc)
            raise
        if call.observers:  # (a frame per call spared when nobody listens)
            call.ended(response, None)
        return response

    def _retry(
        self, call: Call, first: httpx.Response | BaseException
    ) -> httpx.Response | BaseException:
        """The retry loop, from the first attempt's outcome to the call's last one."""
        attempts = Replay(first, lambda: self._attempt(call))
        retrying = tenacity.Retrying(
            sleep=self._clock.sleep, before_sleep=_discard, **loop_arguments(call)
        )
        try:
            return retrying(attempts)  # type: ignore[no-any-return]
        except Exception as exc:
            return exc

    def _attempt(self, call: Call) -> httpx.Response:
        call.time_attempt()
        breaker = call.breaker
        permit = None if breaker is None else breaker.admit()
        if isinstance(permit, Rejection):
            raise call.refused(permit)
        try:
            request = call.start_attempt()
            response: httpx.Response = self._inner.handle_request(request)
            if call.reads_body(response):
                try:
                    response.read()
                except BaseException:
                    response.close()
                    raise
        except BaseException as exc:  # cancellation too: observers must see every end
            result = call.attempt_ended(exc)
            if breaker is not None and permit is not None:
                breaker.record(permit, *result)
            raise
        result = call.attempt_ended(response)
        if breaker is not None and permit is not None:
            breaker.record(permit, *result)
        return response

    def close(self) -> None:
        self._inner.close()


def _discard(retry_state: tenacity.RetryCallState) -> None:
    """Before a retry's wait: close the outcome being retried, returning its connection."""
    future = retry_state.outcome
    if future is not None and not future.failed:
        future.result().close()


async def _adiscard(retry_state: tenacity.RetryCallState) -> None:
    future = retry_state.outcome
    if future is not None and not future.failed:
        await future.result().aclose()


class AsyncDriver(_Driver):
    """The async driver: :class:`SyncDriver`'s mirror, line for line."""

    def _default_inner(self) -> Any:
        return self._flavor.default_async_transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call = Call(self._pipeline, request)
        try:
            if call.throttle is not None:  # (the frame skipped when there is none)
                call.shed()
            bulkhead = call.bulkhead
            if bulkhead is not None and not await bulkhead.aacquire(call.bulkhead_wait()):
                raise call.bulkhead_full()
            try:
                # The first attempt runs here, outside any loop: most calls need no other.
                try:
                    outcome: httpx.Response | BaseException = await self._attempt(call)
                except Exception as exc:
                    outcome = exc
                response = call.settle(outcome)
                if response is None:  # retried
                    response = call.conclude(await self._retry(call, outcome))
            finally:
                if bulkhead is not None:
                    bulkhead.release()
        except Exception as exc:
            response = call.recover(exc)
        except BaseException as exc:  # cancelled: the call's record ends all the same
            call.ended(None, exc)
            raise
        if call.observers:  # (a frame per call spared when nobody listens)
            call.ended(response, None)
        return response

    async def _retry(
        self, call: Call, first: httpx.Response | BaseException
    ) -> httpx.Response | BaseException:
        """The retry loop, from the first attempt's outcome to the call's last one."""
        attempts = AsyncReplay(first, lambda: self._attempt(call))
        retrying = tenacity.AsyncRetrying(
            sleep=self._clock.asleep, before_sleep=_adiscard, **loop_arguments(call)
        )
        try:
            return await retrying(attempts)
        except Exception as exc:
            return exc

    async def _attempt(self, call: Call) -> httpx.Response:
        call.time_attempt()
        breaker = call.breaker
        permit = None
        if breaker is not None:
            # A breaker without storage does no I/O: skip a coroutine per step.
            decision = breaker.admit() if breaker.local else await breaker.aadmit()
            if isinstance(decision, Rejection):
                raise call.refused(decision)
            permit = decision
        try:
            request = call.start_attempt()
            limit = call.limit
            guard = None if limit is None else guard_attempt(limit)
            try:
                response: httpx.Response = await self._inner.handle_async_request(request)
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
            if breaker is not None and permit is not None:
                if breaker.local:
                    breaker.record(permit, *result)
                else:
                    await breaker.arecord(permit, *result)
            raise
        result = call.attempt_ended(response)
        if breaker is not None and permit is not None:
            if breaker.local:
                breaker.record(permit, *result)
            else:
                await breaker.arecord(permit, *result)
        return response

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
