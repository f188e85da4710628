"""Issue 18's drop-in bugs, each pinned against the real upstream: what plain httpx does,
ours does too (elapsed, a request built elsewhere, timeouts in transport mode, what hooks
and redirect hops see)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from drivers import Driver
from otel_support import Otel

import resilient_client as rc
from resilient_client.chaos import RunningServer


def test_elapsed_is_there_after_an_ordinary_call(driver: Driver, upstream: RunningServer) -> None:
    client = driver.client(base_url=upstream.url)
    response = driver.request(client, "GET", "/ok/elapsed")
    assert response.status_code == 200
    assert isinstance(response.elapsed, datetime.timedelta)
    assert response.elapsed.total_seconds() >= 0


def test_a_request_built_elsewhere_keeps_the_clients_timeout(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(timeout=0.2, policy=rc.Policy(retry=None))
    request = driver.lib.Request("GET", f"{upstream.url}/ok/slow?delay=1")
    with pytest.raises(driver.lib.ReadTimeout):
        driver.run(client.send(request))
    [seen] = upstream.app.scenario("slow").requests
    assert seen.path == "/ok/slow"


def test_transport_mode_honours_a_per_call_timeout(driver: Driver, upstream: RunningServer) -> None:
    plain = driver.plain_client(transport=driver.transport(policy=rc.Policy(retry=None)))
    with pytest.raises(driver.lib.ReadTimeout):
        driver.request(plain, "GET", f"{upstream.url}/ok/per-call?delay=1", timeout=0.2)


def test_transport_mode_honours_the_clients_timeout(
    driver: Driver, upstream: RunningServer
) -> None:
    plain = driver.plain_client(
        transport=driver.transport(policy=rc.Policy(retry=None)), timeout=0.2
    )
    with pytest.raises(driver.lib.ReadTimeout):
        driver.request(plain, "GET", f"{upstream.url}/ok/client-wide?delay=1")


def test_the_deadline_still_clips_a_callers_timeout_in_transport_mode(
    driver: Driver, upstream: RunningServer
) -> None:
    policy = rc.Policy(retry=None, timeouts=rc.Timeouts(total=0.2))
    plain = driver.plain_client(transport=driver.transport(policy=policy))
    with pytest.raises(driver.lib.TimeoutException):
        driver.request(plain, "GET", f"{upstream.url}/ok/clipped?delay=1", timeout=5.0)


def test_hooks_and_redirect_hops_never_see_the_pipelines_headers(
    driver: Driver, upstream: RunningServer
) -> None:
    seen_by_hooks: list[Any] = []

    def hook(request: Any) -> None:
        seen_by_hooks.append(driver.lib.Headers(request.headers))

    async def ahook(request: Any) -> None:
        hook(request)

    client = driver.client(
        base_url=upstream.url,
        follow_redirects=True,
        event_hooks={"request": [ahook if driver.is_async else hook]},
    )
    # A 307 keeps the method and body: each hop is a POST of its own.
    response = driver.request(
        client, "POST", "/redirect/hops?to=/echo/hops&status=307", json={"a": 1}
    )
    assert response.status_code == 200
    assert len(seen_by_hooks) == 2  # hop 1 and hop 2, both as the caller made them
    for headers in seen_by_hooks:
        assert "x-correlation-id" not in headers and "idempotency-key" not in headers
    # ... while every hop went out with ids of its own.
    sent = [r.headers for r in upstream.app.scenario("hops").requests]
    assert len(sent) == 2
    assert all("x-correlation-id" in h and "idempotency-key" in h for h in sent)
    assert sent[0]["idempotency-key"] != sent[1]["idempotency-key"]
    # And the caller's request was not changed by the call.
    assert "x-correlation-id" not in response.request.headers


def test_a_traced_call_leaves_the_callers_request_as_it_was(
    driver: Driver, upstream: RunningServer, otel: Otel
) -> None:
    # No header of the pipeline's own (no correlation header; a GET sends no key): the
    # trace context is the only one it adds, and it too goes on the pipeline's copy.
    client = driver.client(
        base_url=upstream.url,
        correlation_header=None,
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
    )
    response = driver.request(client, "GET", "/echo/traced")

    assert response.status_code == 200
    (sent,) = [r.headers for r in upstream.app.scenario("traced").requests]
    assert "traceparent" in sent
    assert "traceparent" not in response.request.headers


def test_a_request_sent_twice_gets_a_fresh_key_each_time(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(base_url=upstream.url)
    request: Any = client.build_request("POST", "/echo/twice", json={"a": 1})
    first = driver.run(client.send(request))
    second = driver.run(client.send(request))
    keys = [r.extensions["resilience"].idempotency_key for r in (first, second)]
    assert keys[0] != keys[1]
    sent = [r.headers["idempotency-key"] for r in upstream.app.scenario("twice").requests]
    assert sent == keys
