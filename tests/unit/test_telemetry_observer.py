"""OpenTelemetryObserver over a scripted transport: span shape, attributes, status,
propagation, metrics, the no-SDK path, cancellation. Sync and async through ``driver``;
spans and metrics go to the SDK's in-memory exporter and reader, passed explicitly (the
global providers are never touched)."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from drivers import Driver
from opentelemetry import baggage, context, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode
from otel_support import Otel, attrs, traceparent

import resilient_client as rc
from resilient_client._breaker import Breaker
from resilient_client.telemetry import OpenTelemetryObserver
from resilient_client.telemetry._observer import _PASSTHROUGH
from resilient_client.testing import FakeClock, ScriptedTransport

USERS = {"GET /v1/users/{id}": rc.Policy()}
FAST = rc.Policy(
    retry=rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.0, max=0.0)), breaker=None
)


def client(driver: Driver, observer: Any, transport: httpx.MockTransport, **kwargs: Any) -> Any:
    kwargs.setdefault("policy", FAST)
    kwargs.setdefault("clock", FakeClock())
    observers = observer if isinstance(observer, list) else [observer]
    return driver.client(
        base_url="https://api.test", transport=transport, observers=observers, **kwargs
    )


def test_a_retried_call_is_one_internal_span_around_a_client_span_per_attempt(
    driver: Driver, otel: Otel
) -> None:
    transport = ScriptedTransport([503, 503, 200])
    c = client(driver, otel.observer(), transport, endpoints=USERS)
    assert driver.request(c, "GET", "/v1/users/7").status_code == 200

    call, attempts = otel.call_span(), otel.attempt_spans()
    assert len(attempts) == 3
    assert {s.name for s in [call, *attempts]} == {"GET /v1/users/{id}"}
    assert {s.context.trace_id for s in attempts} == {call.context.trace_id}
    assert all(s.parent is not None and s.parent.span_id == call.context.span_id for s in attempts)
    assert [attrs(s).get("http.request.resend_count") for s in attempts] == [None, 1, 2]
    assert [attrs(s)["http.response.status_code"] for s in attempts] == [503, 503, 200]
    assert [attrs(s).get("error.type") for s in attempts] == ["503", "503", None]
    assert [s.status.status_code for s in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    first = attrs(attempts[0])
    assert first["http.request.method"] == "GET"
    assert first["server.address"] == "api.test"
    assert first["server.port"] == 443
    assert first["url.full"] == "https://api.test/v1/users/7"
    assert first["url.template"] == "/v1/users/{id}"
    assert first["network.protocol.version"] == "1.1"


def test_the_call_span_carries_the_outcome_and_each_retry_decision(
    driver: Driver, otel: Otel
) -> None:
    transport = ScriptedTransport([503, httpx.ConnectError("refused"), 200])
    c = client(driver, otel.observer(), transport, endpoints=USERS)
    driver.request(c, "GET", "/v1/users/7")

    call = otel.call_span()
    assert attrs(call)["resilient_client.endpoint"] == "GET /v1/users/{id}"
    assert attrs(call)["resilient_client.attempts"] == 3
    assert attrs(call)["resilient_client.outcome"] == "success"
    assert "resilient_client.stop_reason" not in attrs(call)  # "success" says it
    assert attrs(call)["http.response.status_code"] == 200
    assert call.status.status_code is StatusCode.UNSET
    retries = [e for e in call.events if e.name == "resilient_client.retry"]
    assert [attrs(e)["resilient_client.retry.reason"] for e in retries] == [
        "status_503",
        "connect_error",
    ]
    assert [attrs(e)["resilient_client.attempt"] for e in retries] == [1, 2]
    assert all(attrs(e)["resilient_client.retry.delay"] == 0.0 for e in retries)


def test_a_transport_error_sets_error_type_to_the_exception_type(
    driver: Driver, otel: Otel
) -> None:
    transport = ScriptedTransport([httpx.ConnectError("refused"), 200])
    driver.request(client(driver, otel.observer(), transport), "GET", "/x")
    failed = otel.attempt_spans()[0]
    assert attrs(failed)["error.type"] == "httpx.ConnectError"
    assert "http.response.status_code" not in attrs(failed)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description is None  # messages can quote the request
    assert failed.events == ()


def test_a_final_failure_marks_the_call_span_as_an_error(driver: Driver, otel: Otel) -> None:
    transport = ScriptedTransport([503, 503, 503])
    response = driver.request(client(driver, otel.observer(), transport), "GET", "/x")
    assert response.status_code == 503
    call = otel.call_span()
    assert call.status.status_code is StatusCode.ERROR
    assert attrs(call)["error.type"] == "503"
    assert attrs(call)["resilient_client.outcome"] == "failure"
    assert attrs(call)["resilient_client.stop_reason"] == "max_attempts"
    assert attrs(call)["resilient_client.retry.reasons"] == ("status_503", "status_503")


def test_a_4xx_is_an_error_on_the_client_span(driver: Driver, otel: Otel) -> None:
    driver.request(client(driver, otel.observer(), ScriptedTransport([404])), "GET", "/x")
    (attempt,) = otel.attempt_spans()
    assert attempt.status.status_code is StatusCode.ERROR
    assert attrs(attempt)["error.type"] == "404"


def test_an_unconfigured_endpoint_names_spans_by_method_only(driver: Driver, otel: Otel) -> None:
    driver.request(client(driver, otel.observer(), ScriptedTransport()), "GET", "/v1/users/7")
    assert {s.name for s in otel.spans()} == {"GET"}
    assert "url.template" not in attrs(otel.attempt_spans()[0])
    assert attrs(otel.call_span())["resilient_client.endpoint"] == "* api.test"


def test_an_unknown_method_is_reported_as_other(driver: Driver, otel: Otel) -> None:
    driver.request(client(driver, otel.observer(), ScriptedTransport()), "PURGE", "/cache")
    (attempt,) = otel.attempt_spans()
    assert attempt.name == "HTTP"
    assert attrs(attempt)["http.request.method"] == "_OTHER"
    assert attrs(attempt)["http.request.method_original"] == "PURGE"


def test_each_attempt_sends_its_own_span_context(driver: Driver, otel: Otel) -> None:
    transport = ScriptedTransport([503, 503, 200])
    driver.request(client(driver, otel.observer(), transport), "GET", "/x")
    sent = [r.headers["traceparent"] for r in transport.requests]
    assert sent == [traceparent(s) for s in otel.attempt_spans()]
    assert len(set(sent)) == 3


def test_an_application_span_is_the_parent_and_application_baggage_travels(
    driver: Driver, otel: Otel
) -> None:
    transport = ScriptedTransport([503, 200])
    c = client(driver, otel.observer(), transport)
    tracer = otel.tracer_provider.get_tracer("app")
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with tracer.start_as_current_span("handle-order") as app_span:
            driver.request(c, "GET", "/x")
    finally:
        context.detach(token)
    call = otel.call_span()
    assert call.parent is not None
    assert call.parent.span_id == app_span.get_span_context().span_id
    assert [r.headers["baggage"] for r in transport.requests] == ["tenant=acme"] * 2


def test_during_an_attempt_its_span_is_current_and_http_instrumentation_suppressed(
    driver: Driver, otel: Otel
) -> None:
    seen: list[tuple[int, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        current = trace.get_current_span().get_span_context().span_id
        seen.append((current, context.get_value(context._SUPPRESS_HTTP_INSTRUMENTATION_KEY)))
        return httpx.Response(200)

    driver.request(client(driver, otel.observer(), httpx.MockTransport(handler)), "GET", "/x")
    (attempt,) = otel.attempt_spans()
    assert seen == [(attempt.context.span_id, True)]
    assert context.get_value(context._SUPPRESS_HTTP_INSTRUMENTATION_KEY) is None
    assert not trace.get_current_span().get_span_context().is_valid


def test_correlation_and_request_ids_are_recorded(driver: Driver, otel: Otel) -> None:
    answer = httpx.Response(200, headers={"x-request-id": "req-42"})
    transport = ScriptedTransport([answer])
    driver.request(client(driver, otel.observer(), transport), "GET", "/x")
    sent = transport.requests[0].headers["x-correlation-id"]
    assert attrs(otel.call_span())["resilient_client.correlation_id"] == sent
    for span in otel.spans():
        assert attrs(span)["resilient_client.request_id"] == "req-42"


def test_request_id_headers_are_configurable(driver: Driver, otel: Otel) -> None:
    answer = httpx.Response(200, headers={"x-request-id": "a", "x-trace-token": "b"})
    observer = otel.observer(request_id_headers=["X-Trace-Token"])
    driver.request(client(driver, observer, ScriptedTransport([answer])), "GET", "/x")
    assert attrs(otel.attempt_spans()[0])["resilient_client.request_id"] == "b"


def test_only_allow_listed_headers_are_recorded(driver: Driver, otel: Otel) -> None:
    answer = httpx.Response(200, headers={"x-tenant": "acme", "x-other": "no"})
    observer = otel.observer(recorded_headers=["X-Tenant"])
    c = client(driver, observer, ScriptedTransport([answer]))
    driver.request(c, "GET", "/x", headers={"X-Tenant": "t1", "Authorization": "Bearer s"})
    attributes = attrs(otel.attempt_spans()[0])
    assert attributes["http.request.header.x-tenant"] == ("t1",)
    assert attributes["http.response.header.x-tenant"] == ("acme",)
    assert not [k for k in attributes if "authorization" in k or "x-other" in k]


@pytest.mark.parametrize(
    "name", ["Authorization", "cookie", "Set-Cookie", "X-Api-Key", "X-Session"]
)
def test_recording_a_sensitive_header_is_refused(otel: Otel, name: str) -> None:
    with pytest.raises(ValueError, match="sensitive"):
        otel.observer(recorded_headers=[name])


def test_attempt_durations_come_from_the_pipeline_clock(driver: Driver, otel: Otel) -> None:
    clock = FakeClock()
    transport = ScriptedTransport([503, 200], clock=clock, latency=0.25)
    c = client(driver, otel.observer(), transport, clock=clock, endpoints=USERS)
    driver.request(c, "GET", "/v1/users/7")

    points = {
        attrs(p).get("http.response.status_code"): p
        for p in otel.points("http.client.request.duration")
    }
    assert points[503].count == points[200].count == 1
    assert points[503].sum == pytest.approx(0.25)
    assert attrs(points[503]) == {
        "http.request.method": "GET",
        "server.address": "api.test",
        "server.port": 443,
        "url.template": "/v1/users/{id}",
        "http.response.status_code": 503,
        "network.protocol.version": "1.1",
        "error.type": "503",
    }
    assert points[503].explicit_bounds[:3] == (0.005, 0.01, 0.025)
    (call,) = otel.points("resilient_client.call.duration")
    assert call.sum == pytest.approx(0.5)
    assert attrs(call) == {
        "resilient_client.endpoint": "GET /v1/users/{id}",
        "http.request.method": "GET",
        "resilient_client.outcome": "success",
    }
    (retries,) = otel.points("resilient_client.retries")
    assert retries.value == 1
    assert attrs(retries) == {
        "resilient_client.endpoint": "GET /v1/users/{id}",
        "resilient_client.retry.reason": "status_503",
    }


def test_a_budget_refusal_is_an_event_and_a_counter(driver: Driver, otel: Otel) -> None:
    policy = FAST.model_copy(update={"budget": rc.RetryBudget(ratio=0.0, min_per_second=0.0)})
    c = client(driver, otel.observer(), ScriptedTransport([503, 200]), policy=policy)
    assert driver.request(c, "GET", "/x").status_code == 503
    call = otel.call_span()
    (refused,) = [e for e in call.events if e.name == "resilient_client.retry_refused"]
    assert attrs(refused)["resilient_client.retry.refused_by"] == "budget"
    assert attrs(call)["resilient_client.stop_reason"] == "budget"
    (point,) = otel.points("resilient_client.retry.refusals")
    assert point.value == 1
    assert attrs(point)["resilient_client.retry.refused_by"] == "budget"


def test_a_bulkhead_rejection_is_an_event_a_counter_and_the_outcome(
    driver: Driver, otel: Otel
) -> None:
    policy = rc.Policy(bulkhead=rc.Bulkhead(max_concurrent=1))
    c = client(driver, otel.observer(), ScriptedTransport(), policy=policy)
    bulkhead = c.pipeline.endpoints.match(httpx.Request("GET", "https://api.test/x")).bulkhead
    assert bulkhead.acquire(0.0)  # the one slot is taken
    try:
        with pytest.raises(rc.BulkheadFull):
            driver.request(c, "GET", "/x")
    finally:
        bulkhead.release()
    call = otel.call_span()
    assert [attrs(e)["resilient_client.rejected_by"] for e in call.events] == ["bulkhead"]
    assert attrs(call)["resilient_client.outcome"] == "rejected"
    assert attrs(call)["resilient_client.attempts"] == 0
    assert attrs(call)["error.type"] == "resilient_client.BulkheadFull"
    assert otel.attempt_spans() == []
    (point,) = otel.points("resilient_client.rejections")
    assert attrs(point)["resilient_client.rejected_by"] == "bulkhead"


def test_breaker_transitions_and_rejections_are_recorded(driver: Driver, otel: Otel) -> None:
    policy = rc.Policy(retry=None, breaker=Breaker(failure_threshold=2))
    c = client(driver, otel.observer(), ScriptedTransport([503, 503, 200]), policy=policy)
    for _ in range(2):
        driver.request(c, "GET", "/x")
    with pytest.raises(rc.CircuitOpenError):
        driver.request(c, "GET", "/x")

    states = {
        attrs(p)["resilient_client.breaker.state"]: p.value
        for p in otel.points("resilient_client.breaker.state")
    }
    assert states == {"open": 1, "closed": 0, "half_open": 0}
    (transition,) = otel.points("resilient_client.breaker.transitions")
    assert attrs(transition) == {
        "resilient_client.endpoint": "* api.test",
        "resilient_client.breaker.previous_state": "closed",
        "resilient_client.breaker.state": "open",
    }
    rejected = [s for s in otel.spans() if s.kind is SpanKind.INTERNAL][-1]
    assert attrs(rejected)["resilient_client.outcome"] == "rejected"
    assert [attrs(e)["resilient_client.rejected_by"] for e in rejected.events] == ["breaker"]
    assert attrs(rejected)["error.type"] == "resilient_client.CircuitOpenError"


def test_without_an_sdk_the_callers_trace_context_passes_through(
    driver: Driver, otel: Otel
) -> None:
    observer = OpenTelemetryObserver(NoOpTracerProvider(), NoOpMeterProvider())
    transport = ScriptedTransport([503, 200])
    c = client(driver, observer, transport)
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with otel.tracer_provider.get_tracer("app").start_as_current_span("app") as app_span:
            driver.request(c, "GET", "/x")
    finally:
        context.detach(token)
    expected = traceparent(app_span)  # type: ignore[arg-type]
    assert [r.headers["traceparent"] for r in transport.requests] == [expected] * 2
    assert transport.requests[0].headers["baggage"] == "tenant=acme"
    assert otel.spans() == []
    assert [s.name for s in otel.exporter.get_finished_spans()] == ["app"]


def test_without_an_sdk_or_a_parent_nothing_is_sent_or_built(driver: Driver) -> None:
    observed: list[Any] = []

    class Spy:
        def on_event(self, call: Any, event: Any) -> None:
            observed.append(call.observation)

    observer = OpenTelemetryObserver(NoOpTracerProvider(), NoOpMeterProvider())
    transport = ScriptedTransport()
    c = client(driver, [observer, Spy()], transport)
    response = driver.request(c, "GET", "/x")
    assert response.status_code == 200
    assert "traceparent" not in transport.requests[0].headers
    assert observed == [_PASSTHROUGH] * len(observed)  # one shared, empty state
    assert observed and all(o is _PASSTHROUGH for o in observed)


def test_a_cancelled_attempt_is_not_an_error(driver: Driver, otel: Otel) -> None:
    interruption = asyncio.CancelledError if driver.is_async else KeyboardInterrupt

    def handler(request: httpx.Request) -> httpx.Response:
        raise interruption()

    c = client(driver, otel.observer(), httpx.MockTransport(handler))
    with pytest.raises(interruption):
        driver.request(c, "GET", "/x")
    (attempt,) = otel.attempt_spans()
    call = otel.call_span()
    assert attempt.status.status_code is call.status.status_code is StatusCode.UNSET
    assert "error.type" not in attrs(attempt)
    assert "error.type" not in attrs(call)
    assert attrs(call)["resilient_client.outcome"] == "cancelled"


def test_a_failing_tracer_never_fails_the_call(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(TracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
            tracer = super().get_tracer(*args, **kwargs)

            def start_span(*a: Any, **k: Any) -> Any:
                raise RuntimeError("boom")

            tracer.start_span = start_span  # type: ignore[method-assign]
            return tracer

    observer = OpenTelemetryObserver(Broken(), NoOpMeterProvider())
    with caplog.at_level(logging.WARNING, logger="resilient_client.telemetry"):
        response = driver.request(client(driver, observer, ScriptedTransport()), "GET", "/x")
    assert response.status_code == 200
    assert "CallStarted failed with RuntimeError" in caplog.text


def fallback_policy() -> rc.Policy:
    def fallback(request: httpx.Request, failure: object) -> httpx.Response:
        return httpx.Response(200, json={"cached": True})

    return FAST.model_copy(update={"fallback": fallback})


def test_a_failed_response_replaced_by_the_fallback_ends_with_that_outcome(
    driver: Driver, otel: Otel
) -> None:
    transport = ScriptedTransport([503, 503, 503])
    c = client(driver, otel.observer(), transport, policy=fallback_policy())
    assert driver.request(c, "GET", "/x").status_code == 200
    call = otel.call_span()
    assert attrs(call)["resilient_client.outcome"] == "fallback"
    assert call.status.status_code is StatusCode.UNSET
    (point,) = otel.points("resilient_client.call.duration")
    assert attrs(point)["resilient_client.outcome"] == "fallback"


def test_a_failed_exchange_replaced_by_the_fallback_ends_with_that_outcome(
    driver: Driver, otel: Otel
) -> None:
    transport = ScriptedTransport([httpx.ConnectError("refused")] * 3)
    c = client(driver, otel.observer(), transport, policy=fallback_policy())
    assert driver.request(c, "GET", "/x").status_code == 200
    assert attrs(otel.call_span())["resilient_client.outcome"] == "fallback"


def test_an_incoming_trace_state_travels_with_each_attempt(driver: Driver, otel: Otel) -> None:
    incoming = trace.SpanContext(
        trace_id=0x5C3E1D9B7A2F4E6C8D0B1A3F5E7C9D2B,
        span_id=0xA1B2C3D4E5F60718,
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        trace_state=trace.TraceState([("vendor", "v1")]),
    )
    transport = ScriptedTransport([503, 200])
    c = client(driver, otel.observer(), transport)
    token = context.attach(trace.set_span_in_context(trace.NonRecordingSpan(incoming)))
    try:
        driver.request(c, "GET", "/x")
    finally:
        context.detach(token)
    assert [r.headers["tracestate"] for r in transport.requests] == ["vendor=v1"] * 2
    sent = [r.headers["traceparent"] for r in transport.requests]
    assert all(t.startswith("00-5c3e1d9b7a2f4e6c8d0b1a3f5e7c9d2b-") for t in sent)
    assert otel.call_span().parent is not None
    assert otel.call_span().parent.span_id == incoming.span_id  # type: ignore[union-attr]


def test_concurrent_calls_keep_their_attempts_apart(driver: Driver, otel: Otel) -> None:
    seen: set[str] = set()
    lock = threading.Lock()

    def first_fails(request: httpx.Request) -> httpx.Response:
        with lock:
            first = request.url.path not in seen
            seen.add(request.url.path)
        return httpx.Response(503 if first else 200)

    async def first_fails_later(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # let the other tasks' attempts start meanwhile
        return first_fails(request)

    handler: Any = first_fails_later if driver.is_async else first_fails
    c = client(driver, otel.observer(), httpx.MockTransport(handler))
    paths = [f"/item/{n}" for n in range(8)]
    if driver.is_async:

        async def all_calls() -> list[Any]:
            return list(await asyncio.gather(*(c.get(p) for p in paths)))

        responses = driver.run(all_calls())
    else:
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(c.get, paths))
    assert [r.status_code for r in responses] == [200] * 8

    calls = {s.context.span_id: s for s in otel.spans() if s.kind is SpanKind.INTERNAL}
    attempts = otel.attempt_spans()
    assert len(calls) == 8 and len(attempts) == 16
    children: dict[int, list[ReadableSpan]] = {}
    for span in attempts:
        assert span.parent is not None and span.parent.span_id in calls
        assert span.context.trace_id == calls[span.parent.span_id].context.trace_id
        children.setdefault(span.parent.span_id, []).append(span)
    assert sorted(len(v) for v in children.values()) == [2] * 8
    assert len({s.context.trace_id for s in calls.values()}) == 8
    assert context.get_value(context._SUPPRESS_HTTP_INSTRUMENTATION_KEY) is None


def test_a_sampled_out_call_still_tells_downstream_it_is_not_sampled(driver: Driver) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    transport = ScriptedTransport([503, 200])
    c = client(driver, OpenTelemetryObserver(provider, NoOpMeterProvider()), transport)
    driver.request(c, "GET", "/x")
    sent = [r.headers["traceparent"] for r in transport.requests]
    assert len(set(sent)) == 1
    assert int(sent[0].rpartition("-")[2], 16) & 0x01 == 0  # the sampled bit is off
    assert exporter.get_finished_spans() == ()


def test_an_observer_passed_in_observers_replaces_the_clients_own(
    driver: Driver, otel: Otel
) -> None:
    # Both used to run: each overwrote the other's call state, the client's own spans
    # were lost, and an attempt's context was left attached after the call.
    own = Otel()
    started: list[str] = []  # the client's own observer never ends what it starts then

    class Started(SimpleSpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            started.append(span.name)

    own.tracer_provider.add_span_processor(Started(InMemorySpanExporter()))
    transport = ScriptedTransport([503, 200])
    c = client(driver, otel.observer(), transport, tracer_provider=own.tracer_provider)
    before = dict(context.get_current())
    driver.request(c, "GET", "/x")
    assert dict(context.get_current()) == before
    call_span = otel.call_span()
    attempts = otel.attempt_spans()
    assert len(attempts) == 2
    assert {s.parent.span_id if s.parent else None for s in attempts} == {call_span.context.span_id}
    assert own.spans() == [] and started == []
    own.shutdown()


def test_two_opentelemetry_observers_on_one_client_are_refused(driver: Driver) -> None:
    first = OpenTelemetryObserver(NoOpTracerProvider(), NoOpMeterProvider())
    second = OpenTelemetryObserver(NoOpTracerProvider(), NoOpMeterProvider())
    with pytest.raises(ValueError, match="one OpenTelemetryObserver"):
        client(driver, [first, second], ScriptedTransport([200]))
