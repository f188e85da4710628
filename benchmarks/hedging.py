"""Hedging against no hedging, under a slow tail.

The chaos upstream's ``/stall/{name}?p=0.05&seconds=1`` route stalls a share ``--share``
(default 5 %) of its requests for ``--stall`` seconds (default 1) before answering, and
answers the rest at once (each request drawn from its name and number, so the same share
stalls on every run). ``--workers`` async tasks (or threads, with ``--sync``) make
``--calls`` GETs in all, against:

- no hedging: the default policy;
- hedging after a fixed delay: ``Policy(hedging=rc.Hedging(delay=--delay))``;
- hedging after the endpoint's p95: ``rc.Hedging(delay="p95", min_delay=0.01)``.

All run in one process, one after the other, on fresh scenario names; the server counts
every request, so attempts per call = requests / calls. Reported: p50 and p99 latency
and attempts per call, and each hedged side's ratios to no hedging (the target: a p99 at
least 5x lower for at most 1.1x the attempts). Real time: a few seconds per side.

Run: ``python benchmarks/hedging.py [--calls 1000] [--workers 8] [--sync]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import threading
import time
from typing import Any

import resilient_client as rc
from resilient_client.chaos import ChaosApp, RunningServer, serve

_names = itertools.count()


def _url(args: argparse.Namespace) -> tuple[str, str]:
    name = f"hedging-bench-{next(_names)}"
    return name, f"/stall/{name}?p={args.share}&seconds={args.stall}&seed={args.seed}"


async def _run_async(
    server: RunningServer, policy: rc.Policy, args: argparse.Namespace
) -> tuple[str, list[float]]:
    name, url = _url(args)
    calls = iter(range(args.calls))
    took: list[float] = []

    async def worker(client: rc.AsyncResilientClient) -> None:
        for _ in calls:
            start = time.perf_counter()
            response = await client.get(url)
            took.append(time.perf_counter() - start)
            assert response.status_code == 200

    async with rc.AsyncResilientClient(base_url=server.url, policy=policy) as client:
        await asyncio.gather(*(worker(client) for _ in range(args.workers)))
    return name, took


def _run_sync(
    server: RunningServer, policy: rc.Policy, args: argparse.Namespace
) -> tuple[str, list[float]]:
    name, url = _url(args)
    calls = iter(range(args.calls))
    lock = threading.Lock()
    took: list[float] = []

    def worker(client: rc.ResilientClient) -> None:
        while True:
            with lock:
                if next(calls, None) is None:
                    return
            start = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200
            with lock:
                took.append(elapsed)

    with rc.ResilientClient(base_url=server.url, policy=policy) as client:
        threads = [threading.Thread(target=worker, args=(client,)) for _ in range(args.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return name, took


def _measure(server: RunningServer, policy: rc.Policy, args: argparse.Namespace) -> dict[str, Any]:
    if args.sync:
        name, took = _run_sync(server, policy, args)
    else:
        name, took = asyncio.run(_run_async(server, policy, args))
    cuts = statistics.quantiles(took, n=100, method="inclusive")
    return {
        "p50": cuts[49],
        "p99": cuts[98],
        "attempts": server.app.scenario(name).attempts / len(took),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
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
    with serve(ChaosApp()) as server:
        results = {label: _measure(server, policy, args) for label, policy in sides.items()}
    mode = "sync, threads" if args.sync else "async, tasks"
    print(
        f"{args.calls} calls, {args.workers} workers ({mode}), "
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
