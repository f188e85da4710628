"""What a breaker costs per call, ours against pybreaker, in memory and over Redis.

One call = ``admit()`` + ``record(permit, "success", d)`` on a closed breaker (ours), or
``with breaker.calling(): pass`` (pybreaker's peer API; its ``call()`` is shown too).
Over Redis, round trips per call are counted twice: by our storage's counter and by the
server's ``INFO commandstats`` (every command the server executed, both libraries).
Rounds alternate between the sides compared, and the median round is reported.

Run: ``python benchmarks/breaker.py [--quick]``. Starts its own ``redis-server`` on
127.0.0.1 (``tests/integration/redis_server.py``); skips the Redis rows without one.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pybreaker
import redis

from resilient_client._breaker import (
    Breaker,
    BreakerRegistry,
    EndpointBreaker,
    Permit,
    RedisBreakerStorage,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from redis_server import RedisServerUnavailable, redis_server

EP = "GET /v1/users/{id}"


def ours_round(breaker: EndpointBreaker, n: int, outcomes: tuple[str, ...] = ("success",)) -> float:
    record, admit = breaker.record, breaker.admit
    cycle = len(outcomes)
    start = time.perf_counter()
    for i in range(n):
        permit = admit()
        assert isinstance(permit, Permit)
        record(permit, outcomes[i % cycle], 0.001)  # type: ignore[arg-type]
    return (time.perf_counter() - start) / n


def ours_async_round(breaker: EndpointBreaker, n: int) -> float:
    async def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            permit = await breaker.aadmit()
            assert isinstance(permit, Permit)
            await breaker.arecord(permit, "success", 0.001)
        return (time.perf_counter() - start) / n

    return asyncio.run(run())


def calling_round(cb: pybreaker.CircuitBreaker, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        with cb.calling():
            pass
    return (time.perf_counter() - start) / n


def call_round(cb: pybreaker.CircuitBreaker, n: int) -> float:
    def nothing() -> None:
        return None

    start = time.perf_counter()
    for _ in range(n):
        cb.call(nothing)
    return (time.perf_counter() - start) / n


def median_rounds(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}


SCRIPT_COMMANDS = ("cmdstat_eval", "cmdstat_evalsha")


def server_commands(client: redis.Redis) -> tuple[int, int]:
    """(EVAL/EVALSHA commands, all commands) the server executed so far.

    ``INFO commandstats`` also counts the commands a Lua script runs, which cost no round
    trip: our storage sends only EVALSHA (EVAL once per server), pybreaker only plain
    commands, and neither pipelines here, so those are the round trips of each.
    """
    stats = client.info("commandstats")
    scripts = sum(int(stats[k]["calls"]) for k in SCRIPT_COMMANDS if k in stats)
    return scripts, sum(int(v["calls"]) for v in stats.values())


def commands_per_call(
    client: redis.Redis, run: Callable[[], object], n: int
) -> tuple[float, float]:
    """(scripts, all commands) the server executed per call of ``run``."""
    scripts, everything = server_commands(client)
    run()
    scripts_after, everything_after = server_commands(client)
    # The first INFO is counted by the second one.
    return (scripts_after - scripts) / n, (everything_after - everything - 1) / n


def print_rows(title: str, rows: list[tuple[str, float, str]]) -> None:
    print(f"\n{title}")
    for name, seconds, note in rows:
        print(f"  {name:<44} {seconds * 1e6:9.2f} µs/call  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    n_memory = 20_000 if args.quick else 100_000
    n_redis = 1_000 if args.quick else 4_000

    # pybreaker counts a streak: compare it with our consecutive breaker (the default is a
    # time window: its own row below).
    ours = BreakerRegistry().get(EP, Breaker(window="consecutive"))
    ours_time = BreakerRegistry().get("time", Breaker())
    ours_count = BreakerRegistry().get(
        "count", Breaker(window="count", window_size=100, minimum_calls=100)
    )
    theirs = pybreaker.CircuitBreaker()
    memory = median_rounds(
        {
            "ours": lambda: ours_round(ours, n_memory),
            "ours_time": lambda: ours_round(ours_time, n_memory),
            "ours_count": lambda: ours_round(ours_count, n_memory),
            "calling": lambda: calling_round(theirs, n_memory),
            "call": lambda: call_round(theirs, n_memory),
        },
        rounds,
    )
    print_rows(
        f"In memory, closed breaker (median of {rounds} rounds x {n_memory} calls)",
        [
            ("ours: admit + record (consecutive)", memory["ours"], ""),
            ("ours: admit + record (time window: default)", memory["ours_time"], ""),
            ("ours: admit + record (count window of 100)", memory["ours_count"], ""),
            ("pybreaker: with calling()", memory["calling"], ""),
            ("pybreaker: call(fn)", memory["call"], "(holds its lock across fn)"),
        ],
    )
    print(f"  ratio ours / pybreaker calling(): {memory['ours'] / memory['calling']:.2f}")

    try:
        server_cm = redis_server()
        server = server_cm.__enter__()
    except RedisServerUnavailable as exc:
        print(f"\nRedis rows skipped: {exc}")
        return
    try:
        raw = redis.Redis.from_url(server.url)
        storage = RedisBreakerStorage(server.url, "bench", timeout=1.0)
        shared = BreakerRegistry(storage).get(EP, Breaker(window="consecutive"))
        shared_count = BreakerRegistry(storage).get(
            "count", Breaker(window="count", window_size=100, minimum_calls=100)
        )
        pb_storage = pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, redis.Redis.from_url(server.url), namespace="pybench"
        )
        theirs_redis = pybreaker.CircuitBreaker(state_storage=pb_storage)
        ours_round(shared, 10)  # load the script, open connections
        ours_round(shared_count, 10)
        calling_round(theirs_redis, 10)

        timed = median_rounds(
            {
                "ours": lambda: ours_round(shared, n_redis),
                "ours_mixed": lambda: ours_round(shared, n_redis, ("success", "failure") * 1),
                "ours_count": lambda: ours_round(shared_count, n_redis),
                "ours_async": lambda: ours_async_round(shared, n_redis),
                "calling": lambda: calling_round(theirs_redis, n_redis),
            },
            rounds,
        )
        n = 1_000
        before = storage.round_trips
        ours_trips = commands_per_call(raw, lambda: ours_round(shared, n), n)
        ours_rt = (storage.round_trips - before) / n

        def mixed() -> float:
            return ours_round(shared, n, ("success", "failure"))

        rows = [
            ("ours: admit + record, success", "ours", ours_trips),
            ("ours: alternating success/failure", "ours_mixed", commands_per_call(raw, mixed, n)),
            (
                "ours: count window of 100",
                "ours_count",
                commands_per_call(raw, lambda: ours_round(shared_count, n), n),
            ),
            (
                "ours: async aadmit + arecord",
                "ours_async",
                commands_per_call(raw, lambda: ours_async_round(shared, n), n),
            ),
        ]
        _, theirs_trips = commands_per_call(raw, lambda: calling_round(theirs_redis, n), n)
        print_rows(
            f"Over Redis on 127.0.0.1, closed breaker ({rounds} rounds x {n_redis} calls)",
            [
                (
                    label,
                    timed[key],
                    f"{sent:.2f} round trips/call (+{run - sent:.1f} commands in Lua)",
                )
                for label, key, (sent, run) in rows
            ]
            + [
                (
                    "pybreaker: calling() + CircuitRedisStorage",
                    timed["calling"],
                    f"{theirs_trips:.2f} round trips/call",
                )
            ],
        )
        print(f"  our storage's own counter: {ours_rt:.2f} round trips/call")
        ratio = timed["ours"] / timed["calling"]
        print(f"  ratio ours / pybreaker calling() over Redis: {ratio:.2f}")
        storage.close()
        raw.close()
    finally:
        server_cm.__exit__(None, None, None)


if __name__ == "__main__":
    main()
