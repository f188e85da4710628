"""Failover across origins against real upstreams: two chaos servers on 127.0.0.1, and a
port nobody listens on (a primary that is down refuses connections).

What each server received is read from its own records: which origin an attempt went to,
the idempotency key it carried, and that an origin refused by its breaker got nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from drivers import Driver
from otel_support import Otel, attrs
from redis_server import RedisServer, running_redis

import resilient_client as rc
from resilient_client.chaos import ChaosApp, RunningServer, serve
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

NO_WAIT = rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.0, max=0.0))
POLICY = rc.Policy(retry=NO_WAIT, budget=None, breaker=None)
PROBE_AFTER = 30.0


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """Sync and async over httpx (httpx2 runs once, below)."""
    instance = Driver(request.param)
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def secondary_server() -> Iterator[RunningServer]:
    with serve(ChaosApp()) as server:
        yield server


@pytest.fixture
def secondary(secondary_server: RunningServer) -> RunningServer:
    secondary_server.app.reset()
    return secondary_server


redis = pytest.fixture(scope="module", name="redis")(running_redis)


@pytest.fixture
def down() -> str:
    """The URL of a port on 127.0.0.1 nobody listens on: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def failover_client(driver: Driver, primary: str, secondary: RunningServer, **kwargs: Any) -> Any:
    kwargs.setdefault("policy", POLICY)
    kwargs.setdefault("clock", FakeClock())
    return driver.client(
        base_url=primary,
        failover=rc.Failover(origins=(secondary.url,), probe_after=PROBE_AFTER),
        **kwargs,
    )


def keys(server: RunningServer, name: str) -> list[str | None]:
    return [r.headers.get("idempotency-key") for r in server.app.scenario(name).requests]


def test_a_primary_refusing_connections_fails_over_keeping_the_idempotency_key(
    driver: Driver, down: str, secondary: RunningServer
) -> None:
    client = failover_client(driver, down, secondary)
    response = driver.request(client, "POST", "/payments/moved", json={"amount": 7})
    assert response.status_code == 201
    record = rc.resilience_info(response)
    assert record is not None
    assert record.origin == secondary.url
    assert record.attempts == 2
    assert record.retry_reasons == ("connect_error",)
    assert record.idempotency_key is not None
    assert keys(secondary, "moved") == [record.idempotency_key]
    assert secondary.app.effects("moved") == 1


def test_later_calls_go_straight_to_the_origin_that_answered(
    driver: Driver, down: str, secondary: RunningServer
) -> None:
    client = failover_client(driver, down, secondary)
    driver.request(client, "GET", "/ok/first")
    records = [rc.resilience_info(driver.request(client, "GET", "/ok/later")) for _ in range(3)]
    assert [(r.attempts, r.origin) for r in records if r] == [(1, secondary.url)] * 3
    assert secondary.app.scenario("later").attempts == 3


def test_a_retried_503_on_the_primary_lands_on_the_next_origin_with_the_same_key(
    driver: Driver, upstream: RunningServer, secondary: RunningServer
) -> None:
    upstream.app.set_failure_plan("busy", rate=1.0, status=503)
    client = failover_client(driver, upstream.url, secondary)
    response = driver.request(client, "POST", "/outage/busy", json={"n": 1})
    assert response.status_code == 200
    record = rc.resilience_info(response)
    assert record is not None
    assert (record.origin, record.retry_reasons) == (secondary.url, ("status_503",))
    assert keys(upstream, "busy") == keys(secondary, "busy") == [record.idempotency_key]
    # The request went to the secondary as the caller made it: same path and query.
    (seen,) = secondary.app.scenario("busy").requests
    assert (seen.method, seen.path) == ("POST", "/outage/busy")
    assert seen.headers["host"] == secondary.url.removeprefix("http://")


def test_calls_come_back_to_the_primary_once_its_probe_succeeds(
    driver: Driver, down: str, secondary: RunningServer
) -> None:
    clock = FakeClock()
    client = failover_client(driver, down, secondary, clock=clock)
    assert rc.resilience_info(driver.request(client, "GET", "/ok/away")).origin == secondary.url  # type: ignore[union-attr]
    port = int(down.rsplit(":", 1)[1])
    with serve(ChaosApp(), port=port) as primary:
        clock.advance(PROBE_AFTER - 1.0)
        before = rc.resilience_info(driver.request(client, "GET", "/ok/back"))
        assert before is not None and before.origin == secondary.url
        assert primary.app.scenario("back").attempts == 0  # not probed before its time
        clock.advance(1.0)
        records = [rc.resilience_info(driver.request(client, "GET", "/ok/back")) for _ in range(3)]
        assert [r.origin for r in records if r] == [down] * 3
        assert primary.app.scenario("back").attempts == 3
    assert secondary.app.scenario("back").attempts == 1


