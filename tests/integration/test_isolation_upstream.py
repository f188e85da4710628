"""Kill switches against the real upstream: isolate/restore in one client, and across two
processes through a real ``redis-server`` (the server-side counts show what got through)."""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from drivers import Driver
from redis_server import RedisServer, running_redis
from waiting import wait_until

import resilient_client as rc
from resilient_client._breaker._redis import _key_base
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

GUARDED = "GET /status/guarded/{code}"  # with a breaker
BARE = "GET /status/bare/{code}"  # breaker=None
ENDPOINTS = {GUARDED: rc.Policy(), BARE: rc.Policy(breaker=None)}
POLICY = rc.Policy(retry=rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.0, max=0.0)))
_namespaces = itertools.count()

server = pytest.fixture(scope="module", name="server")(running_redis)


@pytest.fixture
def server_up(server: RedisServer) -> RedisServer:
    server.start()
    return server


@pytest.fixture
def namespace() -> str:
    return f"isolation-{next(_namespaces)}"


def scenario_of(key: str) -> str:
    return key.split("/")[2]


def attempts(upstream: RunningServer, key: str) -> int:
    """What the server received for ``key``'s scenario so far."""
    return upstream.app.scenario(scenario_of(key)).attempts


def path_of(key: str) -> str:
    return f"/status/{scenario_of(key)}/200"


@pytest.mark.parametrize("key", [GUARDED, BARE], ids=["with-breaker", "breaker-none"])
def test_an_isolated_endpoint_sends_nothing_until_restored(
    driver: Driver, upstream: RunningServer, key: str
) -> None:
    client = driver.client(
        base_url=upstream.url, clock=FakeClock(), policy=POLICY, endpoints=ENDPOINTS
    )
    assert driver.request(client, "GET", path_of(key)).status_code == 200
    client.isolate(key, reason="provider maintenance until 14:00 UTC")
    for _ in range(3):
        with pytest.raises(driver.ns.CircuitOpenError) as raised:
            driver.request(client, "GET", path_of(key))
        assert raised.value.reason == "isolated"
        assert "provider maintenance until 14:00 UTC" in str(raised.value)
    assert attempts(upstream, key) == 1  # nothing reached the server while isolated, nor retried
    assert client.health()[key].isolated == "provider maintenance until 14:00 UTC"
    assert client.restore(key) is True
    assert driver.request(client, "GET", path_of(key)).status_code == 200
    assert attempts(upstream, key) == 2


# -- across processes, through Redis ---------------------------------------------------------

PROCESS_B = textwrap.dedent(
    """
    import asyncio, sys
    import resilient_client as rc
    redis_url, upstream, kind, namespace = sys.argv[1:5]
    storage = rc.RedisBreakerStorage(redis_url, namespace, timeout=1.0, reconnect_interval=0.0)
    endpoints = {"GET /status/guarded/{code}": rc.Policy(),
                 "GET /status/bare/{code}": rc.Policy(breaker=None)}
    options = dict(base_url=upstream, breaker_storage=storage, endpoints=endpoints,
                   policy=rc.Policy(retry=rc.Retry(max_attempts=3,
                                                   backoff=rc.Backoff(initial=0.0, max=0.0))))
    if kind == "sync":
        client = rc.ResilientClient(**options)
        call = client.get
    else:
        runner = asyncio.Runner()
        client = rc.AsyncResilientClient(**options)
        call = lambda path: runner.run(client.get(path))
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            print(call(line.strip()).status_code, flush=True)
        except rc.CircuitOpenError as error:
            print(f"{error.reason}|{error}", flush=True)
    """
)


