"""Hedging against no hedging, under a slow tail.

The chaos upstream's ``/stall/{name}?p=0.05&seconds=1`` route stalls a share ``--share``
(default 5 %) of its requests for ``--stall`` seconds (default 1) before answering, and
answers the rest at once (each request drawn from its name and number, so the same share
stalls on every run). ``--calls`` GETs start at ``--rate`` calls a second, each in a
task of its own (or on a pool of ``--threads`` threads, with ``--sync``) - an open loop,
so a stalled call does not slow the load down (with a closed loop of workers, the side
without hedging would spend most of its time waiting on stalls, and its other calls
would meet less contention) - against:

- no hedging: the default policy;
- hedging after a fixed delay: ``Policy(hedging=rc.Hedging(delay=--delay))``;
- hedging after the endpoint's p95: ``rc.Hedging(delay="p95", min_delay=0.01)``.

All run one after the other, on fresh scenario names, against one upstream in a child
process (so it shares no interpreter lock with the client); the server counts every
request, so attempts per call = requests / calls. Reported: p50 and p99 latency
and attempts per call, and each hedged side's ratios to no hedging (the target: a p99 at
least 5x lower for at most 1.1x the attempts). Real time: a few seconds per side.

Run: ``python benchmarks/hedging.py [--calls 1000] [--rate 50] [--sync]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

import resilient_client as rc
from resilient_client.chaos import SubprocessServer, serve_in_subprocess

_names = itertools.count()


def _url(args: argparse.Namespace) -> tuple[str, str]:
    name = f"hedging-bench-{next(_names)}"
    return name, f"/stall/{name}?p={args.share}&seconds={args.stall}&seed={args.seed}"


async def _run_async(
    server: SubprocessServer, policy: rc.Policy, args: argparse.Namespace
) -> tuple[str, list[float]]:
    name, url = _url(args)
    took: list[float] = []

    async def one(client: rc.AsyncResilientClient) -> None:
        start = time.perf_counter()
        response = await client.get(url)
        took.append(time.perf_counter() - start)
        assert response.status_code == 200

    async with rc.AsyncResilientClient(base_url=server.url, policy=policy) as client:
        tasks = []
        began = time.perf_counter()
        for index in range(args.calls):  # open loop: calls start on schedule, not on answers
            await asyncio.sleep(max(0.0, began + index / args.rate - time.perf_counter()))
            tasks.append(asyncio.ensure_future(one(client)))
        await asyncio.gather(*tasks)
    return name, took


def _run_sync(
    server: SubprocessServer, policy: rc.Policy, args: argparse.Namespace
) -> tuple[str, list[float]]:
    name, url = _url(args)
    took: list[float] = []
    lock = threading.Lock()

    def one(client: rc.ResilientClient) -> None:
        start = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - start
        assert response.status_code == 200
        with lock:
            took.append(elapsed)

    with (
        rc.ResilientClient(base_url=server.url, policy=policy) as client,
        ThreadPoolExecutor(max_workers=args.threads) as pool,
    ):
        began = time.perf_counter()
        for index in range(args.calls):  # open loop, as above
            time.sleep(max(0.0, began + index / args.rate - time.perf_counter()))
            pool.submit(one, client)
    return name, took


def _measure(
    server: SubprocessServer, policy: rc.Policy, args: argparse.Namespace
) -> dict[str, Any]:
    if args.sync:
        name, took = _run_sync(server, policy, args)
    else:
        name, took = asyncio.run(_run_async(server, policy, args))
    cuts = statistics.quantiles(took, n=100, method="inclusive")
    return {
        "p50": cuts[49],
        "p99": cuts[98],
        "attempts": httpx.get(f"{server.url}/__stats/{name}").json()["attempts"] / len(took),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="calls started per second")
    parser.add_argument("--threads", type=int, default=64, help="the sync callers' threads")
    parser.add_argument("--share", type=float, default=0.05, help="share of requests stalled")
    parser.add_argument("--stall", type=float, default=1.0, help="seconds a stall lasts")
    parser.add_argument("--delay", type=float, default=0.05, help="the fixed hedge delay")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sync", action="store_true", help="threads and the sync client")
    args = parser.parse_args()
    sides = {
        "no hedging": rc.Policy(),
        f"hedging {args.delay * 1000:.0f} ms": rc.Policy(hedging=rc.Hedging(delay=args.delay)),
        "hedging p95": rc.Policy(hedging=rc.Hedging(delay="p95", min_delay=0.01)),
    }
    with serve_in_subprocess() as server:
        results = {label: _measure(server, policy, args) for label, policy in sides.items()}
    mode = "sync, threads" if args.sync else "async, tasks"
    print(
        f"{args.calls} calls at {args.rate:.0f}/s ({mode}), "
        f"{args.share:.0%} of requests stalled {args.stall} s"
    )
    base = results["no hedging"]
    for label, result in results.items():
        line = (
            f"  {label:<16} p50 {result['p50'] * 1000:7.2f} ms   "
            f"p99 {result['p99'] * 1000:8.2f} ms   attempts/call {result['attempts']:.3f}"
        )
        if result is not base:
            line += (
                f"   p99 {base['p99'] / result['p99']:5.1f}x lower, "
                f"p50 x{result['p50'] / base['p50']:.2f}, "
                f"attempts x{result['attempts'] / base['attempts']:.3f}"
            )
        print(line)


if __name__ == "__main__":
    main()
