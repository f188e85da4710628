"""What the outbox costs: parking one write (µs, SQLite and Redis) and replay throughput
(entries/s, sync client, against the chaos upstream on loopback).

Run: ``python benchmarks/outbox.py [--quick]``. Starts its own ``redis-server`` on
127.0.0.1 (``tests/integration/redis_server.py``); skips the Redis rows without one. The
SQLite file lives in a temporary directory (``synchronous=FULL``: each park is one fsync).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

import resilient_client as rc
from resilient_client.chaos import serve
from resilient_client.outbox import Outbox, RedisOutboxStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from redis_server import RedisServerUnavailable, redis_server

EP = "POST /payments/{name}"


def park_round(outbox: Outbox, url: str, n: int, offset: int) -> float:
    requests = [
        httpx.Request(
            "POST", url, json={"amount": i}, headers={"Idempotency-Key": f"k{offset + i}"}
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    for i, request in enumerate(requests):
        outbox.park(request, endpoint=EP, idempotency_key=f"k{offset + i}", last_error="x")
    return (time.perf_counter() - start) / n


def park_cost(outbox: Outbox, url: str, n: int, rounds: int) -> float:
    return statistics.median(park_round(outbox, url, n, r * n) for r in range(rounds)) * 1e6


def replay_throughput(outbox: Outbox, n: int) -> float:
    # Unpaced: the throughput of replay itself, not of the budget that paces it after an outage.
    with rc.ResilientClient(policy=rc.Policy(budget=None)) as client:
        start = time.perf_counter()
        result = outbox.replay(client)
        elapsed = time.perf_counter() - start
    assert len(result.delivered) == n, result
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    n, rounds, replayed = (100, 3, 200) if quick else (500, 5, 1000)
    with serve() as upstream, tempfile.TemporaryDirectory() as directory:
        url = f"{upstream.url}/payments/bench"
        print(f"{'store':<8} {'park one write':>16} {'replay':>14}")
        stores: list[tuple[str, object]] = [("sqlite", f"sqlite:///{directory}/park.db")]
        try:
            redis_context = redis_server()
            redis = redis_context.__enter__()
            stores.append(("redis", RedisOutboxStore(redis.url, namespace="bench")))
        except RedisServerUnavailable:
            redis_context = None
        for label, store in stores:
            outbox = Outbox(store)  # type: ignore[arg-type]
            cost = park_cost(outbox, url, n, rounds)
            for entry in outbox.entries():
                outbox.drop(entry.id)
            upstream.app.reset()
            park_round(outbox, url, replayed, 10**6)
            rate = replay_throughput(outbox, replayed)
            print(f"{label:<8} {cost:>13.0f} µs {rate:>9.0f} ent/s")
        if redis_context is not None:
            redis_context.__exit__(None, None, None)


if __name__ == "__main__":
    main()
