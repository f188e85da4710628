"""The metric instruments, created once per observer through the metrics API.

Names and attributes are tabled in the package docstring (``telemetry/__init__.py``).
Attribute values are all bounded: endpoint keys (configured keys plus one per host),
methods (unknown ones are ``_OTHER``), status codes, exception type names, reasons.
"""

from __future__ import annotations

from opentelemetry import metrics
from opentelemetry.util.types import Attributes, AttributeValue

from . import _semconv as sc

__all__ = ["Instruments", "attempt_attributes", "call_attributes", "metrics_enabled"]

try:  # the global provider before an SDK is set; private, hence the fallback
    from opentelemetry.metrics._internal import _ProxyMeterProvider as _Unset
except ImportError:  # pragma: no cover - a future API that moved it: always record
    _Unset = ()  # type: ignore[assignment,misc]


def metrics_enabled(provider: metrics.MeterProvider | None) -> bool:
    """Whether recording through ``provider`` (``None``: the global one) can reach an SDK.

    The API's no-op and its not-yet-configured global proxy drop every measurement;
    checking once per call lets the observer skip building their attributes.
    """
    if provider is None:
        provider = metrics.get_meter_provider()
    return not isinstance(provider, (metrics.NoOpMeterProvider, _Unset))


_NO_PROBE = object()


def attempt_attributes(
    request: dict[str, AttributeValue],
    status: int | None,
    version: str | None,
    error_type: str | None,
) -> dict[str, AttributeValue]:
    """One attempt's ``http.client.request.duration`` attributes: ``request``'s (not
    modified), then the outcome's."""
    attributes = dict(request)
    if status is not None:
        attributes[sc.HTTP_RESPONSE_STATUS_CODE] = status
    if version is not None:
        attributes[sc.NETWORK_PROTOCOL_VERSION] = version
    if error_type is not None:
        attributes[sc.ERROR_TYPE] = error_type
    return attributes


def call_attributes(
    endpoint: str, method: AttributeValue, outcome: str, error_type: str | None
) -> dict[str, AttributeValue]:
    """One call's ``resilient_client.call.duration`` attributes."""
    attributes: dict[str, AttributeValue] = {
        sc.ENDPOINT: endpoint,
        sc.HTTP_REQUEST_METHOD: method,
        sc.OUTCOME: outcome,
    }
    if error_type is not None:
        attributes[sc.ERROR_TYPE] = error_type
    return attributes


# The counters, in the order Instruments unpacks them: name, unit, description.
_COUNTERS = (
    (sc.RETRIES, "{retry}", "Retries scheduled, by reason."),
    (
        sc.RETRY_REFUSALS,
        "{retry}",
        "Retries wanted but refused by the retry budget or the breaker.",
    ),
    (
        sc.REJECTIONS,
        "{call}",
        "Calls refused locally (breaker, bulkhead, throttle) before any attempt.",
    ),
    (
        sc.FAILURES,
        "{attempt}",
        "Failed attempts, by endpoint and problem category (and chaos fault).",
    ),
)


class Instruments:
    """Every instrument the observer records to, from ``provider``'s meter ``scope``."""

    __slots__ = (
        "_enabled",
        "breaker_state",
        "breaker_transitions",
        "call_duration",
        "failures",
        "rejections",
        "request_duration",
        "retries",
        "retry_refusals",
    )

    def __init__(self, scope: str, version: str, provider: metrics.MeterProvider | None) -> None:
        meter = metrics.get_meter(scope, version, provider)
        # An explicit provider is checked once; the global one until an SDK is set, as
        # that may happen after the clients are built.
        self._enabled = None if provider is None else metrics_enabled(provider)
        self.request_duration = meter.create_histogram(
            sc.HTTP_CLIENT_REQUEST_DURATION,
            unit="s",
            description="Duration of HTTP client requests (one per attempt).",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS,
        )
        self.call_duration = meter.create_histogram(
            sc.CALL_DURATION,
            unit="s",
            description="Duration of logical calls: every attempt and the waits between them.",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS,
        )
        counter = meter.create_counter
        self.retries, self.retry_refusals, self.rejections, self.failures = (
            counter(name, unit=unit, description=description)
            for name, unit, description in _COUNTERS
        )
        self.breaker_state = meter.create_gauge(
            sc.BREAKER_STATE_METRIC,
            unit="1",
            description="1 for an endpoint breaker's current state, 0 for its other states.",
        )
        self.breaker_transitions = meter.create_counter(
            sc.BREAKER_TRANSITIONS,
            unit="{transition}",
            description="Breaker state changes, by endpoint and new state.",
        )

    def enabled(self) -> bool:
        """Whether measurements can reach an SDK (asked once per call)."""
        enabled = self._enabled
        if enabled is not None:
            return enabled
        # The global provider: until an SDK is set these instruments are the API's
        # proxies, whose real instrument is None - a cheaper probe than
        # get_meter_provider(), which reads os.environ. Once set, it cannot change again.
        probe = getattr(self.request_duration, "_real_instrument", _NO_PROBE)
        if probe is None:
            return False
        enabled = metrics_enabled(None)
        if enabled:
            self._enabled = True
        return enabled

    def retry(self, endpoint: str, reason: str) -> None:
        self.retries.add(1, {sc.ENDPOINT: endpoint, sc.RETRY_REASON: reason})

    def refusal(self, endpoint: str, refused_by: str) -> None:
        self.retry_refusals.add(1, {sc.ENDPOINT: endpoint, sc.REFUSED_BY: refused_by})

    def rejection(self, endpoint: str, rejected_by: str) -> None:
        self.rejections.add(1, {sc.ENDPOINT: endpoint, sc.REJECTED_BY: rejected_by})

    def failure(self, endpoint: str, category: str, fault: str | None) -> None:
        attributes: dict[str, str] = {sc.ENDPOINT: endpoint, sc.PROBLEM_CATEGORY: category}
        if fault is not None:
            attributes[sc.CHAOS_FAULT] = fault
        self.failures.add(1, attributes)

    def breaker_changed(self, endpoint: str, old: str, new: str) -> None:
        """Record a breaker moving from ``old`` to ``new``."""
        for state in sc.BREAKER_STATES if new in sc.BREAKER_STATES else (*sc.BREAKER_STATES, new):
            attributes: Attributes = {sc.ENDPOINT: endpoint, sc.BREAKER_STATE: state}
            self.breaker_state.set(1 if state == new else 0, attributes)
        self.breaker_transitions.add(
            1,
            {sc.ENDPOINT: endpoint, sc.BREAKER_PREVIOUS_STATE: old, sc.BREAKER_STATE: new},
        )
