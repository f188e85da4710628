"""Load amplification under an outage: this SDK against httpx-retries and stamina.

Every client gets the same number of attempts per call (3: our default ``max_attempts``,
httpx-retries ``Retry(total=2)``, stamina ``attempts=3``) and **no waits** (each library's
backoff set to zero), so the table compares how many attempts each sends, not how long
each sleeps. Ours runs with its defaults otherwise (breaker: 5 consecutive failures open it
for 30 s; retry budget: 10 % of calls + 1/s over 10 s), then without the breaker, then
without breaker and budget, so each mechanism's share shows.

Scenarios, each on its own chaos-server scenario name so counts don't mix, with the same
seed for every client (the n-th attempt of each run meets the same fate):

- ``503``: every attempt answers 503 (``/outage/{name}``, failure rate 1.0);
- ``refused``: a bound port nobody listens on, so every connect is refused;
- ``50%`` and ``20%``: that share of attempts answers 503, drawn from a seeded RNG.

Each runs sequentially, then (``503``, ``refused``, ``50%``) with ``--threads`` threads
sharing one client; a last ``503 POST`` run shows who retries a write, and how. Columns:

- attempts: what each client sent to its inner transport (counted there, and checked
  against what the chaos server received where there is one);
- amplification: attempts ÷ calls (1.0 = no extra load; 3.0 = every call retried twice);
- fast-fail: calls that ended without a single attempt (a local rejection: open breaker,
  load shedding, full bulkhead);
- ok: calls that ended in a 200.

Run: ``python benchmarks/outage.py [--calls N] [--threads N] [--detail]``.
"""

from __future__ import annotations

import argparse
import collections
import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from importlib.metadata import version

import httpx
import httpx_retries
import stamina

import resilient_client as rc
from resilient_client.chaos import ChaosApp, serve

ATTEMPTS = 3
SEED = 20240601
LOCAL_REJECTIONS = (rc.CircuitOpenError, rc.LoadShedError, rc.BulkheadFull)
"""What our client raises when it fails a call fast, without an attempt."""


