"""Circuit breakers through the full client, against the real upstream (and a real Redis)."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from breaker_support import run_fleet
from drivers import Driver
from redis_server import RedisServer, running_redis

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

NO_WAIT = rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.0, max=0.0))
_namespaces = itertools.count()


def policy(**breaker: Any) -> rc.Policy:
    return rc.Policy(retry=NO_WAIT, budget=None, breaker=rc.Breaker(**breaker))


def test_an_open_breaker_fails_fast_without_touching_the_network(
    driver: Driver, upstream: RunningServer
) -> None:
    clock = FakeClock()
    client = driver.client(
        base_url=upstream.url, clock=clock, policy=policy(failure_threshold=3, reset_timeout=30.0)
    )
    response = driver.request(client, "GET", "/status/open/503")
    assert response.status_code == 503
    assert upstream.app.scenario("open").attempts == 3
    with pytest.raises(driver.ns.CircuitOpenError) as raised:
        driver.request(client, "GET", "/status/open/503")
    assert isinstance(raised.value, driver.lib.TransportError)
    assert raised.value.endpoint == f"* 127.0.0.1:{upstream.port}"
    assert raised.value.retry_at == pytest.approx(clock.monotonic() + 30.0)
    assert upstream.app.scenario("open").attempts == 3
    snapshot = client.breakers()[raised.value.endpoint]
    assert snapshot.state == "open"


def test_the_retry_loop_does_not_wait_against_an_open_breaker(
    driver: Driver, upstream: RunningServer
) -> None:
    clock = FakeClock()
    retry = rc.Retry(max_attempts=5, backoff=rc.Backoff(initial=1.0, max=1.0, jitter="none"))
    client = driver.client(
        base_url=upstream.url,
        clock=clock,
        policy=rc.Policy(
            retry=retry,
            budget=None,
            # Open for longer than the 1 s wait the retry would need.
            breaker=rc.Breaker(window="consecutive", failure_threshold=2, reset_timeout=30.0),
        ),
    )
    response = driver.request(client, "GET", "/status/spin/503")
    record = response.extensions["resilience"]
    assert (response.status_code, record.attempts, record.stop_reason) == (503, 2, "breaker")
    assert clock.sleeps == [1.0]  # one wait between the two attempts, none after the trip


def test_callers_own_4xx_and_429_do_not_open_the_breaker(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(
        base_url=upstream.url, clock=FakeClock(), policy=policy(failure_threshold=2)
    )
    for path in ["/status/c4/400", "/status/c4/404", "/status/c4/409", "/status/c4/422"] * 2:
        driver.request(client, "GET", path)
    driver.request(client, "GET", "/status/c429/429?retry_after=1")
    assert {s.state for s in client.breakers().values()} == {"closed"}


def test_half_open_admits_one_probe_and_closes_on_success(upstream: RunningServer) -> None:
    clock = FakeClock()
    breaker = rc.Breaker(failure_threshold=1, reset_timeout=10.0, half_open_max_calls=1)
    client = rc.ResilientClient(
        base_url=upstream.url, clock=clock, policy=rc.Policy(retry=None, breaker=breaker)
    )
    assert client.get("/status/probe/503").status_code == 503
    clock.advance(10.0)
    barrier = threading.Barrier(20)

    def probe(_: int) -> str:
        barrier.wait()
        try:
            return str(client.get("/slow/probe?seconds=0.3").status_code)
        except rc.CircuitOpenError:
            return "rejected"

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(probe, range(20)))
    assert results.count("200") == 1
    assert results.count("rejected") == 19
    assert upstream.app.scenario("probe").attempts == 2  # the trip, then one probe
    assert client.get("/ok/probe").status_code == 200  # closed again
    client.close()


def test_concurrent_calls_through_one_breaker_are_not_serialized(upstream: RunningServer) -> None:
    """Real time: 8 threads x 0.2 s through one closed breaker (pybreaker's call(): 1.6 s)."""
    client = rc.ResilientClient(base_url=upstream.url)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: client.get("/slow/parallel?seconds=0.2"), range(8)))
    assert upstream.app.scenario("parallel").peak_concurrency == 8
    client.close()


def test_a_fallback_answers_when_the_breaker_is_open(
    driver: Driver, upstream: RunningServer
) -> None:
    seen: list[str] = []

    def cached(request: httpx.Request, failure: object) -> httpx.Response:
        seen.append(type(failure).__name__)
        return driver.lib.Response(200, json={"cached": True})

    client = driver.client(
        base_url=upstream.url,
        clock=FakeClock(),
        policy=rc.Policy(retry=None, breaker=rc.Breaker(failure_threshold=1), fallback=cached),
    )
    first = driver.request(client, "GET", "/status/fb/503")
    second = driver.request(client, "GET", "/status/fb/503")
    assert first.json() == second.json() == {"cached": True}
    assert first.extensions["resilience"].fallback and second.extensions["resilience"].fallback
    assert seen == ["Response", "CircuitOpenError"]
    assert upstream.app.scenario("fb").attempts == 1


