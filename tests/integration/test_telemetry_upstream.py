"""Telemetry against the real upstream (the chaos app under uvicorn on 127.0.0.1): spans and
metrics per attempt, what each attempt carried on the wire, the real httpx instrumentor,
and secrets that must appear nowhere. Sync and async through ``driver``; spans and metrics
go to the SDK's in-memory exporter and reader, passed explicitly to the observer."""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from drivers import Driver
from opentelemetry import baggage, context
from opentelemetry.instrumentation.httpx import (
    HTTPX2ClientInstrumentor,
    HTTPXClientInstrumentor,
)
from opentelemetry.trace import StatusCode
from otel_support import Otel, attrs, traceparent

import resilient_client as rc
from resilient_client._breaker import Breaker
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

ENDPOINTS = {"GET /flaky/{name}": rc.Policy(), "GET /echo/{name}": rc.Policy()}
FAST = rc.Policy(retry=rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.0, max=0.0)))


def traced(driver: Driver, upstream: RunningServer, otel: Otel, **kwargs: Any) -> Any:
    kwargs.setdefault("policy", FAST)
    kwargs.setdefault("base_url", upstream.url)
    return driver.client(clock=FakeClock(), observers=[otel.observer()], **kwargs)


def test_a_call_retried_twice_is_one_trace_of_a_call_span_and_three_attempt_spans(
    driver: Driver, upstream: RunningServer, otel: Otel
) -> None:
    client = traced(driver, upstream, otel, endpoints=ENDPOINTS)
    response = driver.request(client, "GET", "/flaky/trace?fail=2&status=503")
    assert response.status_code == 200

    spans = otel.spans()
    call, attempts = otel.call_span(), otel.attempt_spans()
    assert len(attempts) == 3
    assert {s.name for s in spans} == {"GET /flaky/{name}"}
    assert {s.context.trace_id for s in spans} == {call.context.trace_id}
    # Every attempt's parent (an attempt without one would show as None, not be skipped).
    parents = {s.parent.span_id if s.parent else None for s in attempts}
    assert parents == {call.context.span_id}
    assert [attrs(s).get("http.request.resend_count") for s in attempts] == [None, 1, 2]
    assert [s.status.status_code for s in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    last = attrs(attempts[-1])
    assert last["server.address"] == "127.0.0.1"
    assert last["server.port"] == upstream.port
    assert last["url.full"] == f"{upstream.url}/flaky/trace?fail=2&status=503"
    assert last["network.protocol.version"] == "1.1"
    assert attrs(call)["resilient_client.attempts"] == 3
    assert [attrs(e)["resilient_client.retry.reason"] for e in call.events] == [
        "status_503",
        "status_503",
    ]

    received = upstream.app.scenario("trace").requests
    assert [r.headers["traceparent"] for r in received] == [traceparent(s) for s in attempts]
    assert len({r.headers["traceparent"] for r in received}) == 3
    sent_correlation = {r.headers["x-correlation-id"] for r in received}
    assert sent_correlation == {attrs(call)["resilient_client.correlation_id"]}


def test_application_baggage_arrives_on_the_wire(
    driver: Driver, upstream: RunningServer, otel: Otel
) -> None:
    client = traced(driver, upstream, otel, endpoints=ENDPOINTS)
    ctx = baggage.set_baggage("tenant", "acme", baggage.set_baggage("tier", "gold"))
    token = context.attach(ctx)
    try:
        response = driver.request(client, "GET", "/echo/baggage")
    finally:
        context.detach(token)
    (received,) = upstream.app.scenario("baggage").requests
    assert sorted(received.headers["baggage"].split(",")) == ["tenant=acme", "tier=gold"]
    assert response.json()["headers"]["traceparent"] == received.headers["traceparent"]


def test_every_attempt_is_measured_with_its_attributes(
    driver: Driver, upstream: RunningServer, otel: Otel
) -> None:
    client = traced(driver, upstream, otel, endpoints=ENDPOINTS)
    driver.request(client, "GET", "/flaky/measured?fail=2&status=503")

    by_status = {
        attrs(p).get("http.response.status_code"): p
        for p in otel.points("http.client.request.duration")
    }
    assert by_status[503].count == 2
    assert by_status[200].count == 1
    assert attrs(by_status[200]) == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": upstream.port,
        "url.template": "/flaky/{name}",
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
    }
    (retries,) = otel.points("resilient_client.retries")
    assert retries.value == 2
    (call,) = otel.points("resilient_client.call.duration")
    assert attrs(call)["resilient_client.outcome"] == "success"