class ProcessB:
    """Another process of the fleet: makes one call per line it is sent, says its end."""

    def __init__(self, redis_url: str, upstream: str, kind: str, namespace: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", PROCESS_B, redis_url, upstream, kind, namespace],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._read() == "ready"

    def _read(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        assert line, "process B ended"
        return line.strip()

    def call(self, path: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(path + "\n")
        self._process.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        assert self._process.wait(timeout=30) == 0


@pytest.fixture
def process_b(
    driver: Driver, server_up: RedisServer, upstream: RunningServer, namespace: str
) -> Iterator[ProcessB]:
    other = ProcessB(server_up.url, upstream.url, driver.kind, namespace)
    yield other
    other.close()


def fleet_client(driver: Driver, upstream: RunningServer, storage: Any) -> Any:
    return driver.client(
        base_url=upstream.url, policy=POLICY, endpoints=ENDPOINTS, breaker_storage=storage
    )


@pytest.mark.parametrize("key", [GUARDED, BARE], ids=["with-breaker", "breaker-none"])
def test_an_isolation_in_one_process_holds_in_another_from_its_next_call(
    driver: Driver,
    upstream: RunningServer,
    server_up: RedisServer,
    namespace: str,
    process_b: ProcessB,
    key: str,
) -> None:
    storage = rc.RedisBreakerStorage(server_up.url, namespace, timeout=1.0)
    process_a = fleet_client(driver, upstream, storage)
    assert process_b.call(path_of(key)) == "200"

    process_a.isolate(key, reason="INC-311: provider returns wrong balances")
    assert process_b.call(path_of(key)) == (
        f"isolated|endpoint {key!r} isolated by a kill switch: "
        "INC-311: provider returns wrong balances"
    )
    assert attempts(upstream, key) == 1

    assert process_a.restore(key) is True
    assert process_b.call(path_of(key)) == "200"
    assert attempts(upstream, key) == 2
    storage.close()


def test_redis_down_isolates_in_this_process_with_one_warning(
    driver: Driver, upstream: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    storage = rc.RedisBreakerStorage("redis://127.0.0.1:9/0", "down", timeout=0.2)
    client = fleet_client(driver, upstream, storage)
    with caplog.at_level(logging.WARNING):
        client.isolate(GUARDED, reason="maintenance")
        for _ in range(3):
            with pytest.raises(driver.ns.CircuitOpenError, match="maintenance"):
                driver.request(client, "GET", path_of(GUARDED))
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "isolated in this process only" in warning.getMessage()
    assert "redis://" not in warning.getMessage()  # the URL may hold a password
    assert attempts(upstream, GUARDED) == 0
    assert client.restore(GUARDED) is True
    storage.close()


def test_an_isolation_outlives_the_breaker_keys_ttl(
    driver: Driver, upstream: RunningServer, server_up: RedisServer, namespace: str
) -> None:
    # A tiny key_ttl, and a count window so that every outcome writes the breaker's keys.
    storage = rc.RedisBreakerStorage(server_up.url, namespace, timeout=1.0, key_ttl=0.2)
    breaker = rc.Breaker(window="count", window_size=10, minimum_calls=5, reset_timeout=0.05)
    client = driver.client(
        base_url=upstream.url,
        policy=POLICY,
        endpoints={GUARDED: rc.Policy(breaker=breaker)},
        breaker_storage=storage,
    )
    raw = redis.Redis.from_url(server_up.url)
    base = _key_base(namespace, GUARDED)
    assert driver.request(client, "GET", path_of(GUARDED)).status_code == 200
    client.isolate(GUARDED, reason="maintenance")
    with pytest.raises(driver.ns.CircuitOpenError):
        driver.request(client, "GET", path_of(GUARDED))  # carries the success: keys written
    assert raw.exists(f"{base}:h")
    assert raw.pttl(f"{base}:i") == -1  # no TTL
    wait_until(lambda: not raw.exists(f"{base}:h"), limit=10.0)
    with pytest.raises(driver.ns.CircuitOpenError) as raised:
        driver.request(client, "GET", path_of(GUARDED))
    assert raised.value.reason == "isolated"
    assert upstream.app.scenario("guarded").attempts == 1
    raw.close()
    storage.close()


@pytest.mark.parametrize("key", [GUARDED, BARE], ids=["with-breaker", "breaker-none"])
def test_an_isolation_reason_written_straight_into_redis_stays_one_line(
    driver: Driver, upstream: RunningServer, server_up: RedisServer, namespace: str, key: str
) -> None:
    # isolate() checks its reason; a key written by hand (redis-cli, another tool) is not,
    # and the CircuitOpenError's message, logs and str(snapshot) must stay one line.
    storage = rc.RedisBreakerStorage(server_up.url, namespace, timeout=1.0)
    client = driver.client(
        base_url=upstream.url, policy=POLICY, endpoints=ENDPOINTS, breaker_storage=storage
    )
    raw = redis.Redis.from_url(server_up.url)
    raw.set(f"{_key_base(namespace, key)}:i", "maintenance\nHTTP/1.1 200 OK\u202e")
    with pytest.raises(driver.ns.CircuitOpenError) as raised:
        driver.request(client, "GET", path_of(key))
    assert raised.value.reason == "isolated"
    assert str(raised.value).endswith("maintenance\\nHTTP/1.1 200 OK\\u202e")
    assert all("\n" not in str(snapshot) for snapshot in client.breakers().values())
    raw.close()
    storage.close()
