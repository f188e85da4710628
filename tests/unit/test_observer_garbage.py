"""An observed call leaves no more garbage for the cyclic collector than an unobserved one:
the call and its view are freed by their reference counts (a cycle between them kept
every observed call's request and response alive until the next collection)."""

from __future__ import annotations

import gc

import httpx

import resilient_client as rc
from resilient_client.incidents import IncidentMonitor
from resilient_client.testing import FakeClock


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"{}", request=request)


def garbage_after(client: rc.ResilientClient, calls: int) -> int:
    """Objects the cyclic collector finds unreachable after ``calls`` calls."""
    for _ in range(3):  # warm: caches filled, first-call work done
        client.get("http://api.test/x")
    gc.collect()
    for _ in range(calls):
        client.get("http://api.test/x")
    return gc.collect()


def test_an_observed_call_leaves_no_cycle_of_its_own() -> None:
    # (A failed call's evidence is kept by the monitor until judged: successes only.)
    clock = FakeClock()
    policy = rc.Policy(retry=None)
    plain = rc.ResilientClient(transport=httpx.MockTransport(ok), clock=clock, policy=policy)
    monitor = IncidentMonitor(clock=clock)
    watched = rc.ResilientClient(
        transport=httpx.MockTransport(ok),
        clock=clock,
        policy=policy,
        observers=[monitor],
    )
    calls = 40
    gc.disable()  # no collection between the calls and the count
    try:
        extra = garbage_after(watched, calls) - garbage_after(plain, calls)
        # A cycle through each observed call would leave a dozen objects or more per call;
        # the monitor's own one-off objects (made lazily on its first calls) are a few.
        assert extra < calls
    finally:
        gc.enable()
        monitor.close()
