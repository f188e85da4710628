"""Pacing against the real upstream: the chaos server's ``/limited`` route enforces a limit
and answers with each header family. Server and clients share one FakeClock, so every
window and wait is exact and no test sleeps."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from drivers import Driver

import resilient_client as rc
from resilient_client.chaos import ChaosApp, RunningServer, serve
from resilient_client.testing import FakeClock

_names = itertools.count()


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def server(clock: FakeClock) -> Iterator[RunningServer]:
    with serve(ChaosApp(clock=clock)) as running:
        yield running


@pytest.fixture
def name(clock: FakeClock) -> str:
    del clock.sleeps[:]
    return f"pacing{next(_names)}"


def _client(driver: Driver, server: RunningServer, clock: FakeClock, **policy: object) -> object:
    return driver.client(
        base_url=server.url,
        clock=clock,
        policy=rc.Policy(breaker=None, budget=None, **policy),  # type: ignore[arg-type]
    )


def _statuses(server: RunningServer, name: str) -> int:
    return server.app.scenario(name).attempts


@pytest.mark.parametrize("family", ["ietf", "x", "x-epoch", "openai", "anthropic"])
def test_no_429_once_the_limit_is_learned(
    driver: Driver, server: RunningServer, clock: FakeClock, name: str, family: str
) -> None:
    client = _client(driver, server, clock, rate_limit=rc.RateLimit(max_wait=5.0))
    url = f"/limited/{name}?limit=3&window=2&family={family}"
    statuses = [driver.request(client, "GET", url).status_code for _ in range(10)]
    assert statuses == [200] * 10
    # nothing was retried: each call was one request, paced into the windows
    assert _statuses(server, name) == 10
    assert clock.sleeps == pytest.approx([2.0, 2.0, 2.0])


def test_without_pacing_the_same_limit_answers_429(
    driver: Driver, server: RunningServer, clock: FakeClock, name: str
) -> None:
    client = _client(driver, server, clock, retry=None)
    url = f"/limited/{name}?limit=3&window=2&family=ietf"
    statuses = [driver.request(client, "GET", url).status_code for _ in range(10)]
    assert statuses == [200, 200, 200] + [429] * 7


def test_headers_ignored_when_told(
    driver: Driver, server: RunningServer, clock: FakeClock, name: str
) -> None:
    limit = rc.RateLimit(per_second=100, respect_headers=False)
    client = _client(driver, server, clock, retry=None, rate_limit=limit)
    url = f"/limited/{name}?limit=1&window=2&family=ietf"
    statuses = [driver.request(client, "GET", url).status_code for _ in range(3)]
    assert statuses == [200, 429, 429]


def test_a_fixed_rate_paces_without_headers(
    driver: Driver, server: RunningServer, clock: FakeClock, name: str
) -> None:
    client = _client(driver, server, clock, rate_limit=rc.RateLimit(per_second=2))
    start = clock.monotonic()
    for _ in range(5):
        assert driver.request(client, "GET", f"/ok/{name}").status_code == 200
    # a second's worth at once, then one every half second
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5])
    arrivals = [r.arrived - start for r in server.app.scenario(name).requests]
    assert arrivals == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])


@pytest.mark.parametrize("wait", ["max_wait", "deadline"])
def test_a_call_past_its_wait_raises_rate_limited_unsent(
    driver: Driver, server: RunningServer, clock: FakeClock, name: str, wait: str
) -> None:
    if wait == "max_wait":
        policy = {"rate_limit": rc.RateLimit(per_second=1, max_wait=0.5)}
    else:
        policy = {
            "rate_limit": rc.RateLimit(per_second=1, max_wait=5.0),
            "timeouts": rc.Timeouts(total=0.5, attempt=0.5),
        }
    client = _client(driver, server, clock, **policy)
    assert driver.request(client, "GET", f"/ok/{name}").status_code == 200
    with pytest.raises(driver.ns.RateLimited) as caught:
        driver.request(client, "GET", f"/ok/{name}")
    assert isinstance(caught.value, driver.ns.LoadShedError)
    assert isinstance(caught.value, driver.lib.TransportError)
    assert caught.value.retry_after == pytest.approx(1.0)
    info = rc.resilience_info(caught.value)
    assert info is not None and info.attempts == 0 and info.stop_reason == "rate_limit"
    assert _statuses(server, name) == 1  # the refused call never reached the server
    assert clock.sleeps == []


def test_a_retry_waits_for_its_turn(
    driver: Driver, server: RunningServer, clock: FakeClock, name: str
) -> None:
    retry = rc.Retry(backoff=rc.Backoff(initial=0.1, jitter="none"))
    client = _client(driver, server, clock, retry=retry, rate_limit=rc.RateLimit(per_second=1))
    response = driver.request(client, "GET", f"/flaky/{name}?fail=1")
    assert response.status_code == 200
    # the 0.1 s backoff, then the rest of the second the limit asks for
    assert clock.sleeps == pytest.approx([1.0])


def test_a_retry_past_the_wait_ends_with_the_last_outcome(
    driver: Driver, server: RunningServer, clock: FakeClock, name: str
) -> None:
    retry = rc.Retry(backoff=rc.Backoff(initial=0.1, jitter="none"))
    limit = rc.RateLimit(per_second=1, max_wait=0.5)
    client = _client(driver, server, clock, retry=retry, rate_limit=limit)
    response = driver.request(client, "GET", f"/flaky/{name}?fail=1")
    assert response.status_code == 503
    assert response.json()["ok"] is False  # kept open for the caller, not discarded
    info = rc.resilience_info(response)
    assert info is not None and info.stop_reason == "rate_limit" and info.attempts == 1
    assert _statuses(server, name) == 1


def test_a_429_with_only_retry_after_holds_the_next_calls(
    driver: Driver, server: RunningServer, clock: FakeClock, name: str
) -> None:
    client = _client(driver, server, clock, retry=None, rate_limit=rc.RateLimit(max_wait=5.0))
    url = f"/status/{name}/429?retry_after=3"
    assert driver.request(client, "GET", url).status_code == 429
    assert driver.request(client, "GET", url).status_code == 429
    assert clock.sleeps == pytest.approx([3.0])