@pytest.fixture
def httpx_instrumentor(driver: Driver, otel: Otel) -> Iterator[None]:
    """The real contrib instrumentor for the driver's library, patching its transports."""
    kind = HTTPX2ClientInstrumentor if driver.library == "httpx2" else HTTPXClientInstrumentor
    instrumentor = kind()
    instrumentor.instrument(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider
    )
    yield
    instrumentor.uninstrument()


@pytest.mark.usefixtures("httpx_instrumentor")
def test_an_active_httpx_instrumentation_does_not_trace_attempts_twice(
    driver: Driver, upstream: RunningServer, otel: Otel
) -> None:
    contrib = "opentelemetry.instrumentation.httpx"
    driver.request(driver.plain_client(base_url=upstream.url), "GET", "/echo/control")
    assert len(otel.spans(contrib)) == 1  # the instrumentor is live for plain clients

    client = traced(driver, upstream, otel, endpoints=ENDPOINTS)
    driver.request(client, "GET", "/flaky/once?fail=1&status=503")
    assert len(otel.spans(contrib)) == 1
    attempts = otel.attempt_spans()
    received = upstream.app.scenario("once").requests
    assert [r.headers["traceparent"] for r in received] == [traceparent(s) for s in attempts]


CANARY = "CANARY-9b1e7c4f"


def test_secrets_appear_in_no_span_metric_log_or_exception(
    driver: Driver, upstream: RunningServer, otel: Otel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resilient_client")
    base = f"http://user:{CANARY}@{upstream.host}:{upstream.port}"
    headers = {"Authorization": f"Bearer {CANARY}", "Cookie": f"session={CANARY}"}
    query = f"api_key={CANARY}&token={CANARY}&signature={CANARY}"
    failures: list[BaseException] = []

    no_breaker = FAST.model_copy(update={"breaker": None})
    client = traced(driver, upstream, otel, base_url=base, raise_for_error=True, policy=no_breaker)
    path = f"/flaky/canary-retried?fail=2&status=503&{query}"
    assert driver.request(client, "GET", path, headers=headers).status_code == 200
    for path in (
        f"/status/canary-final/503?{query}",
        f"/drop/canary-drop?when=before&times=9&{query}",
    ):
        with pytest.raises(driver.lib.HTTPError) as caught:
            driver.request(client, "GET", path, headers=headers)
        failures.append(caught.value)

    trips = rc.Policy(retry=None, breaker=Breaker(failure_threshold=1))
    tripping = traced(driver, upstream, otel, base_url=base, policy=trips)
    path = f"/status/canary-trip/503?{query}"
    driver.request(tripping, "GET", path, headers=headers)
    with pytest.raises(driver.ns.CircuitOpenError) as rejected:
        driver.request(tripping, "GET", path, headers=headers)
    failures.append(rejected.value)

    sent = upstream.app.scenario("canary-retried").requests[0]
    assert CANARY in sent.query and "authorization" in sent.headers  # the secrets did travel
    spans = otel.spans()
    assert len(spans) >= 12
    attempts = otel.attempt_spans()
    assert len(attempts) == 3 + 3 + 3 + 1  # retried, final 503, dropped, tripping
    assert all("REDACTED:REDACTED@" in str(attrs(s)["url.full"]) for s in attempts)
    assert any(e.name == "resilient_client.rejected" for s in spans for e in s.events)
    assert caplog.records  # the failures were logged
    texts = [s.to_json() for s in spans]
    metrics_data = otel.reader.get_metrics_data()
    assert metrics_data is not None
    texts.append(metrics_data.to_json())
    texts += [f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records]
    texts += ["".join(traceback.format_exception(e)) + repr(e) for e in failures]
    encoded = base64.b64encode(f"user:{CANARY}".encode()).decode()
    for text in texts:
        assert CANARY not in text
        assert encoded not in text
