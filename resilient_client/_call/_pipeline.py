"""The pipeline: configuration and per-endpoint state for one transport (or client).

:class:`Pipeline` is what each :class:`~resilient_client._call._call.Call` - the per-call core
both drivers share - resolves its endpoint and policy against. It owns what outlives
calls: the endpoint table, breakers, observers and the failure log.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import httpx

from .._breaker import BreakerRegistry, BreakerSnapshot, BreakerStorage, EndpointBreaker
from .._budget import RetryBudgetSnapshot
from .._bulkhead import BulkheadSnapshot
from .._clock import Clock, default_clock
from .._failover import Failover, FailoverState
from .._flavor import HTTPX, Flavor
from .._headers import is_header_name
from .._isolation import IsolationTable, check_reason, endpoint_key
from .._logging import FailureLog
from .._policy import Policy, merge
from .._throttle import ThrottleSnapshot
from ._endpoints import Endpoint, EndpointTable
from ._events import BreakerStateChanged, Observer, listeners_by_event
from ._extensions import EXT_POLICY

if TYPE_CHECKING:
    from ..outbox import Outbox
    from ..telemetry import OpenTelemetryObserver

__all__ = [
    "PIPELINE_KEYWORDS",
    "BreakerTable",
    "EndpointHealth",
    "HealthTable",
    "Pipeline",
    "PipelineOptions",
]


# Per-call overrides remembered per pipeline, merged over their endpoint's policy.
_MERGE_CACHE_LIMIT = 256
# Provider names remembered per pipeline, by host and port.
_PROVIDER_CACHE_LIMIT = 1024


# The strategies whose state, and so parameters, are the endpoint's (Call takes them from
# the endpoint): a per-call policy can switch each off, and change nothing else of them.
_ENDPOINT_STATE = ("breaker", "budget", "bulkhead", "throttle", "chaos", "rate_limit", "hedging")


class PipelineOptions(TypedDict, total=False):
    """The keywords of a pipeline, as the clients and transports take them (declared here
    only: they forward them as they are). Defaults in brackets.

    - ``policy``: the default :class:`Policy` for every request [``Policy()``].
    - ``endpoints``: endpoint key -> :class:`Policy`, merged over ``policy`` [none].
    - ``raise_for_error``: raise ``ApiError`` for every final 4xx/5xx [False].
    - ``correlation_header``: the header carrying the correlation id; ``None`` keeps it
      off the wire (logs and spans keep one) [``"X-Correlation-ID"``].
    - ``breaker_storage``: share breaker state, e.g. ``rc.RedisBreakerStorage`` [in-process].
    - ``breaker_listeners``: ``pybreaker``-style listeners of breaker transitions [none].
    - ``tracer_provider`` / ``meter_provider``: OpenTelemetry providers [the global ones].
    - ``telemetry``: emit spans and metrics [True].
    - ``clock``: time, sleeping and randomness, for tests [the default clock].
    - ``observers``: receive every pipeline event (``resilient_client.typing.Observer``).
    - ``outbox``: where writes of ``Policy(outbox=True)`` endpoints are parked [none].
    - ``incidents``: an ``rc.IncidentMonitor`` watching this client's calls [none].
    - ``failover``: an ``rc.Failover``: other origins for the calls to ``base_url``'s
      origin, the primary (``base_url`` is then required) [none].
    """

    policy: Policy | None
    endpoints: Mapping[str, Policy] | None
    raise_for_error: bool
    correlation_header: str | None
    breaker_storage: BreakerStorage | None
    breaker_listeners: Iterable[Any]
    tracer_provider: Any
    meter_provider: Any
    telemetry: bool
    clock: Clock | None
    observers: Iterable[Observer]
    outbox: Outbox | None
    incidents: Observer | None
    failover: Failover | None


PIPELINE_KEYWORDS = frozenset(PipelineOptions.__annotations__)


class Pipeline:
    """Configuration and per-endpoint state for one transport (or one client's transports)."""

    def __init__(
        self,
        *,
        base_url: httpx.URL | str = "",
        flavor: Flavor = HTTPX,
        **options: Unpack[PipelineOptions],
    ) -> None:
        unknown = sorted(options.keys() - PIPELINE_KEYWORDS)
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
        policy = options.get("policy")
        endpoints = options.get("endpoints")
        correlation_header = options.get("correlation_header", "X-Correlation-ID")
        telemetry = options.get("telemetry", True)
        clock = options.get("clock")
        incidents = options.get("incidents")
        if policy is not None and not isinstance(policy, Policy):
            raise TypeError(
                f"policy must be a resilient_client.Policy, not {type(policy).__name__}"
            )
        self.default = policy if policy is not None else Policy()
        self.flavor = flavor
        # None: the default clock, read now - a test kit's clock if one is in force.
        self.clock = clock = clock if clock is not None else default_clock()
        self.outbox = options.get("outbox")
        self.correlation_header = correlation_header
        if correlation_header is not None and not is_header_name(correlation_header):
            raise ValueError(
                f"correlation_header must be a header name (RFC 9110 token), "
                f"got {correlation_header!r}"
            )
        # The header's name as it goes on the wire, and lower-cased as httpx matches it.
        self.correlation_raw = (correlation_header or "").encode("ascii")
        self.correlation_key = self.correlation_raw.lower()
        self.raise_for_error = options.get("raise_for_error", False)
        self.telemetry: OpenTelemetryObserver | None = None
        observers = tuple(options.get("observers", ()))
        if incidents is not None and incidents not in observers:
            observers = (*observers, incidents)  # an incident monitor is an observer
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
                self.telemetry = OpenTelemetryObserver(
                    options.get("tracer_provider"), options.get("meter_provider")
                )
        self.extra_observers = tuple(o for o in observers if o is not self.telemetry)
        self.observers = self.extra_observers
        if self.telemetry is not None:
            self.observers = (self.telemetry, *self.extra_observers)
        # Who hears each event type: an observer with an ``events`` set hears only those
        # (events nobody hears are never built); the second map is for the calls that
        # telemetry skips (no SDK, nothing to propagate).
        self.listeners = listeners_by_event(self.observers)
        self.extra_listeners = listeners_by_event(self.extra_observers)
        self.failures = FailureLog(clock)
        self.breakers = BreakerRegistry(
            options.get("breaker_storage"),
            clock,
            listeners=[_BreakerEvents(self), *options.get("breaker_listeners", ())],
        )
        failover = options.get("failover")
        self.failover = (
            None if failover is None else FailoverState(failover, base_url, self.breakers)
        )
        self.isolations = IsolationTable(options.get("breaker_storage"))
        self._merges: dict[tuple[int, int], tuple[Policy, Policy, Policy]] = {}
        self._providers: dict[tuple[bytes, int | None], str] = {}
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
        ignored = [
            name
            for name in _ENDPOINT_STATE
            if getattr(merged, name) is not None and getattr(merged, name) != getattr(policy, name)
        ]
        if ignored:
            # Said once per override (merges are remembered), not on every call.
            warnings.warn(
                f'extensions["{EXT_POLICY}"] changes {", ".join(ignored)}, which keep their '
                f"state per endpoint: a per-call policy can only switch them off (None); "
                f"the endpoint's own apply",
                UserWarning,
                stacklevel=2,
            )
        if len(self._merges) >= _MERGE_CACHE_LIMIT:
            self._merges.clear()  # overrides built per call: bounded, not remembered
        self._merges[cache_key] = (policy, override, merged)
        return merged

    def provider_of(self, url: httpx.URL) -> str:
        """``url``'s provider, ``"host"`` or ``"host:port"``, made once per host and port
        (reading a URL's host decodes it: too dear to do on every observed call)."""
        where = (url.raw_host, url.port)
        name = self._providers.get(where)
        if name is None:
            if len(self._providers) >= _PROVIDER_CACHE_LIMIT:
                self._providers.clear()
            host = url.host
            name = self._providers[where] = host if url.port is None else f"{host}:{url.port}"
        return name

    def endpoint_for(self, request: httpx.Request) -> Endpoint:
        return self.endpoints.match(request)

    # -- kill switches (``_isolation.py``) -------------------------------------------------

    def isolate(self, endpoint_key: str, *, reason: str) -> None:
        """Isolate an endpoint until :meth:`restore`; see ``ClientMixin.isolate``."""
        key = self._known_key(endpoint_key)
        text = check_reason(reason)
        self.isolations.isolate(key, text, self._breaker_of(key))

    def restore(self, endpoint_key: str) -> bool:
        """Lift an endpoint's isolation; see ``ClientMixin.restore``."""
        key = self._known_key(endpoint_key)
        return self.isolations.restore(key, self._breaker_of(key))

    def _known_key(self, text: str) -> str:
        return endpoint_key(text, (endpoint.key for endpoint in self.endpoints.all()))

    def _breaker_of(self, key: str) -> EndpointBreaker | None:
        for endpoint in self.endpoints.all():
            if endpoint.key == key:
                return endpoint.breaker
        return None

    def breaker_table(self) -> BreakerTable:
        """Every endpoint's breaker snapshot, by key (with its isolation, if any)."""
        table = BreakerTable()
        for snapshot in self.breakers.snapshots():
            isolated = self.isolations.reason_for(snapshot.endpoint, None)
            if isolated is not None and snapshot.isolated is None:
                snapshot = replace(snapshot, isolated=isolated)
            table[snapshot.endpoint] = snapshot
        return table

    def health(self) -> HealthTable:
        """Every endpoint seen so far, by key: its breaker, budget, bulkhead and throttle."""
        return HealthTable(
            {
                endpoint.key: EndpointHealth(
                    endpoint=endpoint.key,
                    breaker=None if endpoint.breaker is None else endpoint.breaker.snapshot(),
                    budget=None if endpoint.budget is None else endpoint.budget.snapshot(),
                    bulkhead=None if endpoint.bulkhead is None else endpoint.bulkhead.snapshot(),
                    throttle=None if endpoint.throttle is None else endpoint.throttle.snapshot(),
                    isolated=self.isolations.reason_for(endpoint.key, endpoint.breaker),
                )
                for endpoint in self.endpoints.all()
            }
        )


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """One endpoint's state (``client.health()``); ``None`` where the strategy is off.
    ``isolated``: the operator's reason while the endpoint is isolated (``isolate()``),
    as this process knows it; ``None`` if it is not."""

    endpoint: str
    breaker: BreakerSnapshot | None
    budget: RetryBudgetSnapshot | None
    bulkhead: BulkheadSnapshot | None
    throttle: ThrottleSnapshot | None
    isolated: str | None = None

    def cells(self) -> tuple[str, str, str, str, str]:
        """The endpoint's row of :class:`HealthTable`: one readable cell per strategy."""
        breaker = "off"
        if self.breaker is not None:
            text = str(replace(self.breaker, isolated=None))
            breaker = text.split(": ", 1)[1] if text.startswith(self.endpoint + ": ") else text
        if self.isolated is not None:
            breaker = f"isolated: {self.isolated} (breaker {breaker})"
        budget = "off"
        if self.budget is not None:
            b = self.budget
            budget = f"{b.retries} retries / {b.calls} calls, {b.available} available"
            if b.refusing:
                budget += f", refusing ({b.refused} refused)"
        bulkhead = "off"
        if self.bulkhead is not None:
            h = self.bulkhead
            bulkhead = f"{h.in_flight}/{h.max_concurrent} in flight, {h.waiting} waiting"
        throttle = "off"
        if self.throttle is not None:
            t = self.throttle
            throttle = f"rejecting {t.probability:.0%} ({t.rejected} in the window)"
        return self.endpoint, breaker, budget, bulkhead, throttle

    def __str__(self) -> str:
        _, breaker, budget, bulkhead, throttle = self.cells()
        return (
            f"{self.endpoint}: breaker {breaker}; budget {budget}; "
            f"bulkhead {bulkhead}; throttle {throttle}"
        )


_HEADINGS = ("endpoint", "breaker", "budget", "bulkhead", "throttle")


class HealthTable(dict[str, EndpointHealth]):
    """``client.health()``: endpoint key -> :class:`EndpointHealth`, printed as a table."""

    def __str__(self) -> str:
        return _table(_HEADINGS, [health.cells() for health in self.values()])


class BreakerTable(dict[str, BreakerSnapshot]):
    """``client.breakers()``: endpoint key -> breaker snapshot, one line each when printed
    (times as durations: "next probe in 12.0 s")."""

    def __str__(self) -> str:
        return "\n".join(str(snapshot) for snapshot in self.values()) or "(no breakers yet)"


def _table(headings: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Rows under headings, each column as wide as its widest cell (plain text: it is
    also logged and pasted into tickets)."""
    if not rows:
        return "(no endpoints yet)"
    widths = [max(len(cell) for cell in column) for column in zip(headings, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in (headings, *rows)]  # fmt: skip
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


class _BreakerEvents:
    """Turns breaker state changes into :class:`BreakerStateChanged` events."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def state_change(self, breaker: EndpointBreaker, old: str, new: str) -> None:
        if self._pipeline.observers:
            event = BreakerStateChanged(breaker.endpoint, old, new)
            for observer in self._pipeline.listeners[BreakerStateChanged]:
                observer.on_event(None, event)
