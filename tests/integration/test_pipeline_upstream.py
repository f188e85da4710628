"""The core pipeline against the real upstream (the chaos app under uvicorn on 127.0.0.1).

Sync and async run through one parametrised ``driver`` fixture. Waits between attempts go
to a FakeClock (recorded, not slept); the few tests about real time (deadline, attempt
cap, stalls) say so and keep generous margins for a noisy 2-core machine.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from drivers import Driver

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

FAST = rc.Policy(retry=rc.Retry(max_attempts=4, backoff=rc.Backoff(initial=0.0, max=0.0)))


def info(response: httpx.Response) -> rc.ResilienceInfo:
    value = response.extensions["resilience"]
    assert isinstance(value, rc.ResilienceInfo)
    return value


def test_rides_through_failures_to_success(driver: Driver, upstream: RunningServer) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock())
    response = driver.request(client, "GET", "/flaky/ride?fail=2&status=503")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "attempt": 3}
    assert upstream.app.scenario("ride").attempts == 3
    assert info(response).attempts == 3


def test_every_attempt_carries_the_same_correlation_id(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock())
    response = driver.request(client, "GET", "/flaky/corr?fail=2")
    seen = [r.headers["x-correlation-id"] for r in upstream.app.scenario("corr").requests]
    assert seen == [info(response).correlation_id] * 3


def test_retry_after_from_the_server_sets_the_wait(driver: Driver, upstream: RunningServer) -> None:
    clock = FakeClock()
    client = driver.client(base_url=upstream.url, clock=clock)
    driver.request(client, "GET", "/flaky/ra?fail=1&status=429&retry_after=2")
    driver.request(client, "GET", "/flaky/ra-ms?fail=1&status=503&retry_after_ms=1500")
    driver.request(client, "GET", "/flaky/ra-date?fail=1&status=503&retry_after_date=4")
    assert clock.sleeps[:2] == [2.0, 1.5]
    assert clock.sleeps[2] == pytest.approx(4.0, abs=1.0)  # whole seconds in HTTP-dates


def test_retry_after_past_the_cap_returns_at_once(driver: Driver, upstream: RunningServer) -> None:
    clock = FakeClock()
    client = driver.client(base_url=upstream.url, clock=clock)
    response = driver.request(client, "GET", "/flaky/cap?fail=1&status=503&retry_after=600")
    assert response.status_code == 503
    assert clock.sleeps == []
    assert upstream.app.scenario("cap").attempts == 1


def test_connection_dropped_before_and_mid_response_is_retried(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock())
    for when in ("before", "mid"):
        response = driver.request(client, "GET", f"/drop/drop-{when}?when={when}&times=2")
        assert response.status_code == 200, when
        assert upstream.app.scenario(f"drop-{when}").attempts == 3
        assert info(response).retry_reasons == ("broken", "broken")


def test_a_post_without_key_whose_connection_dropped_is_not_retried(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(
        base_url=upstream.url, clock=FakeClock(), policy=rc.Policy(idempotency=None)
    )
    with pytest.raises(driver.lib.RemoteProtocolError):
        driver.request(client, "POST", "/drop/post-drop?when=before", json={"x": 1})
    assert upstream.app.scenario("post-drop").attempts == 1


def test_a_streamed_response_is_not_retried_once_handed_over(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock())
    with pytest.raises(driver.lib.RemoteProtocolError):
        driver.stream_read(client, "GET", "/drop/streamed?when=mid")
    assert upstream.app.scenario("streamed").attempts == 1


def test_deadline_ends_a_stalled_call_on_time(driver: Driver, upstream: RunningServer) -> None:
    """Real time: a 0.4 s deadline against a server that stalls 30 s."""
    policy = rc.Policy(timeouts=rc.Timeouts(total=0.4))
    client = driver.client(base_url=upstream.url, policy=policy)
    start = time.monotonic()
    with pytest.raises(driver.ns.DeadlineExceeded):
        driver.request(client, "GET", "/stall/deadline?seconds=30")
    elapsed = time.monotonic() - start
    assert 0.35 < elapsed < 1.4  # deadline plus scheduling noise on a busy 2-core machine


def test_the_policys_read_timeout_applies_unless_the_call_names_one(
    driver: Driver, upstream: RunningServer
) -> None:
    """Real time: a 0.3 s stall cuts a call naming no timeout at the policy's 0.1 s read
    timeout; a call asking for httpx's default 5 s (the client's own) gets its 5 s."""
    policy = rc.Policy(timeouts=rc.Timeouts(read=0.1), retry=None)
    client = driver.client(base_url=upstream.url, policy=policy)
    with pytest.raises(driver.lib.ReadTimeout):
        driver.request(client, "GET", "/stall/policy?seconds=0.3")
    response = driver.request(client, "GET", "/stall/call?seconds=0.3", timeout=5.0)
    assert response.status_code == 200


def test_attempt_cap_cuts_one_attempt_and_the_retry_succeeds(
    driver: Driver, upstream: RunningServer
) -> None:
    """Real time: the first attempt stalls past its 0.3 s cap; the second answers at once."""
    policy = rc.Policy(timeouts=rc.Timeouts(attempt=0.3, total=10.0))
    client = driver.client(base_url=upstream.url, policy=policy, clock=FakeClock())
    response = driver.request(client, "GET", "/stall/cap?seconds=30&times=1")
    assert response.status_code == 200
    assert info(response).attempts == 2
    assert info(response).retry_reasons == ("timeout",)


def test_retried_responses_return_their_connections(
    driver: Driver, upstream: RunningServer
) -> None:
    """300 calls x 3 failed attempts through a pool of 2 connections: any leak exhausts it."""
    limits = driver.lib.Limits(max_connections=2, max_keepalive_connections=2)
    client = driver.client(
        base_url=upstream.url,
        limits=limits,
        clock=FakeClock(),
        timeout=driver.lib.Timeout(5.0, pool=1.0),
        policy=rc.Policy(budget=None, breaker=None),
    )
    for _ in range(150):
        assert driver.request(client, "GET", "/status/leak/503").status_code == 503
    for _ in range(150):
        driver.stream_read(client, "GET", "/status/leak-stream/503")
    assert upstream.app.scenario("leak").attempts == 450
    assert upstream.app.scenario("leak-stream").attempts == 450


def one_connection(driver: Driver, upstream: RunningServer, **kwargs: Any) -> Any:
    """A client with a pool of one connection: a call that leaks it starves the next."""
    limits = driver.lib.Limits(max_connections=1, max_keepalive_connections=1)
    return driver.client(
        base_url=upstream.url,
        limits=limits,
        clock=FakeClock(),
        timeout=driver.lib.Timeout(5.0, pool=1.0),
        **kwargs,
    )


def test_a_streamed_failure_a_fallback_answers_returns_its_connection(
    driver: Driver, upstream: RunningServer
) -> None:
    """A 501 is not retried, so its streamed body stays unread; the fallback's answer
    takes its place, and the 501's connection goes back to the pool."""

    def cached(request: Any, failure: Any) -> Any:
        return driver.lib.Response(200, content=b"cached")

    client = one_connection(driver, upstream, policy=rc.Policy(retry=None, fallback=cached))
    for _ in range(3):
        assert driver.stream_read(client, "GET", "/status/fallback-leak/501") == b"cached"
    assert upstream.app.scenario("fallback-leak").attempts == 3  # none answered unsent


