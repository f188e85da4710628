"""The incident monitor's cost, as ratios and figures measured in one process.

1. Per call, the same client with and without a monitor over ``httpx.MockTransport``,
   alternating rounds (off, on, off, on, ...) so drift hits both alike; median rounds.
   Target: <= 1.03x. With ``--counted``, the same as cachegrind instruction counts.
2. Memory per endpoint and per open incident (tracemalloc), after 1 000, 20 000 and
   60 000 calls: it must not grow with the number of calls (an open incident's figure
   grows until its series, samples and timeline reach their caps, then stays).
3. Time from the first failure of a hard outage to the trigger alert, on a fake clock
   (one call per fake 100 ms, after 30 s or 100 s of healthy calls; a failing call takes
   longer: its retries wait). Target: <= one breaker trip (the default breaker's 5 s
   window) + one window bucket (3 s by default).
4. One evaluation's cost (health judged, incidents moved), which runs once per bucket
   off the call path.

Run: ``python benchmarks/incidents.py [--quick] [--counted]``. ``--counted`` also counts
the per-call work under valgrind's cachegrind (as ``instructions.py`` does: deterministic,
whatever else the machine runs). There the monitor's clock is frozen: its evaluations run
once per window bucket of wall time, and under valgrind's fifty-fold slowdown they would
be charged to fifty times fewer calls than they serve; their own cost is reported apart
(per evaluation, timed).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
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


class FrozenClock:
    """A clock that never moves, read through builtins as the system clock is."""

    monotonic = itertools.repeat(1000.0).__next__
    wall = itertools.repeat(1.7e9).__next__
    random = itertools.repeat(0.5).__next__

    def sleep(self, seconds: float) -> None:
        pass

    async def asleep(self, seconds: float) -> None:
        pass


def calls(monitored: bool, count: int) -> None:
    """The counted work: ``count`` GETs, with or without a monitor (under valgrind)."""
    observers = [IncidentMonitor(clock=FrozenClock())] if monitored else []
    client = rc.ResilientClient(transport=httpx.MockTransport(ok), observers=observers)
    for _ in range(count):
        client.get(URL)


def counted() -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    few, many = 300, 1300
    found: dict[bool, float] = {}
    for monitored in (False, True):
        runs = []
        for count in (few, many):
            command = [
                "valgrind", "--tool=cachegrind", "--cachegrind-out-file=/dev/null",
                sys.executable, __file__, "--calls", str(int(monitored)), str(count),
            ]  # fmt: skip
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            report = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            refs = re.search(r"I\s+refs:\s+([\d,]+)", report.stderr)
            assert refs is not None, report.stderr[-2000:]
            runs.append(int(refs.group(1).replace(",", "")))
        found[monitored] = (runs[1] - runs[0]) / (many - few)
    off, on = found[False], found[True]
    print(f"per call, counted: {off:,.0f} instructions off, {on:,.0f} on, "
          f"ratio {on / off:5.3f} (+{on - off:,.0f}; target <= 1.03)")  # fmt: skip


def evaluation_cost(endpoints: int) -> None:
    clock = FakeClock()
    monitor = IncidentMonitor(clock=clock)
    client = rc.ResilientClient(transport=httpx.MockTransport(ok), clock=clock,
                                observers=[monitor])  # fmt: skip
    for i in range(endpoints * 10):
        client.get(f"http://host{i % endpoints}.test/x")
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        monitor.evaluate()
    took = (time.perf_counter() - start) / rounds
    print(f"one evaluation (once per bucket, off the call path), {endpoints} healthy "
          f"endpoints: {took * 1e6:,.0f} us")  # fmt: skip
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


def time_to_trigger(history: int) -> tuple[float, str]:
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
    for _ in range(history):
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
    if not alerts:
        return float("inf"), "none"
    return alerts[0][0] - first, alerts[0][1].severity


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--counted", action="store_true")
    args = parser.parse_args()
    rounds, n = (5, 500) if args.quick else (15, 2000)
    per_call(rounds, n)
    if args.counted:
        counted()
    evaluation_cost(10)
    for failing in (False, True):
        sizes = [memory(count, 10, failing) for count in (1000, 20000, 60000)]
        what = "per endpoint in an open incident" if failing else "per healthy endpoint"
        print(f"memory {what:<34} " + ", ".join(
            f"{size / 1024:6.1f} KiB after {count // 1000}k calls"
            for size, count in zip(sizes, (1000, 20000, 60000), strict=True)))  # fmt: skip
    for history in (300, 1000):
        took, severity = time_to_trigger(history)
        # At this volume the default breaker (100 calls in its 5 s window) never trips:
        # "one breaker trip" is its window, the time a tripping breaker needs.
        target = rc.Breaker().window_size + rc.HealthRules().bucket
        print(f"first failure of a hard outage -> trigger ({severity}), after {history // 10} s "
              f"of healthy calls: {took:.1f} s of fake time (target <= breaker window + one "
              f"bucket = {target:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["--calls"]:
        calls(sys.argv[2] == "1", int(sys.argv[3]))
    else:
        main()
