"""The incident monitor's cost, as ratios and figures measured in one process.

1. Per call, the same client with and without a monitor over ``httpx.MockTransport``,
   alternating rounds (off, on, off, on, ...) so drift hits both alike; median rounds.
   Target: <= 1.03x.
2. Memory per endpoint and per open incident (tracemalloc), after 1 000 and after
   20 000 calls: it must not grow with the number of calls.
3. Time from the first failure of a hard outage to the trigger alert, on a fake clock
   (one call per fake 100 ms). Target: <= one breaker trip + one window bucket (6 s).

Run: ``python benchmarks/incidents.py [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import tracemalloc

import httpx

import resilient_client as rc
from resilient_client.incidents import Alert, IncidentMonitor
from resilient_client.testing import FakeClock

URL = "http://api.test/v1/users/1"


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b'{"ok": true}', request=request)


def per_call(rounds: int, n: int) -> None:
    plain = rc.ResilientClient(transport=httpx.MockTransport(ok))
    monitor = IncidentMonitor()
    watched = rc.ResilientClient(transport=httpx.MockTransport(ok), observers=[monitor])

    def run(client: rc.ResilientClient) -> float:
        start = time.perf_counter()
        for _ in range(n):
            client.get(URL)
        return (time.perf_counter() - start) / n

    run(plain), run(watched)  # warm up
    off, on = [], []
    for _ in range(rounds):
        off.append(run(plain))
        on.append(run(watched))
    a, b = statistics.median(off), statistics.median(on)
    print(f"per call, monitor off {a * 1e6:7.1f} us   on {b * 1e6:7.1f} us   "
          f"ratio {b / a:5.3f}   (+{(b - a) * 1e6:.2f} us; target <= 1.03)")  # fmt: skip
    monitor.close()


def memory(calls: int, endpoints: int, failing: bool) -> float:
    clock = FakeClock()
    monitor = IncidentMonitor(clock=clock)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if failing else 200, request=request)

    client = rc.ResilientClient(
        transport=httpx.MockTransport(handler), clock=clock, observers=[monitor],
        policy=rc.Policy(retry=None, breaker=None),
    )  # fmt: skip
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(calls):
        client.get(f"http://host{i % endpoints}.test/x")
        clock.advance(0.01)
    monitor.flush()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    monitor.close()
    return grown / endpoints


def time_to_trigger() -> float:
    clock = FakeClock()
    alerts: list[tuple[float, Alert]] = []

    class Sink:
        name = "bench"

        def send(self, alert: Alert) -> None:
            alerts.append((clock.wall(), alert))

    monitor = IncidentMonitor(clock=clock, sinks=[Sink()])
    state = {"fail": False}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if state["fail"] else 200, request=request)

    client = rc.ResilientClient(transport=httpx.MockTransport(handler), clock=clock,
                                observers=[monitor])  # fmt: skip
    for _ in range(300):
        client.get(URL)
        clock.advance(0.1)
        monitor.flush()
    state["fail"] = True
    first = clock.wall()
    while not alerts and clock.wall() - first < 120:
        with contextlib.suppress(httpx.HTTPError):
            client.get(URL)
        clock.advance(0.1)
        monitor.flush()
    monitor.close()
    return alerts[0][0] - first if alerts else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, n = (5, 500) if args.quick else (15, 2000)
    per_call(rounds, n)
    for failing in (False, True):
        small, large = memory(1000, 10, failing), memory(20000, 10, failing)
        what = "per endpoint in an open incident" if failing else "per healthy endpoint"
        print(f"memory {what:<34} {small / 1024:6.1f} KiB after 1k calls, "
              f"{large / 1024:6.1f} KiB after 20k")  # fmt: skip
    took = time_to_trigger()
    print(
        f"first failure of a hard outage -> trigger alert: {took:.1f} s of fake time "
        "(target <= breaker trip + one 6 s bucket)"
    )


if __name__ == "__main__":
    main()
