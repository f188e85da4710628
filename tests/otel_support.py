"""Test support: an OpenTelemetry SDK writing to memory, and queries over what it got."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from resilient_client.telemetry import OpenTelemetryObserver

SCOPE = "resilient_client"


class Otel:
    """An SDK tracer and meter provider writing to memory, and queries over what they got."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def observer(self, **kwargs: Any) -> OpenTelemetryObserver:
        return OpenTelemetryObserver(self.tracer_provider, self.meter_provider, **kwargs)

    def spans(self, scope: str = SCOPE) -> list[ReadableSpan]:
        """The spans of ``scope`` (the SDK's by default), in the order they ended."""
        return [
            s
            for s in self.exporter.get_finished_spans()
            if s.instrumentation_scope is not None and s.instrumentation_scope.name == scope
        ]

    def call_span(self) -> ReadableSpan:
        (span,) = [s for s in self.spans() if s.kind is SpanKind.INTERNAL]
        return span

    def attempt_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.kind is SpanKind.CLIENT]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def attrs(item: Any) -> dict[str, Any]:
    """A span's, event's or data point's attributes (the SDK types them as optional)."""
    return dict(item.attributes or {})


def traceparent(span: ReadableSpan) -> str:
    """The ``traceparent`` header value that carries ``span``'s context."""
    ctx = span.get_span_context()
    assert ctx is not None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
