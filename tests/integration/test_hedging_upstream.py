"""Hedging against the real upstream: ``/stall/{name}?times=1`` stalls a name's first
request and answers the next at once, and the server counts what it received.

Real time, kept short: a hedge delay of 50 ms against stalls of 2 s or more, so a hedged
call ends well before its stalled attempt would, on a noisy 2-core machine too."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from drivers import Driver
from otel_support import Otel, attrs
from waiting import wait_until

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.typing import AttemptEnded

_names = itertools.count()
HEDGING = rc.Hedging(delay=0.05)
STALL = 3.0  # seconds a stalled attempt would take; a hedged call ends long before
FAST = 1.0  # a hedged call's bound: the hedge's delay and answer, with a wide margin


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """Sync and async over httpx (one test below runs httpx2)."""
    instance = Driver(request.param)
    yield instance
    instance.close()


@pytest.fixture
def name() -> str:
    return f"hedge{next(_names)}"


def _client(driver: Driver, upstream: RunningServer, **policy: Any) -> Any:
    return driver.client(base_url=upstream.url, policy=rc.Policy(hedging=HEDGING, **policy))


def _timed(driver: Driver, client: Any, method: str, url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = driver.request(client, method, url)
    return response, time.monotonic() - started


def test_a_stalled_attempt_is_hedged_and_the_hedge_answers(
    driver: Driver, upstream: RunningServer, name: str
) -> None:
    client = _client(driver, upstream)
    response, took = _timed(driver, client, "GET", f"/stall/{name}?times=1&seconds={STALL}")
    assert response.status_code == 200
    assert response.json()["attempt"] == 2  # the hedge's answer
    assert took < FAST
    info = rc.resilience_info(response)
    assert info is not None
    assert (info.attempts, info.hedges) == (2, 1)
    assert upstream.app.scenario(name).attempts == 2


def test_a_quick_answer_is_not_hedged(driver: Driver, upstream: RunningServer, name: str) -> None:
    client = _client(driver, upstream)
    response = driver.request(client, "GET", f"/ok/{name}")
    info = rc.resilience_info(response)
    assert info is not None
    assert (info.attempts, info.hedges) == (1, 0)
    assert upstream.app.scenario(name).attempts == 1


def test_a_loser_lets_go_of_the_server_by_its_cancel_or_its_attempt_limit(
    driver: Driver, upstream: RunningServer, name: str
) -> None:
    # Async cancels the loser at once; a sync loser's thread ends by its attempt limit.
    client = _client(driver, upstream, timeouts=rc.Timeouts(attempt=0.5))
    response, took = _timed(driver, client, "GET", f"/stall/{name}?times=1&seconds=30")
    assert response.status_code == 200
    assert took < 0.45  # the caller never waits for the loser
    wait_until(lambda: upstream.app.scenario(name).in_flight == 0, limit=2.0)


def test_losers_connections_go_back_to_the_pool(
    driver: Driver, upstream: RunningServer, name: str
) -> None:
    # Each loser would answer 0.3 s late: async cancels it, sync closes its late answer.
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    inner = driver.lib.AsyncHTTPTransport if driver.is_async else driver.lib.HTTPTransport
    transport = driver.transport(inner(limits=limits), policy=rc.Policy(hedging=HEDGING))
    client = driver.plain_client(base_url=upstream.url, transport=transport)
    for i in range(6):
        response = driver.request(client, "GET", f"/stall/{name}-{i}?times=1&seconds=0.3")
        assert response.status_code == 200
        assert rc.resilience_info(response).hedges == 1  # type: ignore[union-attr]
    wait_until(
        lambda: all(upstream.app.scenario(f"{name}-{i}").in_flight == 0 for i in range(6)),
        limit=2.0,
    )
    pool = transport._inner._pool
    # The server is done before a sync loser's thread has read and closed its late
    # answer: the pool settles a moment after.
    wait_until(lambda: all(c.is_idle() or c.is_closed() for c in pool.connections), limit=2.0)
    assert len(pool.connections) <= 2
    response, took = _timed(driver, client, "GET", f"/ok/{name}")
    assert response.status_code == 200
    assert took < 0.3  # no connection wedged: the pool had one at once


def test_a_post_without_a_key_is_never_hedged(
    driver: Driver, upstream: RunningServer, name: str
) -> None:
    client = _client(driver, upstream, idempotency=None)
    response, took = _timed(driver, client, "POST", f"/stall/{name}?times=1&seconds=0.3")
    assert response.status_code == 200
    assert took >= 0.3  # it waited for its one attempt
    info = rc.resilience_info(response)
    assert info is not None
    assert (info.attempts, info.hedges) == (1, 0)
    assert upstream.app.scenario(name).attempts == 1


def test_a_keyed_post_is_hedged_with_the_same_key(
    driver: Driver, upstream: RunningServer, name: str
) -> None:
    client = _client(driver, upstream)  # the default idempotency keys POST
    response, took = _timed(driver, client, "POST", f"/stall/{name}?times=1&seconds={STALL}")
    assert response.status_code == 200
    assert took < FAST
    info = rc.resilience_info(response)
    assert info is not None and info.hedges == 1
    keys = {r.headers.get("idempotency-key") for r in upstream.app.scenario(name).requests}
    assert keys == {info.idempotency_key}


def test_no_hedge_once_the_budget_is_spent(
    driver: Driver, upstream: RunningServer, name: str
) -> None:
    client = _client(driver, upstream, budget=rc.RetryBudget(ratio=0.0, min_per_second=0.0))
    response, took = _timed(driver, client, "GET", f"/stall/{name}?times=1&seconds=0.3")
    assert response.status_code == 200
    assert took >= 0.3
    info = rc.resilience_info(response)
    assert info is not None
    assert (info.attempts, info.hedges) == (1, 0)
    assert upstream.app.scenario(name).attempts == 1


def test_spans_mark_the_hedge(
    driver: Driver, upstream: RunningServer, otel: Otel, name: str
) -> None:
    client = driver.client(
        base_url=upstream.url,
        policy=rc.Policy(hedging=HEDGING),
        observers=[otel.observer()],
    )
    response = driver.request(client, "GET", f"/stall/{name}?times=1&seconds={STALL}")
    assert response.status_code == 200
    first, hedge = sorted(otel.attempt_spans(), key=lambda s: s.start_time or 0)
    assert "resilient_client.hedge" not in attrs(first)
    assert attrs(hedge)["resilient_client.hedge"] is True
    assert attrs(hedge)["http.response.status_code"] == 200
    assert "error.type" not in attrs(first)  # the loser was cancelled, not failed
    assert first.end_time is not None and first.end_time <= hedge.end_time + 10**8  # type: ignore[operator]
    call = attrs(otel.call_span())
    assert (call["resilient_client.attempts"], call["resilient_client.hedges"]) == (2, 1)
    # each attempt carried its own trace context
    sent = [r.headers.get("traceparent") for r in upstream.app.scenario(name).requests]
    assert len(set(sent)) == 2


def test_hedging_over_httpx2(upstream: RunningServer, name: str) -> None:
    driver = Driver("async", "httpx2")
    try:
        client = _client(driver, upstream)
        response, took = _timed(driver, client, "GET", f"/stall/{name}?times=1&seconds={STALL}")
        assert response.status_code == 200
        assert took < FAST
        assert rc.resilience_info(response).hedges == 1  # type: ignore[union-attr]
    finally:
        driver.close()


def test_the_breaker_hears_the_winner_only(
    driver: Driver, upstream: RunningServer, name: str
) -> None:
    client = _client(driver, upstream)
    driver.request(client, "GET", f"/stall/{name}?times=1&seconds={STALL}")
    (health,) = client.health().values()
    assert health.breaker is not None
    assert (health.breaker.calls, health.breaker.failures) == (1, 0)  # the loser: nothing
    assert health.breaker.probes_in_flight == 0


def test_a_cancelled_call_cancels_every_attempt_of_its_race(
    upstream: RunningServer, name: str
) -> None:
    # Async only: a sync call cannot be cancelled from outside.
    ended: list[Any] = []

    class Ends:
        def on_event(self, call: object, event: object) -> None:
            if isinstance(event, AttemptEnded):
                ended.append(event)

    async def cancelled_call() -> None:
        policy = rc.Policy(hedging=HEDGING)
        async with rc.AsyncResilientClient(
            base_url=upstream.url, policy=policy, observers=[Ends()]
        ) as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):  # both attempts stall: neither answers
                    await client.get(f"/stall/{name}?seconds={STALL}")

    asyncio.run(cancelled_call())
    assert sorted(e.attempt for e in ended) == [1, 2]
    assert all(isinstance(e.error, asyncio.CancelledError) for e in ended)
    wait_until(lambda: upstream.app.scenario(name).in_flight == 0, limit=2.0)


@pytest.mark.parametrize("breaker", [None, rc.Breaker(failure_threshold=5)])
def test_an_isolated_endpoint_starts_no_race(
    driver: Driver, upstream: RunningServer, name: str, breaker: rc.Breaker | None
) -> None:
    # The kill switch holds for hedged calls too: neither the first attempt nor a hedge.
    client = _client(driver, upstream, breaker=breaker)
    key = f"* {upstream.url.removeprefix('http://')}"
    client.isolate(key, reason="maintenance")
    with pytest.raises(rc.CircuitOpenError) as raised:
        driver.request(client, "GET", f"/stall/{name}?times=1&seconds={STALL}")
    assert raised.value.reason == "isolated"
    assert upstream.app.scenario(name).attempts == 0
    assert client.restore(key)
    assert driver.request(client, "GET", f"/ok/{name}").status_code == 200


def test_a_slow_tail_of_five_percent_is_cut_for_five_percent_more_attempts(
    driver: Driver, upstream: RunningServer, name: str
) -> None:
    # /stall with p=0.05 stalls the requests its seeded draw picks (the same every run);
    # the test draws them too, with a seed where no stall is followed by another.
    calls = 60

    def stalls(attempt: int, seed: int) -> bool:
        return random.Random(f"{name}:{attempt}:{seed}").random() < 0.05

    seed = next(
        s
        for s in range(200)
        if any(stalls(a, s) for a in range(1, calls + 1))
        and not any(stalls(a, s) and stalls(a + 1, s) for a in range(1, 2 * calls))
    )
    # A longer delay than the other tests': a normal answer slowed past it by a loaded
    # machine would be hedged too and shift the server's numbering.
    client = driver.client(base_url=upstream.url, policy=rc.Policy(hedging=rc.Hedging(delay=0.2)))
    url = f"/stall/{name}?p=0.05&seed={seed}&seconds={STALL}"
    slowest, hedges, expected, attempt = 0.0, 0, 0, 1
    for _ in range(calls):
        response, took = _timed(driver, client, "GET", url)
        assert response.status_code == 200
        slowest = max(slowest, took)
        info = rc.resilience_info(response)
        assert info is not None
        hedges += info.hedges
        stalled = stalls(attempt, seed)  # the server numbers this call's attempts next
        expected += stalled
        attempt += 2 if stalled else 1
    assert slowest < FAST  # no call waited for its stall
    assert hedges == expected >= 1
    assert upstream.app.scenario(name).attempts == calls + expected
    assert calls + expected <= 1.1 * calls
