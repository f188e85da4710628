"""An ``async def`` fallback: awaited under the async client, a clear TypeError under the
sync one. Against the real upstream (the chaos server)."""

from __future__ import annotations

import gc
import warnings
from typing import Any

import httpx
import pytest
from drivers import Driver

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock


class AsyncFallback:
    """An async fallback answering ``{"fallback": <why>}``, keeping the failures shown."""

    def __init__(self, answer: bool = True) -> None:
        self.failures: list[Any] = []
        self.answer = answer

    async def __call__(self, request: httpx.Request, failure: Any) -> httpx.Response | None:
        self.failures.append(failure)
        if not self.answer:
            return None
        why = type(failure).__name__ if isinstance(failure, BaseException) else "status"
        return httpx.Response(200, json={"fallback": why})


def _client(driver: Driver, upstream: RunningServer, fallback: Any, **policy: Any) -> Any:
    policy.setdefault("retry", rc.Retry(max_attempts=2))
    return driver.client(
        base_url=upstream.url,
        clock=FakeClock(),
        policy=rc.Policy(budget=None, fallback=fallback, **policy),
    )


def _sync_refuses(driver: Driver, client: Any, url: str) -> None:
    """Under the sync client: a TypeError saying why, and no coroutine left unawaited."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError, match="async client"):
            driver.request(client, "GET", url)
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_an_async_fallback_answers_a_final_503(driver: Driver, upstream: RunningServer) -> None:
    fallback = AsyncFallback()
    client = _client(driver, upstream, fallback, breaker=None)
    if not driver.is_async:
        return _sync_refuses(driver, client, "/status/final/503")
    response = driver.request(client, "GET", "/status/final/503")
    assert response.json() == {"fallback": "status"}
    assert upstream.app.scenario("final").attempts == 2
    assert fallback.failures[0].status_code == 503
    info = rc.resilience_info(response)
    assert info is not None and info.fallback and info.attempts == 2


def test_an_async_fallback_answers_an_open_breaker(driver: Driver, upstream: RunningServer) -> None:
    fallback = AsyncFallback()
    breaker = rc.Breaker(window="consecutive", failure_threshold=1, reset_timeout=60.0)
    client = _client(driver, upstream, fallback, breaker=breaker, retry=None)
    if not driver.is_async:
        return _sync_refuses(driver, client, "/status/tripped/503")
    driver.request(client, "GET", "/status/tripped/503")  # opens the breaker (answered)
    response = driver.request(client, "GET", "/status/tripped/503")
    assert response.json() == {"fallback": "CircuitOpenError"}
    assert isinstance(fallback.failures[-1], rc.CircuitOpenError)
    assert upstream.app.scenario("tripped").attempts == 1  # the second never left


def test_an_async_fallback_declining_lets_the_failure_through(
    driver: Driver, upstream: RunningServer
) -> None:
    if not driver.is_async:
        pytest.skip("the sync client refuses any async fallback (tested above)")
    client = _client(driver, upstream, AsyncFallback(answer=False), breaker=None)
    with pytest.raises(httpx.ConnectError):
        driver.request(client, "GET", "http://127.0.0.1:1/nowhere")
    assert driver.request(client, "GET", "/status/declined/503").status_code == 503


def test_an_async_fallback_that_raises_ends_the_call_with_its_error(
    driver: Driver, upstream: RunningServer
) -> None:
    if not driver.is_async:
        pytest.skip("the sync client refuses any async fallback (tested above)")

    async def broken(request: httpx.Request, failure: Any) -> httpx.Response:
        raise LookupError("cache down")

    client = _client(driver, upstream, broken, breaker=None)
    with pytest.raises(LookupError, match="cache down"):
        driver.request(client, "GET", "/status/broken/503")
