"""The observer's long-lived part: what it resolves once, and what it keeps across calls.

At construction: the redaction, the headers to record, the request-id headers, the
tracer and the metric instruments from the given or the global providers, the known
methods. Per call: :meth:`ObserverBase.wants_call`, the gate that lets an untraced call
skip the observer, and the bounded caches of :class:`~._observer_state.Route`.

Kept apart from ``_observer.py``, which holds what each event does. A base class of
:class:`~._observer.OpenTelemetryObserver` rather than an object it holds, so the event
handlers read all this as their own attributes, with no extra hop.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any

from opentelemetry import metrics, trace

from .._redact import DEFAULT_REDACTION, Redaction
from ..problems import REQUEST_ID_HEADERS
from . import _semconv as sc
from ._metrics import Instruments
from ._observer_state import Attrs, Route
from ._propagation import current_context

__all__ = ["ObserverBase"]

_SCOPE = "resilient_client"
_ROUTE_CACHE_LIMIT = 4096  # routes; unknown methods and hosts are caller-chosen
_OUTCOME_CACHE_LIMIT = 16384  # metric attribute sets kept, all routes together


class ObserverBase:
    """The configuration, the gate and the route caches of the observer."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        redaction: Redaction | None,
        request_id_headers: Iterable[str],
        recorded_headers: Iterable[str],
    ) -> None:
        self._redaction = redaction if redaction is not None else DEFAULT_REDACTION
        self._recorded = self._redaction.check_recorded_headers(recorded_headers)
        request_ids = tuple(name.lower() for name in request_id_headers)
        # The default tuple itself when equal to it: its rank table is built already.
        self._request_ids = REQUEST_ID_HEADERS if request_ids == REQUEST_ID_HEADERS else request_ids
        version = str(getattr(sys.modules.get("resilient_client"), "__version__", ""))
        self._tracer = trace.get_tracer(_SCOPE, version or None, tracer_provider)
        # Explicit providers, or a global SDK once seen (it can be set only once): every
        # call is observed from then on.
        self._always = tracer_provider is not None or meter_provider is not None
        self._recheck_at = 0.0
        self._instruments = Instruments(_SCOPE, version, meter_provider)
        self._methods = sc.known_methods()
        self._routes: dict[tuple[str, str, str, str, int | None], Route] = {}
        self._outcomes_cached = 0  # entries in the routes' metric attribute caches

    def wants_call(self) -> bool:
        """Whether the next call needs this observer at all (asked once per call).

        Without a tracer or meter SDK and with nothing in the caller's context to
        propagate (no span, no baggage), it would only make no-op spans: the pipeline
        then skips building its events for the call - the untraced fast path.
        """
        if self._always:
            return True
        # get_tracer_provider() reads os.environ: ask it (and the meter provider) at most
        # once a second, so an SDK configured later is picked up within a second.
        now = time.monotonic()
        if now >= self._recheck_at:
            if (
                not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
                or self._instruments.enabled()
            ):
                self._always = True
                return True
            self._recheck_at = now + 1.0
        return bool(current_context())

    def _route(self, method: str, key: str, url: Any) -> Route:
        """The route of a call: its method, endpoint key and origin."""
        cache_key = (method, key, url.scheme, url.host, url.port)
        route = self._routes.get(cache_key)
        if route is None:
            route = Route(self._methods, method, key, url)
            if len(self._routes) < _ROUTE_CACHE_LIMIT:
                self._routes[cache_key] = route
        return route

    def _keep(self, cache: dict[Any, Attrs], outcome_key: Any, metric: Attrs) -> None:
        """Cache a route's metric attribute set, while all routes together hold fewer
        than :data:`_OUTCOME_CACHE_LIMIT`."""
        if self._outcomes_cached < _OUTCOME_CACHE_LIMIT:
            self._outcomes_cached += 1
            cache[outcome_key] = metric