class CountingTransport(httpx.BaseTransport):
    """Counts attempts in total and per thread (so per call: a sync call stays on its
    thread from first attempt to last)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.attempts = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.attempts += 1
        self._local.n = getattr(self._local, "n", 0) + 1
        return self.inner.handle_request(request)

    def take_call_attempts(self) -> int:
        """Attempts this thread made since the last call of this method."""
        n: int = getattr(self._local, "n", 0)
        self._local.n = 0
        return n

    def close(self) -> None:
        self.inner.close()


Call = Callable[[str, str], httpx.Response]
"""Makes one call (method, path) and returns its final response, or raises."""


@contextmanager
def ours(base_url: str, counter: CountingTransport, **policy: object) -> Iterator[Call]:
    no_waits = rc.Retry(max_attempts=ATTEMPTS, backoff=rc.Backoff(initial=0.0, max=0.0))
    client = rc.ResilientClient(
        base_url=base_url, transport=counter, policy=rc.Policy(retry=no_waits, **policy)
    )
    with client:
        yield client.request


@contextmanager
def with_httpx_retries(base_url: str, counter: CountingTransport) -> Iterator[Call]:
    # backoff_factor defaults to 0 (no waits); Retry-After would still be honoured, but
    # the chaos server sends none here.
    retry = httpx_retries.Retry(total=ATTEMPTS - 1, backoff_factor=0.0)
    transport = httpx_retries.RetryTransport(transport=counter, retry=retry)
    with httpx.Client(base_url=base_url, transport=transport) as client:
        yield client.request


def _stamina_retries(exc: Exception) -> bool:
    # The usual recipe from stamina's docs: transport errors and 5xx.
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


@contextmanager
def with_stamina(base_url: str, counter: CountingTransport) -> Iterator[Call]:
    with httpx.Client(base_url=base_url, transport=counter) as client:

        @stamina.retry(
            on=_stamina_retries, attempts=ATTEMPTS, wait_initial=0, wait_max=0, wait_jitter=0
        )
        def request(method: str, path: str) -> httpx.Response:
            response = client.request(method, path)
            response.raise_for_status()
            return response

        yield request


CLIENTS: list[tuple[str, Callable[[str, CountingTransport], AbstractContextManager[Call]]]] = [
    ("resilient-client (defaults)", lambda url, c: ours(url, c)),
    ("  … breaker=None", lambda url, c: ours(url, c, breaker=None)),
    ("  … breaker=None, budget=None", lambda url, c: ours(url, c, breaker=None, budget=None)),
    (f"httpx-retries {version('httpx-retries')}", with_httpx_retries),
    (f"stamina {version('stamina')}", with_stamina),
]


@dataclass(frozen=True)
class Scenario:
    label: str
    rate: float | None
    """Share of attempts ``/outage`` fails with 503; None: connection refused."""
    method: str = "GET"
    concurrent: bool = True


SCENARIOS = [
    Scenario("503", 1.0),
    Scenario("refused", None),
    Scenario("50%", 0.5),
    # Threads change nothing here that the sequential run doesn't show; skipped for time.
    Scenario("20%", 0.2, concurrent=False),
    # A write: who retries it, and with an idempotency key or blindly?
    Scenario("503 POST", 1.0, method="POST", concurrent=False),
]


@dataclass(frozen=True)
class Row:
    scenario: str
    mode: str
    client: str
    calls: int
    attempts: int
    fast: int
    ok: int
    wall: float
    ends: collections.Counter[str]
    keyed: int | None
    """Attempts the server saw carrying an Idempotency-Key (None: no server)."""


def run_calls(
    call: Call, counter: CountingTransport, method: str, path: str, calls: int, threads: int
) -> tuple[int, int, collections.Counter[str]]:
    """Makes ``calls`` calls; returns (failed fast, succeeded, how calls ended)."""
    lock = threading.Lock()
    fast = ok = 0
    ends: collections.Counter[str] = collections.Counter()

    def one(_: int) -> None:
        nonlocal fast, ok
        counter.take_call_attempts()
        rejected = False
        try:
            end = str(call(method, path).status_code)
        except (httpx.HTTPStatusError, httpx.TransportError) as exc:
            rejected = isinstance(exc, LOCAL_REJECTIONS)
            end = type(exc).__name__
            if isinstance(exc, httpx.HTTPStatusError):
                end += f" {exc.response.status_code}"
        attempts = counter.take_call_attempts()
        if rejected != (attempts == 0):
            # Failing fast is counted as "no attempt"; a local rejection must agree.
            print(f"!! {path}: call ended in {end} after {attempts} attempts")
        with lock:
            ends[end] += 1
            ok += end == "200"
            fast += attempts == 0

    if threads <= 1:
        for i in range(calls):
            one(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(calls)))
    return fast, ok, ends


def run(
    server_url: str,
    app: ChaosApp,
    dead_url: str,
    scenario: Scenario,
    mode: str,
    threads: int,
    calls: int,
) -> list[Row]:
    """One row per client: a fresh client, and a fresh scenario name on the server."""
    rows = []
    for index, (label, factory) in enumerate(CLIENTS):
        name = f"{scenario.label}-{mode}-{index}".replace("%", "pct").replace(" ", "-")
        if scenario.rate is None:
            base_url = dead_url
        else:
            base_url = server_url
            app.set_failure_plan(name, rate=scenario.rate, status=503, seed=SEED)
        counter = CountingTransport(httpx.HTTPTransport(verify=_ssl_context()))
        with factory(base_url, counter) as call:
            start = time.perf_counter()
            fast, ok, ends = run_calls(
                call, counter, scenario.method, f"/outage/{name}", calls, threads
            )
            wall = time.perf_counter() - start
        keyed = None
        if scenario.rate is not None:
            stats = app.scenario(name)
            if stats.attempts != counter.attempts:
                print(f"!! {name}: client sent {counter.attempts}, server got {stats.attempts}")
            keyed = sum(
                any(header.lower() == "idempotency-key" for header in request.headers)
                for request in stats.requests
            )
        rows.append(
            Row(
                scenario.label,
                mode,
                label,
                calls,
                counter.attempts,
                fast,
                ok,
                wall,
                ends,
                keyed,
            )
        )
    return rows


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Building one costs ~0.1 s (loading CA certificates); every transport here speaks
    # plain HTTP, so they share one instead of paying that 60 times.
    return ssl.create_default_context()


@contextmanager
def dead_port() -> Iterator[str]:
    """A URL whose port is bound but not listening: connects are refused at once, and
    nothing else can take the port meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def print_table(rows: list[Row], detail: bool) -> None:
    width = max(len(row.client) for row in rows)
    header = (
        f"{'scenario':<8} {'mode':<6} {'client':<{width}} {'calls':>6} {'attempts':>8} "
        f"{'amplif.':>8} {'fast-fail':>9} {'ok':>7} {'wall':>7}"
    )
    print(header)
    print("-" * len(header))
    previous = None
    for row in rows:
        if previous is not None and (row.scenario, row.mode) != previous:
            print()
        previous = (row.scenario, row.mode)
        print(
            f"{row.scenario:<8} {row.mode:<6} {row.client:<{width}} {row.calls:>6} "
            f"{row.attempts:>8} {row.attempts / row.calls:>7.2f}x "
            f"{row.fast / row.calls:>8.1%} {row.ok / row.calls:>7.1%} {row.wall:>6.2f}s"
        )
        if detail:
            ends = ", ".join(f"{end}: {n}" for end, n in row.ends.most_common())
            keyed = "" if row.keyed is None else f"; attempts with Idempotency-Key: {row.keyed}"
            print(f"{'':<16}ended: {ends}{keyed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per run (500)")
    parser.add_argument(
        "--threads", type=int, default=10, help="threads for the concurrent runs (10; 0: skip)"
    )
    parser.add_argument("--detail", action="store_true", help="print how the calls ended")
    args = parser.parse_args()

    # One log line per final failure (rate-limited) and one per stamina retry would only
    # add noise and time; what the clients do is counted, not logged.
    logging.getLogger("resilient_client").setLevel(logging.CRITICAL)
    stamina.instrumentation.set_on_retry_hooks([])
    stamina.set_testing(False)  # real stamina, waits as configured (zero)

    modes = [("seq", 1)] + ([(f"{args.threads}thr", args.threads)] if args.threads > 1 else [])
    print(__doc__.splitlines()[0])
    print(
        f"{ATTEMPTS} attempts per call for every client, all waits set to 0 "
        "(retry counts are compared, not sleeping)."
    )
    print(
        "Ours with defaults: breaker opens after 5 consecutive failures for 30 s (longer "
        "than this run),\nretry budget 10 % of calls + 1/s over 10 s.\n"
    )
    rows: list[Row] = []
    started = time.perf_counter()
    with serve(ChaosApp()) as server, dead_port() as dead_url:
        for scenario in SCENARIOS:
            for mode, threads in modes if scenario.concurrent else modes[:1]:
                rows += run(server.url, server.app, dead_url, scenario, mode, threads, args.calls)
    print_table(rows, args.detail)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
