"""The pipeline: configuration and per-endpoint state for one transport (or client).

:class:`Pipeline` is what each :class:`~resilient_client._call._call.Call` - the per-call core
both drivers share - resolves its endpoint and policy against. It owns what outlives
calls: the endpoint table, breakers, observers and the failure log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from .._breaker import BreakerRegistry, BreakerSnapshot, BreakerStorage, EndpointBreaker
from .._budget import RetryBudgetSnapshot
from .._bulkhead import BulkheadSnapshot
from .._clock import SYSTEM_CLOCK, Clock
from .._flavor import HTTPX, Flavor
from .._headers import is_header_name
from .._logging import FailureLog
from .._policy import Policy, merge
from .._throttle import ThrottleSnapshot
from ._endpoints import Endpoint, EndpointTable
from ._events import BreakerStateChanged, Observer
from ._extensions import EXT_POLICY

if TYPE_CHECKING:
    from ..telemetry import OpenTelemetryObserver

__all__ = ["EndpointHealth", "Pipeline"]


# Per-call overrides remembered per pipeline, merged over their endpoint's policy.
_MERGE_CACHE_LIMIT = 256


class Pipeline:
    """Configuration and per-endpoint state for one transport (or one client's transports)."""

    def __init__(
        self,
        policy: Policy | None = None,
        endpoints: Mapping[str, Policy] | None = None,
        *,
        base_url: httpx.URL | str = "",
        clock: Clock = SYSTEM_CLOCK,
        correlation_header: str | None = "X-Correlation-ID",
        raise_for_error: bool = False,
        observers: Iterable[Observer] = (),
        breaker_storage: BreakerStorage | None = None,
        breaker_listeners: Iterable[Any] = (),
        tracer_provider: Any = None,
        meter_provider: Any = None,
        telemetry: bool = True,
        flavor: Flavor = HTTPX,
    ) -> None:
        if policy is not None and not isinstance(policy, Policy):
            raise TypeError(
                f"policy must be a resilient_client.Policy, not {type(policy).__name__}"
            )
        self.default = policy if policy is not None else Policy()
        self.flavor = flavor
        self.clock = clock
        self.correlation_header = correlation_header
        if correlation_header is not None and not is_header_name(correlation_header):
            raise ValueError(
                f"correlation_header must be a header name (RFC 9110 token), "
                f"got {correlation_header!r}"
            )
        # The header's name as it goes on the wire, and lower-cased as httpx matches it.
        self.correlation_raw = (correlation_header or "").encode("ascii")
        self.correlation_key = self.correlation_raw.lower()
        self.raise_for_error = raise_for_error
        self.telemetry: OpenTelemetryObserver | None = None
        observers = tuple(observers)
        if telemetry or observers:
            from ..telemetry import OpenTelemetryObserver

            traced = [o for o in observers if isinstance(o, OpenTelemetryObserver)]
            if len(traced) > 1:
                # They would share each call's span and context slot, and detach each
                # other's contexts out of order. One SDK provider exports to many backends.
                raise ValueError("observers= may hold one OpenTelemetryObserver, not several")
            if traced:  # the caller's choice of what to record replaces the client's own
                self.telemetry = traced[0]
            elif telemetry:
                # Through the OpenTelemetry API: providers set globally later are picked
                # up, and with none (and nothing to propagate) a call skips its events.
                self.telemetry = OpenTelemetryObserver(tracer_provider, meter_provider)
        self.extra_observers = tuple(o for o in observers if o is not self.telemetry)
        self.observers = self.extra_observers
        if self.telemetry is not None:
            self.observers = (self.telemetry, *self.extra_observers)
        self.failures = FailureLog(clock)
        self.breakers = BreakerRegistry(
            breaker_storage, clock, listeners=[_BreakerEvents(self), *breaker_listeners]
        )
        self._merges: dict[tuple[int, int], tuple[Policy, Policy, Policy]] = {}
        base_path = str(flavor.URL(base_url).path).rstrip("/")
        self.endpoints = EndpointTable(
            self.default, endpoints, base_path=base_path, clock=clock, breakers=self.breakers
        )

    def overridden(self, policy: Policy, override: object) -> Policy:
        """A per-call ``override`` merged over an endpoint's ``policy``, remembered: an
        override is usually one constant Policy reused on every call, and merging
        validates anew. ``TypeError`` if ``override`` is not a :class:`Policy`."""
        if not isinstance(override, Policy):
            raise TypeError(
                f'extensions["{EXT_POLICY}"] must be a resilient_client.Policy, '
                f"not {type(override).__name__}"
            )
        cache_key = (id(policy), id(override))
        entry = self._merges.get(cache_key)
        # The entry keeps both objects alive, so no other object can have their ids.
        if entry is not None:
            return entry[2]
        merged = merge(policy, override)
        if len(self._merges) >= _MERGE_CACHE_LIMIT:
            self._merges.clear()  # overrides built per call: bounded, not remembered
        self._merges[cache_key] = (policy, override, merged)
        return merged

    def endpoint_for(self, request: httpx.Request) -> Endpoint:
        return self.endpoints.match(request)

    def health(self) -> dict[str, EndpointHealth]:
        """Every endpoint seen so far, by key: its breaker, budget, bulkhead and throttle."""
        return {
            endpoint.key: EndpointHealth(
                endpoint=endpoint.key,
                breaker=None if endpoint.breaker is None else endpoint.breaker.snapshot(),
                budget=None if endpoint.budget is None else endpoint.budget.snapshot(),
                bulkhead=None if endpoint.bulkhead is None else endpoint.bulkhead.snapshot(),
                throttle=None if endpoint.throttle is None else endpoint.throttle.snapshot(),
            )
            for endpoint in self.endpoints.all()
        }


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """One endpoint's state (``client.health()``); ``None`` where the strategy is off."""

    endpoint: str
    breaker: BreakerSnapshot | None
    budget: RetryBudgetSnapshot | None
    bulkhead: BulkheadSnapshot | None
    throttle: ThrottleSnapshot | None


class _BreakerEvents:
    """Turns breaker state changes into :class:`BreakerStateChanged` events."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def state_change(self, breaker: EndpointBreaker, old: str, new: str) -> None:
        if self._pipeline.observers:
            event = BreakerStateChanged(breaker.endpoint, old, new)
            for observer in self._pipeline.observers:
                observer.on_event(None, event)
