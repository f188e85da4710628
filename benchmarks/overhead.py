"""Per-call cost of the default pipeline against raw httpx, as ratios measured in one run.

Alternating A/B rounds (raw, pipeline, raw, pipeline, ...) so drift on a noisy machine
hits both sides alike; the median round of each side is reported. Two workloads:

- over ``httpx.MockTransport``: the pipeline's own cost, no network;
- over loopback to the chaos upstream under uvicorn (in a subprocess, so the server does
  not share the GIL with the client): sync, and async at concurrency 1 and 50.

Each ratio is against the same library's raw client: httpx, then httpx2 (the
``resilient_client.httpx2`` pipeline against raw ``httpx2``).

Run: ``python benchmarks/overhead.py [--quick] [--skip-loopback] [--httpx-only]``.
Targets: <= 1.2x over MockTransport, <= 1.05x over loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

import resilient_client as rc

MOCK_URL = "http://api.test/v1/users/1"


def mock_transport(lib: Any) -> Any:
    """``lib``'s MockTransport answering every request with a small 200 JSON body."""

    def ok(request: Any) -> Any:
        return lib.Response(200, content=b'{"ok": true}', request=request)

    return lib.MockTransport(ok)


def _rounds(
    run_a: Callable[[], float], run_b: Callable[[], float], rounds: int
) -> tuple[float, float]:
    a, b = [], []
    for _ in range(rounds):
        a.append(run_a())
        b.append(run_b())
    return statistics.median(a), statistics.median(b)


def sync_round(client: httpx.Client, url: str, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        client.get(url)
    return (time.perf_counter() - start) / n


def async_round(
    loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient, url: str, n: int, concurrency: int
) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            await client.get(url)

    async def run() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        return (time.perf_counter() - start) / (n // concurrency * concurrency)

    return loop.run_until_complete(run())


def _report(name: str, raw: float, ours: float) -> None:
    print(
        f"{name:<44} raw {raw * 1e6:8.1f} us   pipeline {ours * 1e6:8.1f} us"
        f"   ratio {ours / raw:5.3f}"
    )


@contextmanager
def _upstream() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "resilient_client.chaos", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"chaos server did not start: {url!r}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    parser.add_argument("--skip-loopback", action="store_true")
    parser.add_argument("--httpx-only", action="store_true", help="skip the httpx2 rows")
    args = parser.parse_args()
    rounds, n = (5, 300) if args.quick else (15, 2000)

    libraries: list[tuple[str, Any, Any]] = [("httpx", httpx, rc)]
    if not args.httpx_only:
        import httpx2

        from resilient_client import httpx2 as rc2

        libraries.append(("httpx2", httpx2, rc2))
    loop = asyncio.new_event_loop()
    for name, lib, ns in libraries:
        _mock_rows(name, lib, ns, loop, rounds, n)
    if args.skip_loopback:
        return
    with _upstream() as base:
        for name, lib, ns in libraries:
            _loopback_rows(name, lib, ns, loop, f"{base}/ok/bench", rounds, max(200, n // 4))


def _mock_rows(
    name: str, lib: Any, ns: Any, loop: asyncio.AbstractEventLoop, rounds: int, n: int
) -> None:
    raw = lib.Client(transport=mock_transport(lib))
    ours = ns.ResilientClient(transport=mock_transport(lib))
    for client in (raw, ours):
        sync_round(client, MOCK_URL, 200)
    _report(
        f"{name}: sync, MockTransport",
        *_rounds(
            lambda: sync_round(raw, MOCK_URL, n), lambda: sync_round(ours, MOCK_URL, n), rounds
        ),
    )
    araw = lib.AsyncClient(transport=mock_transport(lib))
    aours = ns.AsyncResilientClient(transport=mock_transport(lib))
    for aclient in (araw, aours):  # warm up as the sync clients are: first calls are dear
        async_round(loop, aclient, MOCK_URL, 200, 1)
    _report(
        f"{name}: async, MockTransport",
        *_rounds(
            lambda: async_round(loop, araw, MOCK_URL, n, 1),
            lambda: async_round(loop, aours, MOCK_URL, n, 1),
            rounds,
        ),
    )


def _loopback_rows(
    name: str, lib: Any, ns: Any, loop: asyncio.AbstractEventLoop, url: str, rounds: int, n: int
) -> None:
    raw = lib.Client()
    ours = ns.ResilientClient()
    for client in (raw, ours):
        sync_round(client, url, 100)
    _report(
        f"{name}: sync, loopback uvicorn",
        *_rounds(lambda: sync_round(raw, url, n), lambda: sync_round(ours, url, n), rounds),
    )
    limits = lib.Limits(max_connections=100, max_keepalive_connections=100)
    araw = lib.AsyncClient(limits=limits)
    aours = ns.AsyncResilientClient(limits=limits)
    for concurrency in (1, 50):
        async_round(loop, araw, url, 100, concurrency)
        async_round(loop, aours, url, 100, concurrency)
        _report(
            f"{name}: async, loopback uvicorn, concurrency {concurrency}",
            *_rounds(
                lambda c=concurrency: async_round(loop, araw, url, n, c),
                lambda c=concurrency: async_round(loop, aours, url, n, c),
                rounds,
            ),
        )


if __name__ == "__main__":
    main()
