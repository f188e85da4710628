"""Budget, bulkhead and throttle as the pipeline uses them (scripted transport, fake clock)."""

from __future__ import annotations

import logging

import httpx
import pytest
from drivers import Driver

import resilient_client as rc
from resilient_client.testing import FakeClock, ScriptedTransport

URL = "https://api.example.com/v1/x"


def test_budget_refusal_ends_the_call_with_its_last_outcome(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(fixed=0.0)
    transport = ScriptedTransport([503] * 100)
    policy = rc.Policy(
        retry=rc.Retry(max_attempts=4), budget=rc.RetryBudget(ratio=0.0, min_per_second=0.2)
    )
    client = driver.client(transport=transport, clock=clock, policy=policy)
    with caplog.at_level(logging.WARNING, logger="resilient_client"):
        first = driver.request(client, "GET", URL)
        second = driver.request(client, "GET", URL)
    assert first.extensions["resilience"].attempts == 3  # reserve: 0.2/s x 10 s = 2 retries
    assert (second.status_code, second.extensions["resilience"].stop_reason) == (503, "budget")
    assert second.extensions["resilience"].attempts == 1
    notices = [r for r in caplog.records if "retry budget exhausted" in r.getMessage()]
    assert len(notices) == 1  # once per episode, not per refusal
    assert notices[0].correlation_id == first.extensions["resilience"].correlation_id
    assert notices[0].endpoint == "* api.example.com"


def test_budget_none_per_call_switches_it_off(driver: Driver) -> None:
    transport = ScriptedTransport([503] * 100)
    policy = rc.Policy(budget=rc.RetryBudget(ratio=0.0, min_per_second=0.0))
    client = driver.client(transport=transport, clock=FakeClock(), policy=policy)
    assert driver.request(client, "GET", URL).extensions["resilience"].attempts == 1
    response = driver.request(client, "GET", URL, extensions={"resilience": rc.Policy(budget=None)})
    assert response.extensions["resilience"].attempts == 3


def test_throttle_sheds_without_touching_the_network(driver: Driver) -> None:
    clock = FakeClock(fixed=0.0)  # random() = 0: every positive probability sheds
    transport = ScriptedTransport([503] * 100)
    throttle = rc.AdaptiveThrottle(k=2.0, window=60.0, min_requests=5)
    client = driver.client(
        transport=transport, clock=clock, policy=rc.Policy(retry=None, throttle=throttle)
    )
    outcomes = []
    for _ in range(20):
        try:
            outcomes.append(driver.request(client, "GET", URL).status_code)
        except rc.LoadShedError as exc:
            assert isinstance(exc, httpx.TransportError)
            assert exc.endpoint == "* api.example.com"
            outcomes.append("shed")
    assert outcomes[:5] == [503] * 5
    assert "shed" in outcomes
    assert len(transport.requests) == outcomes.count(503)


def test_bulkhead_full_raises_without_touching_the_network(driver: Driver) -> None:
    transport = ScriptedTransport([200])
    policy = rc.Policy(bulkhead=rc.Bulkhead(max_concurrent=1, max_wait=0.0))
    client = driver.client(transport=transport, clock=FakeClock(), policy=policy)
    endpoint = client.pipeline.endpoint_for(client.build_request("GET", URL))
    assert endpoint.bulkhead.acquire(0)  # someone else holds the only slot
    with pytest.raises(rc.BulkheadFull):
        driver.request(client, "GET", URL)
    endpoint.bulkhead.release()
    assert driver.request(client, "GET", URL).status_code == 200
    assert len(transport.requests) == 1
    assert endpoint.bulkhead.in_flight == 0
