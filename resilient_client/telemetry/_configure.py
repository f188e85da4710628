"""``configure_telemetry``: the OpenTelemetry SDK for applications - OTLP/HTTP, the console,
or nothing.

Libraries never call this: they use the API, and the application decides where telemetry
goes. It needs the ``otel`` extra (``opentelemetry-sdk``, and for OTLP
``opentelemetry-exporter-otlp-proto-http``), imported only when it is called.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["DEFAULT_EXPORT_TIMEOUT", "Exporter", "TelemetryProviders", "configure_telemetry"]

Exporter = Literal["otlp", "console", "none"]
"""Where :func:`configure_telemetry` sends spans and metrics."""

DEFAULT_EXPORT_TIMEOUT = 2.0
"""Seconds one OTLP export may take, its retries included, when neither
``export_timeout=`` nor an ``OTEL_EXPORTER_OTLP_*TIMEOUT`` variable says otherwise.

The exporter's own default (10 s, retrying with waits of 1, 2, 4 s) is spent once for the
spans and once for the metrics at interpreter exit, so a process whose collector is not
running took 14 s to exit. A collector is normally local (an agent or a sidecar): 2 s is
ample for it, and bounds the exit to a few seconds when it is down."""

_TIMEOUT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
)

_MISSING_SDK = (
    "configure_telemetry needs the OpenTelemetry SDK: pip install 'resilient-client[otel]'"
)
_MISSING_OTLP = (
    "configure_telemetry(exporter='otlp') needs the OTLP exporter: "
    "pip install 'resilient-client[otel]'"
)


@dataclass(frozen=True, slots=True)
class TelemetryProviders:
    """The SDK providers :func:`configure_telemetry` set up."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Export everything pending now; ``timeout`` in seconds for each provider.

        Returns whether both flushed in time.
        """
        millis = int(timeout * 1000)
        traced = self.tracer_provider.force_flush(millis)
        metered = self.meter_provider.force_flush(millis)
        return bool(traced and metered)

    def shutdown(self) -> None:
        """Flush and stop both providers (interpreter exit also does this). Each OTLP
        export is bounded by the export timeout, so this returns within a few seconds
        even when the collector does not answer."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def configure_telemetry(
    service_name: str,
    otlp_endpoint: str | None = None,
    exporter: Exporter = "otlp",
    *,
    headers: Mapping[str, str] | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    export_interval: float | None = None,
    export_timeout: float | None = None,
    set_global: bool = True,
) -> TelemetryProviders:
    """Set up the OpenTelemetry SDK's tracer and meter providers.

    ``exporter`` says where spans and metrics go:

    - ``"otlp"`` (the default): OTLP/HTTP (protobuf) to a collector. ``otlp_endpoint`` is
      its base URL (``http://collector:4318``): spans go to ``{otlp_endpoint}/v1/traces``,
      metrics to ``{otlp_endpoint}/v1/metrics``. ``None`` leaves it to the exporters, which
      read ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the per-signal variables), else
      ``http://localhost:4318``. ``headers`` are sent with every export (``None``:
      ``OTEL_EXPORTER_OTLP_HEADERS``). ``export_timeout``: seconds one export may take,
      retries included (``None``: ``OTEL_EXPORTER_OTLP_TIMEOUT`` and the per-signal
      variables, else :data:`DEFAULT_EXPORT_TIMEOUT`, 2 s); it bounds how long exit waits
      for a collector that is down.
    - ``"console"``: each span printed to standard output as it ends, metrics every
      ``export_interval`` and at exit; for local development.
    - ``"none"``: nothing is recorded or exported, but the providers exist, so code that
      asks for a tracer or a meter works (spans are not sampled, so cost next to nothing).

    ``service_name`` becomes the resource's ``service.name``, merged over what
    ``OTEL_RESOURCE_ATTRIBUTES`` says (``resource_attributes`` too, winning over both).
    ``export_interval``: seconds between metric exports (``None``:
    ``OTEL_METRIC_EXPORT_INTERVAL``, else 60 s). Every other ``OTEL_*`` variable the SDK
    knows (sampler, batch processor, compression, ``OTEL_SDK_DISABLED``) is honoured as the
    SDK honours it.

    ``set_global=True`` installs both as the global providers, which OpenTelemetry allows
    once per process (a second attempt is ignored with a warning by the API); clients
    built with no explicit providers then use them. With ``False``, pass them to the
    clients yourself. OTLP spans are exported by a batch processor; call
    :meth:`TelemetryProviders.shutdown` (or let interpreter exit do it) to flush.

    Raises ``ImportError`` naming the ``otel`` extra when the SDK (or, for ``"otlp"``, the
    exporter) is missing; ``ValueError`` for an empty ``service_name``, an unknown
    ``exporter``, ``otlp_endpoint``/``headers``/``export_timeout`` given with another
    exporter than ``"otlp"``, or a non-positive ``export_interval``/``export_timeout``.
    """
    _check(service_name, otlp_endpoint, exporter, headers, export_interval, export_timeout)
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
    except ImportError as exc:
        raise ImportError(_MISSING_SDK) from exc

    resource = Resource.create({**(resource_attributes or {}), SERVICE_NAME: service_name})
    interval = None if export_interval is None else export_interval * 1000
    if exporter == "none":
        tracer_provider = TracerProvider(resource=resource, sampler=ALWAYS_OFF)
        meter_provider = MeterProvider(resource=resource)
    else:
        tracer_provider = TracerProvider(resource=resource)
        if exporter == "console":
            readers = _console(tracer_provider, interval)
        else:
            readers = _otlp(tracer_provider, otlp_endpoint, headers, export_timeout, interval)
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return TelemetryProviders(tracer_provider, meter_provider)


