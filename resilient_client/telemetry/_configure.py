"""``configure_telemetry``: the OpenTelemetry SDK with OTLP/HTTP exporters, for applications.

Libraries never call this: they use the API, and the application decides where telemetry
goes. It needs the ``otel`` extra (``opentelemetry-sdk``,
``opentelemetry-exporter-otlp-proto-http``), imported only when it is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["TelemetryProviders", "configure_telemetry"]

_MISSING_EXTRA = (
    "configure_telemetry needs the OpenTelemetry SDK and OTLP exporter: "
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
        """Flush and stop both providers (the SDK also does this at interpreter exit)."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def configure_telemetry(
    service_name: str,
    otlp_endpoint: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    export_interval: float | None = None,
    set_global: bool = True,
) -> TelemetryProviders:
    """Set up the OpenTelemetry SDK to export traces and metrics over OTLP/HTTP (protobuf).

    ``service_name`` becomes the resource's ``service.name``, merged over what
    ``OTEL_RESOURCE_ATTRIBUTES`` says (``resource_attributes`` too, winning over both).
    ``otlp_endpoint`` is the collector's base URL (``http://collector:4318``): spans go to
    ``{otlp_endpoint}/v1/traces``, metrics to ``{otlp_endpoint}/v1/metrics``. ``None``
    leaves it to the exporters, which read ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the
    per-signal variables), else ``http://localhost:4318``. ``headers`` are sent with every
    export (``None``: ``OTEL_EXPORTER_OTLP_HEADERS``). ``export_interval``: seconds
    between metric exports (``None``: ``OTEL_METRIC_EXPORT_INTERVAL``, else 60 s).
    Every other ``OTEL_*`` variable the SDK knows (sampler, batch processor, timeouts,
    compression, ``OTEL_SDK_DISABLED``) is honoured as the SDK honours it.

    ``set_global=True`` installs both as the global providers, which OpenTelemetry allows
    once per process (a second attempt is ignored with a warning by the API); clients
    built with no explicit providers then use them. With ``False``, pass them to the
    clients yourself. Spans are exported by a batch processor; call
    :meth:`TelemetryProviders.shutdown` (or let interpreter exit do it) to flush.

    Raises ``ImportError`` naming the ``otel`` extra when the SDK or exporter is missing,
    ``ValueError`` for an empty ``service_name`` or a non-positive ``export_interval``.
    """
    if not service_name:
        raise ValueError("service_name must be a non-empty string")
    if export_interval is not None and not export_interval > 0:
        raise ValueError(
            f"export_interval must be a positive number of seconds, got {export_interval!r}"
        )
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ImportError(_MISSING_EXTRA) from exc

    resource = Resource.create({**(resource_attributes or {}), SERVICE_NAME: service_name})
    base = otlp_endpoint.rstrip("/") if otlp_endpoint is not None else None
    span_exporter = OTLPSpanExporter(
        endpoint=None if base is None else f"{base}/v1/traces",
        headers=None if headers is None else dict(headers),
    )
    metric_exporter = OTLPMetricExporter(
        endpoint=None if base is None else f"{base}/v1/metrics",
        headers=None if headers is None else dict(headers),
    )
    reader = PeriodicExportingMetricReader(
        metric_exporter,
        export_interval_millis=None if export_interval is None else export_interval * 1000,
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return TelemetryProviders(tracer_provider, meter_provider)
