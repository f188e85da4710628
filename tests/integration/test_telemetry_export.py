"""``configure_telemetry`` exports spans and metrics over OTLP/HTTP to a real receiver.

The in-process test keeps the providers local (``set_global=False``, passed to the
observer). The global path - which OpenTelemetry allows once per process, and reads
``OTEL_EXPORTER_OTLP_ENDPOINT`` when no endpoint is given - runs in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from drivers import Driver
from otlp_receiver import OtlpReceiver, ReceivedSpan, attributes_of, serve_receiver

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.telemetry import OpenTelemetryObserver, configure_telemetry
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FAST = rc.Policy(retry=rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.0, max=0.0)))
ENDPOINTS = {"GET /flaky/{name}": rc.Policy()}
INTERNAL, CLIENT = 1, 3  # OTLP's SpanKind values


@pytest.fixture
def receiver() -> Iterator[tuple[str, OtlpReceiver]]:
    with serve_receiver() as served:
        yield served


def assert_exported_a_retried_call(receiver: OtlpReceiver, service: str, port: int) -> None:
    spans = [s for s in receiver.spans if s.name == "GET /flaky/{name}"]
    assert len(spans) == 4
    kinds = sorted(s.span.kind for s in spans)
    assert kinds == [INTERNAL, CLIENT, CLIENT, CLIENT]
    assert {s.span.trace_id for s in spans} == {spans[0].span.trace_id}
    assert {s.resource["service.name"] for s in spans} == {service}
    attempts: list[ReceivedSpan] = sorted(
        (s for s in spans if s.span.kind == CLIENT),
        key=lambda s: int(str(s.attributes.get("http.request.resend_count", 0))),
    )
    assert [a.attributes.get("http.request.resend_count") for a in attempts] == [None, 1, 2]
    assert [a.attributes["http.response.status_code"] for a in attempts] == [503, 503, 200]
    assert attempts[0].attributes["server.port"] == port
    assert attempts[0].attributes["url.template"] == "/flaky/{name}"

    # Cumulative temporality: the last export (at shutdown) holds the totals.
    duration = receiver.metric("http.client.request.duration")[-1]
    assert duration.unit == "s"
    points = {
        attributes_of(p.attributes)["http.response.status_code"]: p
        for p in duration.histogram.data_points
    }
    assert points[503].count == 2 and points[200].count == 1
    assert attributes_of(points[503].attributes)["error.type"] == "503"
    assert list(points[200].explicit_bounds)[:2] == [0.005, 0.01]
    retries = receiver.metric("resilient_client.retries")[-1]
    assert sum(p.as_int for p in retries.sum.data_points) == 2
    assert set(receiver.content_types) == {"application/x-protobuf"}


def test_configured_providers_export_spans_and_metrics_over_otlp(
    driver: Driver, upstream: RunningServer, receiver: tuple[str, OtlpReceiver]
) -> None:
    url, received = receiver
    providers = configure_telemetry("checkout", otlp_endpoint=url, set_global=False)
    try:
        observer = OpenTelemetryObserver(providers.tracer_provider, providers.meter_provider)
        client = driver.client(
            base_url=upstream.url,
            clock=FakeClock(),
            policy=FAST,
            endpoints=ENDPOINTS,
            observers=[observer],
        )
        response = driver.request(client, "GET", "/flaky/export?fail=2&status=503")
        assert response.status_code == 200
        assert providers.force_flush(timeout=10.0)
    finally:
        providers.shutdown()
    assert_exported_a_retried_call(received, "checkout", upstream.port)


CHILD = """
import httpx, resilient_client as rc
from resilient_client.telemetry import configure_telemetry

# Built before any provider is set: the client's telemetry (on by default, through the
# global providers) must pick up the SDK set afterwards.
policy = rc.Policy(retry=rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.0, max=0.0)))
client = rc.ResilientClient(
    base_url="{upstream}",
    policy=policy,
    endpoints={{"GET /flaky/{{name}}": rc.Policy()}},
)
providers = configure_telemetry("billing")  # the endpoint comes from the environment
with client:
    assert client.get("/flaky/global?fail=2&status=503").status_code == 200
providers.shutdown()
"""


def test_configure_telemetry_sets_the_global_providers_and_reads_the_environment(
    upstream: RunningServer, receiver: tuple[str, OtlpReceiver]
) -> None:
    url, received = receiver
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("OTEL_SDK_DISABLED", None)
    script = textwrap.dedent(CHILD.format(upstream=upstream.url))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert_exported_a_retried_call(received, "billing", upstream.port)


def test_a_missing_sdk_is_a_clear_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(ImportError, match=r"resilient-client\[otel\]"):
        configure_telemetry("svc", set_global=False)


def test_configure_telemetry_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="service_name"):
        configure_telemetry("", set_global=False)
    with pytest.raises(ValueError, match="export_interval"):
        configure_telemetry("svc", export_interval=0, set_global=False)