def _check(
    service_name: str,
    otlp_endpoint: str | None,
    exporter: str,
    headers: Mapping[str, str] | None,
    export_interval: float | None,
    export_timeout: float | None,
) -> None:
    if not service_name:
        raise ValueError("service_name must be a non-empty string")
    if exporter not in get_args(Exporter):
        known = ", ".join(repr(name) for name in get_args(Exporter))
        raise ValueError(f"exporter must be one of {known}, got {exporter!r}")
    if exporter != "otlp":
        given = [
            name
            for name, value in (
                ("otlp_endpoint", otlp_endpoint),
                ("headers", headers),
                ("export_timeout", export_timeout),
            )
            if value is not None
        ]
        if given:
            raise ValueError(f"{', '.join(given)}: only for exporter='otlp', not {exporter!r}")
    for name, value in (("export_interval", export_interval), ("export_timeout", export_timeout)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def _console(tracer_provider: TracerProvider, interval: float | None) -> list[MetricReader]:
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    # sys.stdout as it is now, not as it was when the SDK was imported (its default):
    # an application or a test that redirected it gets the output.
    tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
    reader = PeriodicExportingMetricReader(
        ConsoleMetricExporter(out=sys.stdout), export_interval_millis=interval
    )
    return [reader]


def _otlp(
    tracer_provider: TracerProvider,
    otlp_endpoint: str | None,
    headers: Mapping[str, str] | None,
    export_timeout: float | None,
    interval: float | None,
) -> list[MetricReader]:
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ImportError(_MISSING_OTLP) from exc

    if export_timeout is None and not any(os.environ.get(name) for name in _TIMEOUT_VARIABLES):
        export_timeout = DEFAULT_EXPORT_TIMEOUT
    base = otlp_endpoint.rstrip("/") if otlp_endpoint is not None else None
    span_exporter = OTLPSpanExporter(
        endpoint=None if base is None else f"{base}/v1/traces",
        headers=None if headers is None else dict(headers),
        timeout=export_timeout,
    )
    metric_exporter: MetricExporter = OTLPMetricExporter(
        endpoint=None if base is None else f"{base}/v1/metrics",
        headers=None if headers is None else dict(headers),
        timeout=export_timeout,
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return [PeriodicExportingMetricReader(metric_exporter, export_interval_millis=interval)]
