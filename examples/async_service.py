"""An async service: concurrent calls, incidents with alerts, OpenTelemetry export.

Run it with ``python examples/async_service.py`` (needs the ``otel`` extra). It serves
the chaos upstream on 127.0.0.1 and, from one ``rc.AsyncResilientClient``:

- sends bursts of concurrent calls with ``asyncio.gather``;
- watches them with an ``rc.IncidentMonitor``: when the provider's ``/status`` endpoint
  fails, an incident opens and an alert goes to ``rc.LogSink`` (a log record; PagerDuty,
  Slack and webhooks are sinks too); when it answers again, the incident resolves;
- exports a span per call and per attempt, and the SDK's metrics, through the
  OpenTelemetry SDK (``rc.configure_telemetry``; ``exporter="console"`` prints them as
  JSON to standard output, ``"otlp"`` sends them to a collector).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import resilient_client as rc
from resilient_client.chaos import RunningServer, serve


async def burst(client: rc.AsyncResilientClient, path: str, calls: int) -> list[int | str]:
    async def one() -> int | str:
        try:
            response = await client.get(path)
        except rc.CircuitOpenError:
            return "breaker open"
        return response.status_code

    return list(await asyncio.gather(*(one() for _ in range(calls))))


async def run(upstream: RunningServer) -> rc.Incident | None:
    monitor = rc.IncidentMonitor(
        # Short windows so that the example takes seconds; production uses minutes.
        rules=rc.HealthRules(window=1.0, min_calls=4, recover_after=0.5),
        sinks=[rc.LogSink()],
    )
    policy = rc.Policy(
        retry=rc.Retry(max_attempts=2, backoff=rc.Backoff(initial=0.01)),
        breaker=rc.Breaker(failure_threshold=5, reset_timeout=0.5),
    )
    async with rc.AsyncResilientClient(
        base_url=upstream.url, policy=policy, incidents=monitor
    ) as client:
        print("healthy:", await burst(client, "/outage/orders", 4), file=sys.stderr)
        upstream.app.set_failure_plan("orders", rate=1.0)  # the provider starts failing
        print("provider down:", await burst(client, "/outage/orders", 8), file=sys.stderr)
        await asyncio.to_thread(monitor.flush)
        upstream.app.set_failure_plan("orders", rate=0.0)  # and answers again
        for _ in range(20):  # calls go on until the incident resolves
            await asyncio.sleep(0.2)
            await burst(client, "/outage/orders", 4)
            if not monitor.incidents(open_only=True):
                break
        print("recovered:", await burst(client, "/outage/orders", 4), file=sys.stderr)
        await asyncio.to_thread(monitor.flush)
    incidents = monitor.incidents()
    monitor.close()
    return incidents[0] if incidents else None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    providers = rc.configure_telemetry(service_name="checkout-service", exporter="console")
    with serve() as upstream:
        incident = asyncio.run(run(upstream))
    providers.shutdown()  # flushes the last spans and metrics
    if incident is None:
        print("no incident was recorded", file=sys.stderr)
        return 1
    print(
        f"incident {incident.id}: {incident.state}, {incident.failed_calls} of "
        f"{incident.calls} calls failed, detected after {incident.time_to_detect:.2f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
