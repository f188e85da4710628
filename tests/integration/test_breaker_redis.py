"""Breakers sharing state through a real ``redis-server`` on 127.0.0.1.

Also checks that the Lua port decides exactly like the in-process state machine, and
that a fleet of processes calling a dead upstream trips together.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from breaker_support import EP, SPAWN, breaker_over, call, free_port, run_fleet

# pytest puts this directory on sys.path (tests/ is not a package).
from redis_server import RedisServer, RedisServerUnavailable, redis_server, running_redis

from resilient_client._breaker import (
    Breaker,
    BreakerRegistry,
    EndpointBreaker,
    Outcome,
    Permit,
    Rejection,
)
from resilient_client._breaker._redis import RedisBreakerStorage, _key_base
from resilient_client._breaker._storage import MemoryBreakerStorage
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

_namespaces = itertools.count()


server = pytest.fixture(scope="module", name="server")(running_redis)


@pytest.fixture
def server_up(server: RedisServer) -> RedisServer:
    server.start()  # a test before may have stopped it
    return server


@pytest.fixture
def namespace() -> str:
    return f"test-{next(_namespaces)}"


@pytest.fixture
def storage(server_up: RedisServer, namespace: str) -> Iterator[RedisBreakerStorage]:
    storage = RedisBreakerStorage(server_up.url, namespace, reconnect_interval=0.0, timeout=0.5)
    yield storage
    storage.close()


@pytest.fixture
def raw(server_up: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server_up.url)
    yield client
    client.close()


def end_break(raw: redis.Redis, namespace: str) -> None:
    """Make the open state due now, as if reset_timeout had passed."""
    raw.hset(f"{_key_base(namespace, EP)}:h", "ou", 0)


# -- sharing -----------------------------------------------------------------------------


def test_breakers_of_two_registries_trip_together(storage: RedisBreakerStorage) -> None:
    a = breaker_over(storage, failure_threshold=4, reset_timeout=30.0)
    b = breaker_over(storage, failure_threshold=4, reset_timeout=30.0)
    attempts = sum(isinstance(call((a, b)[turn % 2], "failure"), Permit) for turn in range(8))
    assert attempts <= 4 + 2  # alone, each would have made 4
    for breaker in (a, b):
        rejection = breaker.admit()
        assert isinstance(rejection, Rejection)
        assert rejection.retry_at - time.monotonic() == pytest.approx(30.0, abs=1.0)
        assert breaker.snapshot().shared


def test_half_open_admits_max_calls_across_the_fleet(
    storage: RedisBreakerStorage, raw: redis.Redis, namespace: str
) -> None:
    policy = {"failure_threshold": 1, "half_open_max_calls": 2, "reset_timeout": 30.0}
    breakers = [breaker_over(storage, **policy) for _ in range(4)]
    call(breakers[0], "failure")
    breakers[0].admit()
    end_break(raw, namespace)
    results: list[Permit | Rejection] = []

    def worker(index: int, start: threading.Barrier) -> None:
        start.wait()
        results.append(breakers[index % 4].admit())

    run_fleet(worker, workers=20, processes=False, timeout=10.0)
    assert len(results) == 20
    probes = [r for r in results if isinstance(r, Permit)]
    assert len(probes) == 2
    assert all(p.probe for p in probes)


def test_a_released_probe_frees_the_fleet_slot(
    storage: RedisBreakerStorage, raw: redis.Redis, namespace: str
) -> None:
    a = breaker_over(storage, failure_threshold=1)
    b = breaker_over(storage, failure_threshold=1)
    call(a, "failure")
    a.admit()
    end_break(raw, namespace)
    probe = a.admit()
    assert isinstance(probe, Permit)
    assert isinstance(b.admit(), Rejection)
    a.release(probe)
    probe = b.admit()
    assert isinstance(probe, Permit)
    b.record(probe, "success", 0.01)
    assert isinstance(a.admit(), Permit)
    assert a.snapshot().state == "closed"


def test_a_fleet_half_open_rejection_tells_when_to_retry(
    storage: RedisBreakerStorage, raw: redis.Redis, namespace: str
) -> None:
    a = breaker_over(storage, failure_threshold=1, reset_timeout=30.0)
    b = breaker_over(storage, failure_threshold=1, reset_timeout=30.0)
    call(a, "failure")
    a.admit()
    end_break(raw, namespace)
    probe = a.admit()
    assert isinstance(probe, Permit) and probe.probe
    rejection = b.admit()
    assert isinstance(rejection, Rejection)
    assert rejection.state == "half_open"
    assert rejection.retry_at - time.monotonic() == pytest.approx(30.0, abs=1.0)  # the lease
    snap = b.snapshot()
    assert (snap.state, snap.shared, snap.retry_at) == ("half_open", True, rejection.retry_at)
    assert b.retry_at() == rejection.retry_at
    a.release(probe)
    assert isinstance(b.admit(), Permit)
    assert b.retry_at() is None


def test_a_rate_exactly_at_the_threshold_trips_in_redis(storage: RedisBreakerStorage) -> None:
    # Lua numbers are doubles: 0.07 * 100 is 7.000000000000001 there too.
    breaker = breaker_over(
        storage, window="count", window_size=100, minimum_calls=100, failure_rate_threshold=0.07
    )
    for outcome in ["success"] * 93 + ["failure"] * 7:
        assert isinstance(call(breaker, outcome), Permit)  # type: ignore[arg-type]
    rejection = breaker.admit()  # carries the 100th outcome: 7 of 100 failed
    assert isinstance(rejection, Rejection)
    assert rejection.state == "open"


def test_every_key_carries_a_ttl(server_up: RedisServer, raw: redis.Redis, namespace: str) -> None:
    storage = RedisBreakerStorage(server_up.url, namespace, key_ttl=60.0)
    breaker = breaker_over(
        storage, window="count", window_size=4, minimum_calls=4, reset_timeout=1.0
    )
    for _ in range(5):
        call(breaker, "failure")
    end_break(raw, namespace)
    assert isinstance(breaker.admit(), Permit)  # a probe: the probe set exists too
    keys = raw.keys(f"{namespace}:*")
    names = [k.decode() if isinstance(k, bytes) else str(k) for k in keys]
    assert {name.rsplit(":", 1)[1] for name in names} >= {"h", "p"}
    assert all(0 < raw.pttl(key) <= 60_000 for key in keys)
    storage.close()


def test_a_closed_call_is_one_round_trip(storage: RedisBreakerStorage, raw: redis.Redis) -> None:
    breaker = breaker_over(storage, failure_threshold=1000)
    call(breaker, "success")  # loads the script if this server has not seen it
    before_client = storage.round_trips
    before_server = raw.info("commandstats")["cmdstat_evalsha"]["calls"]
    for outcome in ["success", "failure"] * 50:
        call(breaker, outcome)  # type: ignore[arg-type]
    assert storage.round_trips - before_client == 100
    # INFO itself is not an EVALSHA: the server saw exactly one script call per call.
    assert raw.info("commandstats")["cmdstat_evalsha"]["calls"] - before_server == 100


def test_successes_without_a_failure_streak_write_nothing(
    storage: RedisBreakerStorage, raw: redis.Redis
) -> None:
    breaker = breaker_over(storage, failure_threshold=1000)
    call(breaker, "failure")
    call(breaker, "success")
    call(breaker, "success")  # sends the success that ended the streak: one write
    raw.config_resetstat()
    for _ in range(20):
        call(breaker, "success")
    stats = raw.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 20
    assert not any(name in stats for name in ("cmdstat_hset", "cmdstat_pexpire"))


async def test_async_breakers_share_state_with_sync_ones(storage: RedisBreakerStorage) -> None:
    sync = breaker_over(storage, failure_threshold=3)
    async_ = breaker_over(storage, failure_threshold=3)
    for _ in range(3):
        permit = await async_.aadmit()
        assert isinstance(permit, Permit)
        await async_.arecord(permit, "failure", 0.01)
    assert isinstance(await async_.aadmit(), Rejection)
    assert isinstance(sync.admit(), Rejection)
    await storage.aclose()


# -- Redis down, Redis back --------------------------------------------------------------


def test_calls_go_on_while_redis_is_down_and_share_again_when_it_is_back(
    server_up: RedisServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = RedisBreakerStorage(
        server_up.url, namespace, timeout=0.5, reconnect_interval=0.0, warn_interval=60.0
    )
    a = breaker_over(storage, failure_threshold=3)
    b = breaker_over(storage, failure_threshold=3)
    assert isinstance(call(a, "success"), Permit)
    assert a.snapshot().shared

    server_up.stop()
    with caplog.at_level(logging.INFO, logger="resilient_client.breaker"):
        results = [call(a, "failure") for _ in range(10)]
    assert [isinstance(r, Permit) for r in results] == [True] * 3 + [False] * 7
    assert (a.snapshot().state, a.snapshot().shared) == ("open", False)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [("unreachable" in r.getMessage()) for r in warnings] == [True, False]
    # ... one storage warning, and one for this process's own trip.

    server_up.start()  # empty: the fleet's breaker is closed
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="resilient_client.breaker"):
        assert isinstance(a.admit(), Permit)
    assert a.snapshot().shared
    messages = [r.getMessage() for r in caplog.records]
    assert any("reachable again" in m for m in messages)
    assert any("open -> closed" in m for m in messages)

    attempts = sum(isinstance(call((a, b)[turn % 2], "failure"), Permit) for turn in range(8))
    assert attempts <= 3 + 2
    assert isinstance(b.admit(), Rejection)
    storage.close()


# -- the Lua port decides like the Python state machine ----------------------------------

# ("success"|"failure"|"ignored", duration), or ("advance", seconds; 0 = 30): the open
# period ends (in Redis: made due now), whatever its length.
Step = tuple[str, float]

S, F, IGN, ADVANCE = "success", "failure", "ignored", "advance"

SCENARIOS: dict[str, tuple[dict[str, Any], list[Step]]] = {
    "consecutive": (
        {"failure_threshold": 3, "success_threshold": 2},
        [(F, 0.0), (F, 0.0), (S, 0.0), (F, 0.0), (IGN, 0.0), (F, 0.0), (F, 0.0), (F, 0.0),
         (ADVANCE, 0.0), (S, 0.0), (S, 0.0), (S, 0.0), (F, 0.0)],
    ),
    "count": (
        {"window": "count", "window_size": 6, "minimum_calls": 4, "failure_rate_threshold": 0.5},
        [(S, 0.0), (S, 0.0), (S, 0.0), (S, 0.0), (S, 0.0), (F, 0.0), (S, 0.0), (F, 0.0),
         (F, 0.0), (F, 0.0), (F, 0.0), (S, 0.0), (ADVANCE, 0.0), (F, 0.0), (S, 0.0)],
    ),
    "time-slow": (
        {
            "window": "time",
            "window_size": 600.0,
            "minimum_calls": 3,
            "failure_rate_threshold": 1.0,
            "slow_call_duration": 1.0,
            "slow_call_rate_threshold": 0.5,
        },
        [(S, 0.1), (S, 2.0), (F, 0.1), (S, 0.1), (S, 5.0), (S, 5.0), (S, 0.1), (S, 0.1),
         (ADVANCE, 0.0), (S, 1.5), (S, 0.1)],
    ),
    "half-open": (
        {"failure_threshold": 1, "half_open_max_calls": 2, "success_threshold": 3},
        [(F, 0.0), (S, 0.0), (ADVANCE, 0.0), (S, 0.0), (S, 0.0), (IGN, 0.0), (S, 0.0), (S, 0.0)],
    ),
    # The default rule (70 % once the window holds its minimum), met by a success (which
    # tests/unit/test_breaker.py checks of the in-process breaker, that counts it without
    # its lock).
    "time-a-success-trips": (
        {"window": "time", "window_size": 600.0, "minimum_calls": 10},
        [(S, 0.0), (S, 0.0)] + [(F, 0.0)] * 7 + [(S, 0.0), (S, 0.0), (ADVANCE, 0.0), (S, 0.0),
         (S, 0.0)],
    ),
    # minimum_calls not given: clamped to the window's 5 calls, so it can trip.
    "count-default-minimum": (
        {"window": "count", "window_size": 5, "failure_rate_threshold": 0.5},
        [(F, 0.0), (S, 0.0), (F, 0.0), (S, 0.0), (F, 0.0), (F, 0.0), (S, 0.0)],
    ),
    # 7 slow calls of 100 at 0.07: exactly the threshold, in integers in both ports.
    "slow-rate-at-threshold": (
        {"window": "count", "window_size": 100, "minimum_calls": 100,
         "slow_call_duration": 1.0, "slow_call_rate_threshold": 0.07},
        [(S, 0.0)] * 93 + [(S, 1.0)] * 7 + [(S, 0.0), (ADVANCE, 0.0), (S, 0.0)],
    ),
    # Failed probes grow the open period (jitter pinned by the clocks' fixed 0.25: less
    # 5 %) up to the cap; a close starts again from reset_timeout.
    "growing-open-period": (
        {"failure_threshold": 1, "reset_timeout": 30.0, "reset_timeout_max": 200.0,
         "reset_multiplier": 2.0, "slow_call_duration": 1.0},
        [(F, 0.0), (S, 0.0), (ADVANCE, 0.0), (F, 0.0), (S, 0.0), (ADVANCE, 60.0), (S, 2.0),
         (S, 0.0), (ADVANCE, 120.0), (F, 0.0), (S, 0.0), (ADVANCE, 200.0), (F, 0.0), (S, 0.0),
         (ADVANCE, 200.0), (S, 0.0), (F, 0.0), (S, 0.0)],
    ),
}  # fmt: skip


def run_scenario(
    breaker: EndpointBreaker, steps: list[Step], advance: Callable[[float], None]
) -> list[tuple[Any, ...]]:
    trace: list[tuple[Any, ...]] = []
    for outcome, duration in steps:
        if outcome == "advance":
            advance(duration or 30.0)
            continue
        permit = call(breaker, outcome, duration)  # type: ignore[arg-type]
        kind = "probe" if isinstance(permit, Permit) and permit.probe else type(permit).__name__
        snap = breaker.snapshot()
        # Whole seconds: Redis's clock runs on for a few ms between the trip and the read.
        wait = None if snap.retry_in is None else round(snap.retry_in)
        counts = (snap.failures, snap.calls, snap.slow_calls, snap.successes)
        trace.append((kind, snap.state, *counts, wait, snap.opened_by))
    return trace


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_redis_decides_like_the_in_process_state_machine(
    name: str, storage: RedisBreakerStorage, raw: redis.Redis, namespace: str
) -> None:
    policy, steps = SCENARIOS[name]
    clock = FakeClock(fixed=0.25)
    memory = BreakerRegistry(MemoryBreakerStorage(clock), clock).get(EP, Breaker(**policy))
    expected = run_scenario(memory, steps, clock.advance)
    # A fake clock for the same random numbers; Redis keeps its own time.
    shared = breaker_over(storage, FakeClock(fixed=0.25), **policy)
    assert run_scenario(shared, steps, lambda _: end_break(raw, namespace)) == expected
    assert {kind for kind, *_ in expected} >= {"Permit", "Rejection"}
    if name == "growing-open-period":
        opens = [(step[6], step[7]) for step in expected if step[1] == "open"]
        probe, slow, once = "a failed probe", "a slow probe", "1 failure in a row"
        # Each period shows twice: after its trip, and on the rejection that follows.
        assert opens == [(30, once)] + [(57, probe)] * 2 + [(114, slow)] * 2 + [
            (190, probe)
        ] * 4 + [(30, once)]


# -- a fleet of processes ----------------------------------------------------------------


def fleet_worker(
    url: str | None, namespace: str, port: int, attempts: Any, fast: Any, index: int, start: Any
) -> None:
    """One process calling a dead upstream until its breaker rejects three times in a row."""
    storage = RedisBreakerStorage(url, namespace, timeout=1.0) if url else None
    breaker = BreakerRegistry(storage).get(
        "GET /dead", Breaker(window="consecutive", failure_threshold=5, reset_timeout=30.0)
    )
    start.wait()
    rejections = 0
    with httpx.Client(timeout=1.0) as client:
        for _ in range(50):
            permit = breaker.admit()
            if isinstance(permit, Rejection):
                rejections += 1
                if rejections == 3:
                    fast[index] = 1
                    break
                continue
            rejections = 0
            attempts[index] += 1
            began = time.monotonic()
            try:
                client.get(f"http://127.0.0.1:{port}/")
                outcome: Outcome = "success"
            except httpx.TransportError:
                outcome = "failure"
            breaker.record(permit, outcome, time.monotonic() - began)


def test_a_fleet_sharing_redis_trips_together(server_up: RedisServer, namespace: str) -> None:
    attempts, fast = SPAWN.Array("i", 4), SPAWN.Array("i", 4)
    run_fleet(fleet_worker, server_up.url, namespace, free_port(), attempts, fast)
    assert fast[:] == [1, 1, 1, 1]  # every worker ended failing fast
    assert sum(attempts[:]) <= 5 + 4


def test_without_shared_state_each_worker_pays_the_threshold() -> None:
    # The baseline: four workers with state of their own (threads with a registry each
    # behave like processes here, and start much faster).
    attempts, fast = [0] * 4, [0] * 4
    run_fleet(fleet_worker, None, "", free_port(), attempts, fast, processes=False)
    assert fast == [1, 1, 1, 1]
    assert attempts == [5, 5, 5, 5]


def test_redis_server_helper_reports_a_missing_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RedisServerUnavailable, match="apt-get install redis-server"):  # noqa: SIM117
        with redis_server():
            pass


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"failure_threshold": 5}, {"window": "count", "window_size": 10}),
        (
            {"window": "time", "window_size": 10.0, "minimum_calls": 50},
            {"window": "time", "window_size": 60.0, "minimum_calls": 50},
        ),
    ],
)
def test_a_window_change_drops_the_old_windows_counts_in_redis_as_in_memory(
    storage: RedisBreakerStorage, first: dict[str, Any], second: dict[str, Any]
) -> None:
    clock = FakeClock()
    traces = []
    for over in (storage, MemoryBreakerStorage(clock)):
        registry = BreakerRegistry(over, clock)
        trace: list[object] = []
        for policy, failures in ((first, 4), (second, 2), (first, 4)):
            breaker = registry.get(EP, Breaker(**policy))
            for _ in range(failures):
                trace.append(type(call(breaker, "failure")).__name__)
                clock.advance(1.0)
            trace.append(breaker.snapshot().calls)
        traces.append(trace)
    assert traces[0] == traces[1]
    assert all(step == "Permit" for step in traces[0] if isinstance(step, str))
