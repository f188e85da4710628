"""Issue 17, point 1: the deadline holds against a server trickling the headers or the body
a byte at a time, sync and async: every call ends within 50 ms of its deadline.

Real time, kept short: a 0.6 s deadline, a read timeout (0.4 s) the trickle never trips,
20 calls per case run five at a time.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest
from drivers import Driver
from test_hostile_kit import Hostile, serving

import resilient_client as rc

DEADLINE = 0.6
CALLS, AT_ONCE = 20, 5
POLICY = rc.Policy(
    timeouts=rc.Timeouts(total=DEADLINE, read=0.4, attempt=None), breaker=None, budget=None
)

hostile = pytest.fixture(scope="module", name="hostile")(serving)


def _overruns(driver: Driver, client: Any, url: str) -> list[float]:
    """Each call's time past the deadline, in seconds (negative: it ended before)."""

    def sync_call() -> float:
        started = time.monotonic()
        with pytest.raises(driver.lib.HTTPError):
            client.get(url)
        return time.monotonic() - started - DEADLINE

    async def async_call(into: list[float]) -> None:
        started = time.monotonic()
        with pytest.raises(driver.lib.HTTPError):
            await client.get(url)
        into.append(time.monotonic() - started - DEADLINE)

    async def async_batch() -> list[float]:
        into: list[float] = []
        async with anyio.create_task_group() as group:
            for _ in range(AT_ONCE):
                group.start_soon(async_call, into)
        return into

    overruns: list[float] = []
    for _ in range(CALLS // AT_ONCE):
        if driver.is_async:
            overruns += driver.run(async_batch())
        else:
            with ThreadPoolExecutor(AT_ONCE) as pool:
                overruns += list(pool.map(lambda _: sync_call(), range(AT_ONCE)))
    return overruns


@pytest.mark.parametrize(
    "path", ["/trickle-body?every=0.1&bytes=100", "/trickle-headers?every=0.1"]
)
def test_a_trickling_server_cannot_keep_a_call_past_its_deadline(
    driver: Driver, hostile: Hostile, path: str
) -> None:
    client = driver.client(policy=POLICY)

    overruns = _overruns(driver, client, hostile.url(path))

    assert len(overruns) == CALLS
    assert max(overruns) <= 0.050, sorted(overruns)[-3:]


def test_a_call_that_ends_in_time_is_not_cut(driver: Driver, hostile: Hostile) -> None:
    client = driver.client(policy=POLICY)

    response = driver.request(client, "GET", hostile.url("/trickle-body?every=0.01&bytes=5"))

    assert (response.status_code, response.content) == (200, b"xxxxx")


def test_an_inner_transport_retrying_connects_cannot_keep_a_call_past_its_deadline(
    driver: Driver,
) -> None:
    # httpcore sleeps 0.5 s, then 1 s between an HTTPTransport(retries=3)'s connects: the
    # sleeps, not the connects (refused at once here), are what must end by the deadline.
    deadline = 0.3
    lib = driver.lib
    inner = lib.AsyncHTTPTransport(retries=3) if driver.is_async else lib.HTTPTransport(retries=3)
    policy = rc.Policy(timeouts=rc.Timeouts(total=deadline), retry=rc.Retry(max_attempts=1))
    client = driver.client(transport=inner, policy=policy)
    with socket.socket() as refusing:  # bound, never listening: every connect is refused
        refusing.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{refusing.getsockname()[1]}/"

        started = time.monotonic()
        with pytest.raises(lib.TimeoutException):
            driver.request(client, "GET", url)
        overrun = time.monotonic() - started - deadline

    assert overrun <= 0.050
