"""A tiny OTLP/HTTP collector for tests: a raw ASGI app accepting protobuf exports.

``POST /v1/traces`` and ``POST /v1/metrics`` (``application/x-protobuf``, optionally
gzip- or deflate-encoded) are decoded with ``opentelemetry-proto`` and kept; anything
else answers 404. Serve it with ``resilient_client.chaos.serve`` (see :func:`serve_receiver`)
and read what arrived from the test's thread.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from resilient_client.chaos import serve

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

__all__ = ["OtlpReceiver", "ReceivedSpan", "attributes_of", "serve_receiver"]


def _value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if kind is None:
        return None
    return getattr(value, kind)


def attributes_of(pairs: Any) -> dict[str, object]:
    """OTLP ``KeyValue`` pairs as a plain dict."""
    return {pair.key: _value(pair.value) for pair in cast("list[KeyValue]", pairs)}


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span with its resource's attributes."""

    span: Span
    resource: dict[str, object]

    @property
    def name(self) -> str:
        return str(self.span.name)

    @property
    def attributes(self) -> dict[str, object]:
        return attributes_of(self.span.attributes)


class OtlpReceiver:
    """Keeps every decoded export; all reads and writes under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._metrics: list[Metric] = []
        self.content_types: list[str] = []

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    @property
    def metrics(self) -> list[Metric]:
        with self._lock:
            return list(self._metrics)

    def metric(self, name: str) -> list[Metric]:
        return [metric for metric in self.metrics if metric.name == name]

    def stop_waits(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing to cut short (``chaos.serve`` calls this on exit)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        encoding = headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        path = scope["path"]
        answer: bytes
        if scope["method"] == "POST" and path == "/v1/traces":
            traces = ExportTraceServiceRequest.FromString(body)
            with self._lock:
                self.content_types.append(headers.get("content-type", ""))
                for resource_spans in traces.resource_spans:
                    resource = attributes_of(resource_spans.resource.attributes)
                    for scope_spans in resource_spans.scope_spans:
                        self._spans.extend(ReceivedSpan(s, resource) for s in scope_spans.spans)
            answer = ExportTraceServiceResponse().SerializeToString()
        elif scope["method"] == "POST" and path == "/v1/metrics":
            exported = ExportMetricsServiceRequest.FromString(body)
            with self._lock:
                self.content_types.append(headers.get("content-type", ""))
                for resource_metrics in exported.resource_metrics:
                    for scope_metrics in resource_metrics.scope_metrics:
                        self._metrics.extend(scope_metrics.metrics)
            answer = ExportMetricsServiceResponse().SerializeToString()
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/x-protobuf")],
            }
        )
        await send({"type": "http.response.body", "body": answer})


@contextmanager
def serve_receiver() -> Iterator[tuple[str, OtlpReceiver]]:
    """Serve a new receiver on 127.0.0.1; yields its base URL and the receiver."""
    receiver = OtlpReceiver()
    # chaos.serve runs any ASGI app that has stop_waits(); its annotation says ChaosApp.
    with serve(cast("Any", receiver)) as server:
        yield server.url, receiver
