"""What telemetry costs per call, as ratios measured in one process over ``httpx.MockTransport``.

Variants, run in alternating rounds so drift on a noisy machine hits all alike (the median
round of each is reported):

- ``raw``: ``httpx.Client`` / ``httpx.AsyncClient``;
- ``pipeline``: the resilient client, no observer;
- ``untraced``: the resilient client with an ``OpenTelemetryObserver`` and no SDK configured
  (the API's global proxies, as in a library user's process that never set one up);
- ``traced``: the same observer on an SDK ``TracerProvider`` with a ``BatchSpanProcessor``
  (to an exporter that drops) and an SDK ``MeterProvider``;
- ``contrib``: raw httpx traced by ``opentelemetry-instrumentation-httpx``
  (``SyncOpenTelemetryTransport`` / ``AsyncOpenTelemetryTransport`` around the mock
  transport, since the instrumentor skips mock transports) on the same providers.

Times are CPU seconds of the whole process (``time.process_time``: every thread, the batch
processor's included), which a busy neighbour on a shared 2-core machine disturbs far less
than wall time; with no I/O in the workload they equal wall time on an idle machine.

Targets: untraced <= 1.25x raw; traced <= 1.0x contrib.
Run: ``python benchmarks/telemetry.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import (
    AsyncOpenTelemetryTransport,
    SyncOpenTelemetryTransport,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import resilient_client as rc

URL = "/v1/users/7"
BASE = "http://api.test"


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b'{"ok": true}', request=request)


def _providers() -> tuple[TracerProvider, MeterProvider]:
    tracer_provider = TracerProvider()
    # A queue no round can fill: a full queue drops spans with a warning logged per span,
    # which would measure the logging, not the tracing.
    tracer_provider.add_span_processor(BatchSpanProcessor(_Drop(), max_queue_size=1 << 16))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return tracer_provider, meter_provider


def _clients(is_async: bool) -> dict[str, Any]:
    tracer_provider, meter_provider = _providers()
    mock = httpx.MockTransport(_ok)
    endpoints = {"GET /v1/users/{id}": rc.Policy()}
    plain: Any
    ours: Any
    if is_async:
        contrib_transport: Any = AsyncOpenTelemetryTransport(
            mock, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        plain, ours = httpx.AsyncClient, rc.AsyncResilientClient
    else:
        contrib_transport = SyncOpenTelemetryTransport(
            mock, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        plain, ours = httpx.Client, rc.ResilientClient
    return {
        "raw": plain(base_url=BASE, transport=mock),
        # The pipeline with its telemetry switched off entirely.
        "pipeline": ours(base_url=BASE, transport=mock, endpoints=endpoints, telemetry=False),
        # The default: telemetry on, through the global providers - no SDK configured.
        "untraced": ours(base_url=BASE, transport=mock, endpoints=endpoints),
        # An SDK given to the client.
        "traced": ours(
            base_url=BASE,
            transport=mock,
            endpoints=endpoints,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        ),
        "contrib": plain(base_url=BASE, transport=contrib_transport),
    }


def _sync_round(client: httpx.Client, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        client.get(URL)
    return (time.process_time() - start) / n


def _async_round(loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, n: int) -> float:
    async def run() -> float:
        start = time.process_time()
        for _ in range(n):
            await client.get(URL)
        return (time.process_time() - start) / n

    return loop.run_until_complete(run())


def _measure(runs: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up: imports, caches, first spans
        run()
    for _ in range(rounds):
        for name, run in runs.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}


def _report(title: str, medians: dict[str, float]) -> dict[str, float]:
    print(f"\n{title}")
    for name, value in medians.items():
        print(f"  {name:<9} {value * 1e6:8.1f} us/call")
    ratios = {
        "untraced / raw": medians["untraced"] / medians["raw"],
        "pipeline / raw": medians["pipeline"] / medians["raw"],
        "traced / contrib": medians["traced"] / medians["contrib"],
        "traced / raw": medians["traced"] / medians["raw"],
    }
    for name, ratio in ratios.items():
        print(f"  {name:<17} {ratio:6.3f}")
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args(argv)
    n, rounds = (300, 3) if args.quick else (2000, 9)

    clients = _clients(is_async=False)
    sync = _measure({name: partial(_sync_round, c, n) for name, c in clients.items()}, rounds)
    for client in clients.values():
        client.close()
    results = {"sync": _report(f"sync, {rounds} rounds of {n} calls", sync)}

    loop = asyncio.new_event_loop()
    try:
        aclients = _clients(is_async=True)
        runs = {name: partial(_async_round, loop, c, n) for name, c in aclients.items()}
        results["async"] = _report(f"async, {rounds} rounds of {n} calls", _measure(runs, rounds))
        for client in aclients.values():
            loop.run_until_complete(client.aclose())
    finally:
        loop.close()

    print()
    for mode, ratios in results.items():
        untraced, traced = ratios["untraced / raw"], ratios["traced / contrib"]
        print(
            f"{mode:<5} untraced/raw {untraced:.3f} (target <= 1.25)   "
            f"traced/contrib {traced:.3f} (target <= 1.00)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