def test_a_failed_probe_keeps_calls_on_the_secondary_for_another_period(
    driver: Driver, down: str, secondary: RunningServer
) -> None:
    clock = FakeClock()
    client = failover_client(driver, down, secondary, clock=clock)
    driver.request(client, "GET", "/ok/stay")
    clock.advance(PROBE_AFTER)
    probe = rc.resilience_info(driver.request(client, "GET", "/ok/stay"))
    assert probe is not None
    assert (probe.attempts, probe.origin) == (2, secondary.url)  # the primary, then back
    clock.advance(PROBE_AFTER / 2)
    after = rc.resilience_info(driver.request(client, "GET", "/ok/stay"))
    assert after is not None and after.attempts == 1


def test_an_open_primary_breaker_sends_attempts_elsewhere_until_its_probe_closes_it(
    driver: Driver, upstream: RunningServer, secondary: RunningServer
) -> None:
    clock = FakeClock()
    breaker = rc.Breaker(failure_threshold=1, reset_timeout=10.0)
    client = failover_client(
        driver, upstream.url, secondary, clock=clock, policy=rc.Policy(retry=None, breaker=breaker)
    )
    upstream.app.set_failure_plan("trip", rate=1.0, status=503)
    assert driver.request(client, "GET", "/outage/trip").status_code == 503  # opens it
    for _ in range(3):  # refused by the primary's breaker: sent to the secondary at once
        response = driver.request(client, "GET", "/outage/trip")
        record = rc.resilience_info(response)
        assert response.status_code == 200
        assert record is not None and (record.attempts, record.origin) == (1, secondary.url)
    assert upstream.app.scenario("trip").attempts == 1
    names = set(client.breakers())
    primary_key = f"* 127.0.0.1:{upstream.port}"
    assert names == {primary_key, f"{primary_key} @ {secondary.url}"}
    assert client.breakers()[primary_key].state == "open"

    upstream.app.set_failure_plan("trip", rate=0.0)
    clock.advance(10.0)  # the break is over: the next call is the primary's probe
    records = [rc.resilience_info(driver.request(client, "GET", "/outage/trip")) for _ in range(2)]
    assert [r.origin for r in records if r] == [upstream.url] * 2
    assert upstream.app.scenario("trip").attempts == 3
    assert client.breakers()[primary_key].state == "closed"


def test_every_origin_refused_by_its_breaker_fails_fast_with_the_primarys_error(
    driver: Driver, upstream: RunningServer, secondary: RunningServer
) -> None:
    breaker = rc.Breaker(failure_threshold=1, reset_timeout=10.0)
    policy = rc.Policy(retry=rc.Retry(max_attempts=2, backoff=rc.Backoff(initial=0.0, max=0.0)),
                       budget=None, breaker=breaker)  # fmt: skip
    client = failover_client(driver, upstream.url, secondary, policy=policy)
    for server in (upstream, secondary):
        server.app.set_failure_plan("down", rate=1.0, status=503)
    assert driver.request(client, "GET", "/outage/down").status_code == 503  # both open
    with pytest.raises(rc.CircuitOpenError) as refused:
        driver.request(client, "GET", "/outage/down")
    assert refused.value.endpoint == f"* 127.0.0.1:{upstream.port}"
    record = rc.resilience_info(refused.value)
    assert record is not None and (record.attempts, record.origin) == (0, None)
    assert upstream.app.scenario("down").attempts == secondary.app.scenario("down").attempts == 1


def test_a_request_to_another_host_is_never_failed_over(
    driver: Driver, down: str, secondary: RunningServer, upstream: RunningServer
) -> None:
    client = failover_client(driver, down, secondary)
    upstream.app.set_failure_plan("elsewhere", rate=1.0, status=503)
    response = driver.request(client, "GET", f"{upstream.url}/outage/elsewhere")
    record = rc.resilience_info(response)
    assert response.status_code == 503
    # Not routed by failover: no origin named, every attempt at the host it names.
    assert record is not None and (record.attempts, record.origin) == (3, None)
    assert upstream.app.scenario("elsewhere").attempts == 3
    assert secondary.app.scenario("elsewhere").attempts == 0


def test_the_callers_request_is_left_addressed_to_the_primary(
    driver: Driver, down: str, secondary: RunningServer
) -> None:
    client = failover_client(driver, down, secondary)
    request = client.build_request("GET", "/echo/mine")
    response = driver.run(client.send(request))
    assert rc.resilience_info(response).origin == secondary.url  # type: ignore[union-attr]
    assert str(request.url) == f"{down}/echo/mine"
    assert request.headers["host"] == down.removeprefix("http://")


