"""Testing mode (``rc.testing.no_waits()`` / ``set_testing``): waits skipped and recorded,
every other decision unchanged - sync, asyncio and trio, system clock and FakeClock."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import httpx
import pytest
import trio

import resilient_client as rc
from resilient_client._clock import SYSTEM_CLOCK, active_waits, skip_wait
from resilient_client.testing import FakeClock, ScriptedTransport, no_waits, set_testing

URL = "http://api.test/v1/items"


def busy(seconds: int = 5) -> httpx.Response:
    return httpx.Response(503, headers={"Retry-After": str(seconds)})


@pytest.fixture(params=["sync", "asyncio", "trio"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def get(kind: str, transport: ScriptedTransport, **kwargs: Any) -> httpx.Response:
    """One GET through a fresh resilient client of ``kind``, over ``transport``."""
    kwargs.setdefault("telemetry", False)
    if kind == "sync":
        with rc.ResilientClient(transport=transport, **kwargs) as client:
            return client.get(URL)

    async def go() -> httpx.Response:
        async with rc.AsyncResilientClient(transport=transport, **kwargs) as client:
            return await client.get(URL)

    return asyncio.run(go()) if kind == "asyncio" else trio.run(go)


def test_waits_on_the_system_clock_are_skipped_and_recorded(kind: str) -> None:
    transport = ScriptedTransport([busy(), busy(), 200])
    started = time.monotonic()
    with no_waits() as waits:
        response = get(kind, transport)
    # Two Retry-After waits of 5 s each were asked for; none was slept.
    assert response.status_code == 200 and len(transport.requests) == 3
    assert waits.delays == [5.0, 5.0] and waits.total == 10.0
    assert time.monotonic() - started < 4.0


def test_on_a_fake_clock_a_skipped_wait_moves_no_time(kind: str) -> None:
    clock = FakeClock()
    with no_waits() as waits:
        response = get(kind, ScriptedTransport([busy(), 200]), clock=clock)
    assert response.status_code == 200
    assert waits.delays == [5.0] and clock.sleeps == [] and clock.monotonic() == 1000.0


def test_outside_testing_mode_a_fake_clock_sleeps_as_before(kind: str) -> None:
    clock = FakeClock()
    get(kind, ScriptedTransport([busy(), 200]), clock=clock)
    assert active_waits() is None
    assert clock.sleeps == [5.0] and clock.monotonic() == 1005.0


def test_retries_and_the_breaker_decide_as_they_would_without_testing_mode(kind: str) -> None:
    policy = rc.Policy(
        retry=rc.Retry(max_attempts=3), breaker=rc.Breaker(failure_threshold=3), budget=None
    )
    transport = ScriptedTransport([503] * 10)
    client = rc.ResilientClient(transport=transport, policy=policy, telemetry=False)
    with no_waits() as waits:
        assert client.get(URL).status_code == 503  # three attempts, three failures
        with pytest.raises(rc.CircuitOpenError):
            client.get(URL)
    assert len(transport.requests) == 3 and len(waits.delays) == 2


def test_no_waits_blocks_nest_and_restore_the_mode_before() -> None:
    with no_waits() as outer:
        SYSTEM_CLOCK.sleep(30)
        with no_waits() as inner:
            SYSTEM_CLOCK.sleep(40)
        assert active_waits() is outer
        SYSTEM_CLOCK.sleep(50)
    assert outer.delays == [30, 50] and inner.delays == [40]
    assert active_waits() is None


def test_no_waits_restores_the_mode_when_the_block_raises() -> None:
    with pytest.raises(KeyError), no_waits():
        raise KeyError("boom")
    assert active_waits() is None


def test_set_testing_switches_the_mode_until_switched_back() -> None:
    try:
        waits = set_testing(True)
        assert waits is not None and set_testing(True) is waits  # already on: same record
        started = time.monotonic()
        SYSTEM_CLOCK.sleep(30)
        assert waits.delays == [30] and time.monotonic() - started < 5.0
    finally:
        assert set_testing(False) is None
    assert active_waits() is None


def test_a_clock_of_ones_own_honours_testing_mode_through_skip_wait() -> None:
    slept: list[float] = []

    class Stopwatch(FakeClock):
        def sleep(self, seconds: float) -> None:
            if not skip_wait(seconds):
                slept.append(seconds)

    with no_waits() as waits:
        Stopwatch().sleep(7)
    Stopwatch().sleep(8)
    assert waits.delays == [7] and slept == [8]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_skipped_async_wait_is_still_a_checkpoint(backend: str) -> None:
    """A retry loop with its waits skipped can still be cancelled, as with real waits."""

    async def cancelled_while_waiting() -> bool:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await SYSTEM_CLOCK.asleep(30)
        return scope.cancelled_caught

    with no_waits() as waits:
        assert anyio.run(cancelled_while_waiting, backend=backend) is True
    assert waits.delays == [30]