def test_a_streamed_error_raised_as_an_api_error_returns_its_connection(
    driver: Driver, upstream: RunningServer
) -> None:
    client = one_connection(driver, upstream, raise_for_error=True, policy=rc.Policy(retry=None))
    for _ in range(3):
        with pytest.raises(driver.ns.NotFoundError):
            driver.stream_read(client, "GET", "/status/raised-leak/404")
    assert upstream.app.scenario("raised-leak").attempts == 3


def test_the_transport_alone_works_under_a_plain_httpx_client(
    driver: Driver, upstream: RunningServer
) -> None:
    transport = driver.transport(policy=FAST, clock=FakeClock())
    client = driver.plain_client(base_url=upstream.url, transport=transport)
    response = driver.request(client, "GET", "/flaky/plain?fail=2")
    assert response.status_code == 200
    assert info(response).attempts == 3


def test_httpx_features_keep_working(driver: Driver, upstream: RunningServer) -> None:
    seen: list[str] = []

    def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async def ahook(request: httpx.Request) -> None:
        hook(request)

    client = driver.client(
        base_url=upstream.url,
        clock=FakeClock(),
        auth=("user", "pass"),
        headers={"X-Team": "payments"},
        params={"tenant": "t1"},
        event_hooks={"request": [ahook if driver.is_async else hook]},
    )
    response = driver.request(client, "GET", "/flaky/features?fail=1")
    assert response.status_code == 200
    record = upstream.app.scenario("features").requests[-1]
    assert record.headers["authorization"].startswith("Basic ")
    assert record.headers["x-team"] == "payments"
    assert "tenant=t1" in record.query
    assert seen == ["/flaky/features"]  # hooks run once per call, not per attempt
    request = client.build_request("GET", "/echo/built")
    assert driver.run(client.send(request)).json()["path"] == "/echo/built"


def test_endpoint_policies_apply_per_key(driver: Driver, upstream: RunningServer) -> None:
    client = driver.client(
        base_url=upstream.url,
        clock=FakeClock(),
        endpoints={
            "GET /status/{name}/503": rc.Policy(retry=rc.Retry(max_attempts=5)),
            "* /status/nr/**": rc.Policy(retry=None),
        },
    )
    response = driver.request(client, "GET", "/status/many/503")
    assert (info(response).endpoint, upstream.app.scenario("many").attempts) == (
        "GET /status/{name}/503",
        5,
    )
    response = driver.request(client, "GET", "/status/nr/502")
    assert (info(response).endpoint, upstream.app.scenario("nr").attempts) == ("* /status/nr/**", 1)