def test_transitions_are_logged_and_reported(
    driver: Driver, upstream: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    client = driver.client(
        base_url=upstream.url, clock=clock, policy=policy(failure_threshold=1, reset_timeout=5.0)
    )
    with caplog.at_level("INFO", logger="resilient_client.breaker"):
        driver.request(client, "GET", "/status/tr/503")
        clock.advance(5.0)
        driver.request(client, "GET", "/ok/tr")
    lines = [r.getMessage() for r in caplog.records if r.name == "resilient_client.breaker"]
    assert any("closed -> open" in line for line in lines)
    assert any("-> closed" in line for line in lines)
    health = client.health()[f"* 127.0.0.1:{upstream.port}"]
    assert health.breaker is not None and health.breaker.state == "closed"


# -- fleet-wide state through Redis ----------------------------------------------------------


redis = pytest.fixture(scope="module", name="redis")(running_redis)


def test_clients_sharing_redis_share_one_breaker(
    driver: Driver, upstream: RunningServer, redis: RedisServer
) -> None:
    namespace = f"client-share-{next(_namespaces)}"
    clients = [
        driver.client(
            base_url=upstream.url,
            clock=FakeClock(),
            # Redis times the open period on its own clock: 30 s outlasts any slow step.
            policy=policy(window="consecutive", failure_threshold=3, reset_timeout=30.0),
            breaker_storage=rc.RedisBreakerStorage(redis.url, namespace),
        )
        for _ in range(2)
    ]
    driver.request(clients[0], "GET", "/status/shared/503")  # three failures: open
    with pytest.raises(driver.ns.CircuitOpenError):
        driver.request(clients[1], "GET", "/status/shared/503")
    # A process's last outcome travels with its next admission (one Redis round trip per
    # call), so each process may add one attempt before it learns: threshold + processes.
    assert 3 <= upstream.app.scenario("shared").attempts <= 3 + 1


def fleet_worker(
    base_url: str, redis_url: str | None, namespace: str, index: int, start: Any
) -> None:
    storage = rc.RedisBreakerStorage(redis_url, namespace, timeout=1.0) if redis_url else None
    client = rc.ResilientClient(
        base_url=base_url,
        policy=rc.Policy(
            retry=None,
            breaker=rc.Breaker(window="consecutive", failure_threshold=5, reset_timeout=30.0),
        ),
        breaker_storage=storage,
    )
    start.wait()
    rejections = 0
    for _ in range(60):
        try:
            client.get("/status/fleet/503")
            rejections = 0
        except rc.CircuitOpenError:
            rejections += 1
            if rejections == 3:
                return
    raise AssertionError("the breaker never opened")


def fleet_attempts(upstream: RunningServer, redis_url: str | None) -> int:
    """Attempts that reached the upstream from 4 worker processes (see fleet_worker)."""
    run_fleet(fleet_worker, upstream.url, redis_url, f"fleet-{next(_namespaces)}")
    return upstream.app.scenario("fleet").attempts


def test_a_fleet_sharing_redis_trips_together(upstream: RunningServer, redis: RedisServer) -> None:
    """4 worker processes against a dead endpoint: at most threshold + 4 attempts reach it."""
    assert fleet_attempts(upstream, redis.url) <= 5 + 4


def test_a_fleet_without_shared_state_pays_the_threshold_per_process(
    upstream: RunningServer,
) -> None:
    assert fleet_attempts(upstream, None) == 4 * 5


def test_breaker_listeners_hear_every_transition(driver: Driver, upstream: RunningServer) -> None:
    import pybreaker

    heard: list[tuple[str, str, str]] = []

    class Ours:
        def state_change(self, breaker: Any, old: str, new: str) -> None:
            heard.append(("ours", old, new))

    class Theirs(pybreaker.CircuitBreakerListener):  # type: ignore[misc]
        def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
            heard.append(("pybreaker", old_state.name, new_state.name))

    clock = FakeClock()
    client = driver.client(
        base_url=upstream.url,
        clock=clock,
        policy=policy(failure_threshold=1, reset_timeout=5.0),
        breaker_listeners=[Ours(), Theirs()],
    )
    driver.request(client, "GET", "/status/heard/503")
    clock.advance(5.0)
    driver.request(client, "GET", "/ok/heard")
    assert ("ours", "closed", "open") in heard
    assert ("ours", "half_open", "closed") in heard
    assert ("pybreaker", "closed", "open") in heard
