"""Exactly once across processes: a replayer killed with SIGKILL mid-replay, two processes
replaying one SQLite file, three replaying one Redis outbox - each ends with exactly one
effect per parked write at the chaos upstream's payments endpoint."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from breaker_support import SPAWN, run_fleet
from outbox_support import CANARY, EP, park_writes
from redis_server import RedisServer, running_redis
from waiting import wait_until

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.outbox import Outbox, RedisOutboxStore
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

_names = itertools.count()


server = pytest.fixture(scope="module", name="server")(running_redis)


@pytest.fixture
def name() -> str:
    return f"fleet-{next(_names)}"


def open_outbox(store: str, namespace: str | None = None, **kwargs: Any) -> Outbox:
    if store.startswith("redis://"):
        return Outbox(RedisOutboxStore(store, namespace=namespace or "x"), **kwargs)
    return Outbox(store, **kwargs)


# The replayers of these tests send every due entry in one pass: they are about leases and
# exactly-once, not about the retry budget that paces replays after an outage.
UNPACED = rc.Policy(budget=None)

# -- children (spawned: module-level, importable) ---------------------------------------


def replay_worker(store: str, namespace: str | None, index: int, start: Any) -> None:
    outbox = open_outbox(store, namespace)
    start.wait()
    with rc.ResilientClient(policy=UNPACED) as client:
        outbox.replay(client)


def replay_slowly(store: str) -> None:
    outbox = open_outbox(store, lease=2.0, batch=1)
    with rc.ResilientClient(policy=UNPACED) as client:
        outbox.replay(client)


# -- tests ------------------------------------------------------------------------------


def test_a_replayer_killed_mid_replay_loses_nothing_and_repeats_nothing(
    upstream: RunningServer, name: str, tmp_path: Path
) -> None:
    store, n = f"sqlite:///{tmp_path / 'outbox.db'}", 6
    park_writes(Outbox(store), f"{upstream.url}/payments/{name}?work=0.3", n)
    child = SPAWN.Process(target=replay_slowly, args=(store,))
    child.start()
    try:
        # Killed while a send is at the provider: its effect commits, its answer is lost.
        wait_until(
            lambda: upstream.app.effects(name) >= 2 and upstream.app.scenario(name).in_flight,
            limit=30.0,
        )
        child.kill()  # SIGKILL: no cleanup, its lease stays in the store
        child.join()
    finally:
        if child.is_alive():
            child.kill()
            child.join()
    assert child.exitcode == -9
    wait_until(lambda: upstream.app.scenario(name).in_flight == 0)
    left = Outbox(store).entries()
    assert 0 < len(left) < n
    # Another replayer, after the dead one's lease ran out.
    later = Outbox(store, clock=FakeClock(start_wall=time.time() + 3.0))
    with rc.ResilientClient(policy=UNPACED) as client:
        result = later.replay(client)
    assert len(result.delivered) == len(left)
    assert upstream.app.effects(name) == n
    assert later.entries() == []
    sent = upstream.app.scenario(name).attempts
    assert n <= sent <= n + 1  # at most the one in flight was sent again, with its key


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_replayers_sharing_one_store_deliver_each_write_exactly_once(
    upstream: RunningServer, name: str, tmp_path: Path, server: RedisServer, kind: str
) -> None:
    if kind == "sqlite":
        store, namespace, workers = f"sqlite:///{tmp_path / 'outbox.db'}", None, 2
    else:
        server.start()
        store, namespace, workers = server.url, name, 3
    n = 40
    park_writes(open_outbox(store, namespace), f"{upstream.url}/payments/{name}?work=0.005", n)
    run_fleet(replay_worker, store, namespace, workers=workers)
    assert upstream.app.effects(name) == n
    assert upstream.app.scenario(name).attempts == n  # no entry was sent twice
    assert open_outbox(store, namespace).entries() == []


def test_redis_claims_are_exclusive_until_the_lease_runs_out(
    server: RedisServer, name: str
) -> None:
    server.start()
    clock = FakeClock(start_wall=1_800_000_000.0)
    outbox = Outbox(RedisOutboxStore(server.url, namespace=name), clock=clock)
    park_writes(outbox, "http://127.0.0.1:1/payments/x", 4)
    store, now = outbox.store, clock.wall()
    first = store.claim(now=now, until=now + 30, owner="a", limit=3)
    second = store.claim(now=now, until=now + 30, owner="b", limit=10)
    assert (len(first), len(second)) == (3, 1)
    assert {e.id for e in first}.isdisjoint(e.id for e in second)
    again = store.claim(now=now + 30, until=now + 60, owner="c", limit=10)
    assert len(again) == 4
    assert store.settle(first[0], owner="a") is False
    assert store.settle(again[0], owner="c") is True
    assert store.claim(now=now, until=now + 1, owner="d", limit=9, skip=[EP]) == []


def test_the_canary_secret_is_in_no_redis_value(server: RedisServer, name: str) -> None:
    server.start()
    outbox = Outbox(RedisOutboxStore(server.url, namespace=name))
    park_writes(outbox, "http://127.0.0.1:1/payments/x", 3)
    raw = redis.Redis.from_url(server.url)
    dumped = b""
    for key in raw.scan_iter(f"{name}:*"):  # every value, uncompressed (DUMP compresses)
        if raw.type(key) == b"hash":
            dumped += key + b"".join(k + v for k, v in raw.hgetall(key).items())
        else:
            dumped += key + b"".join(raw.zrange(key, 0, -1))
    assert b"k-1" in dumped  # the entries are there
    assert CANARY.encode() not in dumped


def test_an_unreachable_redis_is_a_clear_error_without_its_password(server: RedisServer) -> None:
    url = f"redis://:{CANARY}@127.0.0.1:1/0"
    outbox = Outbox(RedisOutboxStore(url, timeout=0.2))
    with pytest.raises(rc.ResilienceError, match=r"127\.0\.0\.1:1") as caught:
        outbox.entries()
    assert CANARY not in str(caught.value)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_long_backlog_of_a_skipped_endpoint_does_not_hide_other_endpoints_entries(
    server: RedisServer, name: str, tmp_path: Path, kind: str
) -> None:
    # An outage of one endpoint parks thousands of its writes, due before the one write
    # of another endpoint; the claim that skips the first must still find the second.
    clock = FakeClock(start_wall=1_800_000_000.0)
    if kind == "sqlite":
        outbox = Outbox(f"sqlite:///{tmp_path / 'outbox.db'}", clock=clock)
    else:
        server.start()
        outbox = Outbox(RedisOutboxStore(server.url, namespace=name), clock=clock)
    backlog = park_writes(outbox, "http://127.0.0.1:1/payments/down", 1100)[0]
    clock.advance(1.0)
    other = outbox.park(
        httpx.Request("POST", "http://127.0.0.1:1/orders", headers={"Idempotency-Key": "o-1"}),
        endpoint="POST /orders",
        idempotency_key="o-1",
    )
    store, now = outbox.store, clock.wall()
    claimed = store.claim(now=now, until=now + 30, owner="a", limit=16, skip=[backlog.endpoint])
    assert [e.id for e in claimed] == [other.id]