def test_attempt_spans_name_the_origin_each_attempt_went_to(
    driver: Driver, upstream: RunningServer, secondary: RunningServer, otel: Otel
) -> None:
    upstream.app.set_failure_plan("traced", rate=1.0, status=503)
    client = failover_client(driver, upstream.url, secondary, observers=[otel.observer()])
    assert driver.request(client, "GET", "/outage/traced?x=1").status_code == 200
    spans = [attrs(span) for span in otel.attempt_spans()]
    where = [(s["server.port"], s["url.full"], s.get("http.response.status_code")) for s in spans]
    assert where == [
        (upstream.port, f"{upstream.url}/outage/traced?x=1", 503),
        (secondary.port, f"{secondary.url}/outage/traced?x=1", 200),
    ]
    durations = otel.points("http.client.request.duration")
    ports = sorted(
        (attrs(p)["server.port"], attrs(p)["http.response.status_code"]) for p in durations
    )
    assert ports == sorted([(upstream.port, 503), (secondary.port, 200)])
    # The trace context went to the origin that was asked.
    (seen,) = secondary.app.scenario("traced").requests
    assert (
        seen.headers["traceparent"].split("-")[2]
        == otel.attempt_spans()[1].context.span_id.to_bytes(8, "big").hex()
    )


def test_failover_over_httpx2(down: str, secondary: RunningServer) -> None:
    driver = Driver("sync", "httpx2")
    try:
        client = driver.client(
            base_url=down,
            clock=FakeClock(),
            policy=POLICY,
            failover=rc.Failover(origins=(secondary.url,)),
        )
        response = driver.request(client, "GET", "/ok/two")
        assert response.status_code == 200
        assert rc.resilience_info(response).origin == secondary.url  # type: ignore[union-attr]
    finally:
        driver.close()


def test_without_failover_no_origin_is_named(driver: Driver, upstream: RunningServer) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock())
    record = rc.resilience_info(driver.request(client, "GET", "/ok/plain"))
    assert record is not None and record.attempts == 1 and record.origin is None


def test_a_primary_breaker_opened_elsewhere_in_the_fleet_sends_the_first_call_elsewhere(
    driver: Driver, upstream: RunningServer, secondary: RunningServer, redis: RedisServer
) -> None:
    redis.start()
    policy = rc.Policy(retry=None, breaker=rc.Breaker(failure_threshold=1, reset_timeout=60.0))
    namespace = f"failover-{driver.kind}"
    shared = [rc.RedisBreakerStorage(redis.url, namespace) for _ in range(2)]
    upstream.app.set_failure_plan("fleet", rate=1.0, status=503)
    tripping = failover_client(driver, upstream.url, secondary, policy=policy,
                               breaker_storage=shared[0])  # fmt: skip
    assert driver.request(tripping, "GET", "/outage/fleet").status_code == 503
    # (a closed-state outcome travels to the storage with the process's next admission)
    assert driver.request(tripping, "GET", "/outage/fleet").status_code == 200
    # Another process of the fleet: its first call never reaches the primary.
    other = failover_client(driver, upstream.url, secondary, policy=policy,
                            breaker_storage=shared[1])  # fmt: skip
    response = driver.request(other, "GET", "/outage/fleet")
    record = rc.resilience_info(response)
    assert response.status_code == 200
    assert record is not None and (record.attempts, record.origin) == (1, secondary.url)
    assert upstream.app.scenario("fleet").attempts == 1
    for storage in shared:
        storage.close()


# -- kill switches and failover: an isolated endpoint goes to no origin ------------------


@pytest.mark.parametrize("breaker", [None, rc.Breaker(failure_threshold=5)])
def test_an_isolated_endpoint_goes_to_no_origin_even_while_calls_stay_on_another(
    driver: Driver, down: str, secondary: RunningServer, breaker: rc.Breaker | None
) -> None:
    # Two clients of one fleet share their breaker storage: one, stuck on the secondary
    # after the primary refused connections, must obey the other's isolation at once.
    storage = rc.MemoryBreakerStorage()
    policy = rc.Policy(retry=NO_WAIT, budget=None, breaker=breaker)
    stuck = failover_client(driver, down, secondary, policy=policy, breaker_storage=storage)
    driver.request(stuck, "GET", "/ok/before")
    assert secondary.app.scenario("before").attempts == 1
    operator = failover_client(driver, down, secondary, policy=policy, breaker_storage=storage)
    key = f"* {down.removeprefix('http://')}"
    operator.isolate(key, reason="INC-7 provider returns garbage")
    with pytest.raises(rc.CircuitOpenError) as raised:
        driver.request(stuck, "GET", "/ok/isolated")
    assert raised.value.reason == "isolated"
    assert secondary.app.scenario("isolated").attempts == 0
    operator.restore(key)
    assert driver.request(stuck, "GET", "/ok/after").status_code == 200
    assert secondary.app.scenario("after").attempts == 1


def test_a_local_isolation_stops_a_failover_client_before_any_origin(
    driver: Driver, down: str, secondary: RunningServer
) -> None:
    client = failover_client(driver, down, secondary)
    client.isolate(f"* {down.removeprefix('http://')}", reason="maintenance")
    with pytest.raises(rc.CircuitOpenError) as raised:
        driver.request(client, "GET", "/ok/local")
    assert raised.value.reason == "isolated"
    assert secondary.app.scenario("local").attempts == 0
