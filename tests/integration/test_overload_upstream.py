"""Overload protection against the real upstream: retry budgets, bulkheads, adaptive throttling."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from drivers import Driver
from waiting import eventually

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

NO_WAIT = rc.Backoff(initial=0.0, max=0.0)


def outage_attempts(
    driver: Driver, upstream: RunningServer, name: str, budget: rc.RetryBudget | None
) -> int:
    upstream.app.set_failure_plan(name, rate=1.0, status=503)
    # The breaker would stop the storm even sooner; off here, to measure the budget alone.
    policy = rc.Policy(retry=rc.Retry(max_attempts=4, backoff=NO_WAIT), budget=budget, breaker=None)
    # The budget's 10 s window on a clock that stands still: a slow run cannot refill it.
    client = driver.client(base_url=upstream.url, policy=policy, clock=FakeClock())
    for _ in range(500):
        assert driver.request(client, "GET", f"/outage/{name}").status_code == 503
    return upstream.app.scenario(name).attempts


def test_full_outage_with_the_default_budget_adds_at_most_a_quarter(
    driver: Driver, upstream: RunningServer
) -> None:
    """500 calls x 4 attempts into a dead endpoint: 500 x 1.25 + 1/s x 10 s = 635 at most."""
    attempts = outage_attempts(driver, upstream, "outage-budget", rc.RetryBudget())
    assert 500 < attempts <= 635
    assert attempts == 635  # the clock stands still: all 500 calls fall in one window


def test_full_outage_without_a_budget_quadruples_the_load(
    driver: Driver, upstream: RunningServer
) -> None:
    assert outage_attempts(driver, upstream, "outage-nobudget", None) == 2000


def test_budget_refusal_is_visible_in_the_call_record(
    driver: Driver, upstream: RunningServer
) -> None:
    upstream.app.set_failure_plan("refusal", rate=1.0)
    policy = rc.Policy(
        retry=rc.Retry(max_attempts=4, backoff=NO_WAIT),
        budget=rc.RetryBudget(min_per_second=0.1),
        breaker=None,
    )
    client = driver.client(base_url=upstream.url, policy=policy, clock=FakeClock())
    records = [
        driver.request(client, "GET", "/outage/refusal").extensions["resilience"] for _ in range(5)
    ]
    assert records[-1].stop_reason == "budget"
    assert records[-1].attempts == 1


def test_twenty_percent_transient_failures_still_succeed_with_the_budget_on(
    driver: Driver, upstream: RunningServer
) -> None:
    """At 2 calls/s (a FakeClock advanced between calls), 20 % failures need about 5 retries
    per 10 s window; the default budget allows 0.25 x 20 + 1/s x 10 = 15. (At rates where
    ``ratio`` dominates, 0.25 just covers the 0.2 + 0.04 + 0.008 retries per call that 20 %
    failures ask of 4 attempts; a sustained rate much above it asks more than the budget
    allows - by design: that is the storm the budget exists to stop.)"""
    upstream.app.set_failure_plan("blips", rate=0.2, status=503, seed=7)
    clock = FakeClock()
    client = driver.client(
        base_url=upstream.url, clock=clock, policy=rc.Policy(retry=rc.Retry(max_attempts=4))
    )
    ok = 0
    for _ in range(500):
        ok += driver.request(client, "GET", "/outage/blips").status_code == 200
        clock.advance(0.5)
    assert ok >= 495


def test_bulkhead_caps_concurrency_at_the_server_sync(upstream: RunningServer) -> None:
    policy = rc.Policy(bulkhead=rc.Bulkhead(max_concurrent=2, max_wait=10.0))
    with (
        rc.ResilientClient(base_url=upstream.url, policy=policy) as client,
        ThreadPoolExecutor(10) as pool,
    ):
        statuses = list(
            pool.map(lambda _: client.get("/slow/bh-sync?seconds=0.2").status_code, range(10))
        )
    assert statuses == [200] * 10
    assert upstream.app.scenario("bh-sync").peak_concurrency == 2


def test_bulkhead_caps_concurrency_at_the_server_async(upstream: RunningServer) -> None:
    async def main() -> list[int]:
        policy = rc.Policy(bulkhead=rc.Bulkhead(max_concurrent=2, max_wait=10.0))
        async with rc.AsyncResilientClient(base_url=upstream.url, policy=policy) as client:
            responses = await asyncio.gather(
                *(client.get("/slow/bh-async?seconds=0.2") for _ in range(10))
            )
        return [r.status_code for r in responses]

    assert asyncio.run(main()) == [200] * 10
    assert upstream.app.scenario("bh-async").peak_concurrency == 2


def test_bulkhead_full_fails_fast_without_reaching_the_server(upstream: RunningServer) -> None:
    policy = rc.Policy(bulkhead=rc.Bulkhead(max_concurrent=1, max_wait=0.0))
    started = threading.Event()
    with (
        rc.ResilientClient(base_url=upstream.url, policy=policy) as client,
        ThreadPoolExecutor(1) as pool,
    ):
        slow = pool.submit(lambda: (started.set(), client.get("/slow/bh-full?seconds=0.5")))
        assert started.wait(5.0)
        assert eventually(lambda: upstream.app.scenario("bh-full").in_flight != 0, step=0.005)
        with pytest.raises(rc.BulkheadFull) as raised:
            client.get("/slow/bh-full?seconds=0.5")
        slow.result()
    assert isinstance(raised.value, httpx.TransportError)
    assert upstream.app.scenario("bh-full").attempts == 1


def test_adaptive_throttle_sheds_load_during_rejections_and_recovers(
    driver: Driver, upstream: RunningServer
) -> None:
    """The upstream rejects 80 % for 20 s (fake time, 20 calls/s), then recovers.

    With k=2 and 20 % accepted, the SRE formula's probability (R - 2A)/(R + 1) rises
    towards 1 and is capped at ``max_rejection_probability`` (0.9): after warm-up the
    upstream should see about 10 % of the calls. Local rejections count as requests (as
    in the book), so recovery takes about one window: 3 s here.
    """
    clock = FakeClock(seed=3)
    name = "throttle"
    upstream.app.set_failure_plan(name, rate=0.8, status=503, seed=1)
    throttle = rc.AdaptiveThrottle(k=2.0, window=3.0)
    client = driver.client(
        base_url=upstream.url,
        clock=clock,
        policy=rc.Policy(retry=None, throttle=throttle, breaker=None),
    )

    def call() -> str:
        try:
            status = driver.request(client, "GET", f"/outage/{name}").status_code
        except driver.ns.LoadShedError:
            return "shed"
        finally:
            clock.advance(0.05)
        return "ok" if status == 200 else "rejected"

    outcomes = [call() for _ in range(400)]
    sent = upstream.app.scenario(name).attempts
    # Without the throttle the upstream would see all 400; the cap allows ~10 % after warm-up.
    assert sent <= 0.1 * 400 + 60, sent
    assert outcomes.count("shed") >= 250

    upstream.app.set_failure_plan(name, rate=0.0)
    recovered = [call() for _ in range(200)]  # 10 s of fake time
    tail = recovered[-40:]  # the last 2 s
    assert tail.count("ok") >= 36, recovered
    first_ok_run = next(
        i for i in range(len(recovered) - 20) if recovered[i : i + 20].count("ok") >= 18
    )
    assert first_ok_run * 0.05 <= 2 * 3.0  # recovered within two windows of the upstream
