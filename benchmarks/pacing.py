"""Pacing by the provider's rate-limit headers against plain retries, on the same limit.

The chaos upstream's ``/limited`` route allows ``--limit`` requests per one-second window
and answers 429 (with ``Retry-After``) past it, with the IETF ``RateLimit`` /
``RateLimit-Policy`` headers (``--family`` picks another family). ``--workers`` async
tasks make ``--calls`` calls in all, each retried up to 10 times, against:

- plain retries: the default policy (backoff with jitter, ``Retry-After`` honoured);
- pacing: the same, plus ``Policy(rate_limit=rc.RateLimit(max_wait=10.0))``.

Both sides run in one process, one after the other, on fresh scenario names; the server
counts every request, so ``429s = requests - calls answered 200``. Reported: the 429s,
the calls answered, the wall time and the throughput (calls answered per second), and
the ratios pacing / plain. Real time: about ``2 * calls / limit`` seconds.

Run: ``python benchmarks/pacing.py [--calls 120] [--limit 20] [--workers 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from typing import Any

import resilient_client as rc
from resilient_client.chaos import ChaosApp, RunningServer, serve

_names = itertools.count()


async def _run(
    server: RunningServer, policy: rc.Policy, args: argparse.Namespace
) -> dict[str, Any]:
    name = f"pacing-bench-{next(_names)}"
    url = f"/limited/{name}?limit={args.limit}&window=1&family={args.family}"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(args.calls):
        queue.put_nowait(index)
    answered = 0

    async def worker(client: rc.AsyncResilientClient) -> None:
        nonlocal answered
        while not queue.empty():
            queue.get_nowait()
            try:
                response = await client.get(url)
            except Exception:  # a refused call counts as not answered
                continue
            answered += response.status_code == 200

    async with rc.AsyncResilientClient(base_url=server.url, policy=policy) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(args.workers)))
        elapsed = time.perf_counter() - start
    requests = server.app.scenario(name).attempts
    return {
        "429s": requests - answered,
        "answered": answered,
        "seconds": elapsed,
        "throughput": answered / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=120)
    parser.add_argument("--limit", type=int, default=20, help="requests per 1 s window")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--family", default="ietf", help="ietf, x, openai or anthropic")
    args = parser.parse_args()
    retry = rc.Retry(max_attempts=10)
    # No breaker or budget: both sides get every retry they ask for, so the difference is
    # the pacing alone.
    plain = rc.Policy(retry=retry, breaker=None, budget=None)
    paced = plain.model_copy(update={"rate_limit": rc.RateLimit(max_wait=10.0)})
    with serve(ChaosApp()) as server:
        results = {
            "plain retries": asyncio.run(_run(server, plain, args)),
            "pacing": asyncio.run(_run(server, paced, args)),
        }
    print(
        f"{args.calls} calls, {args.workers} workers, limit {args.limit}/s, {args.family} headers"
    )
    for label, result in results.items():
        print(
            f"  {label:<14} 429s {result['429s']:>5}   answered {result['answered']:>4}   "
            f"{result['seconds']:6.2f} s   {result['throughput']:6.1f} calls/s"
        )
    plain_r, paced_r = results["plain retries"], results["pacing"]
    ratio_429 = paced_r["429s"] / plain_r["429s"] if plain_r["429s"] else float("nan")
    print(
        f"  pacing / plain: 429s {ratio_429:.3f}   "
        f"throughput {paced_r['throughput'] / plain_r['throughput']:.3f}"
    )


if __name__ == "__main__":
    main()
