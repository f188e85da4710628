"""The libraries under test, each as an async ``call()`` over the same provider transport.

Every library gets the same budget of work per call: 3 attempts, a first retry delay of
up to 0.25 s doubling per retry (capped at 8 s), and a 5 s read timeout per attempt
(httpx's default). Each keeps its own jitter style and its own default list of what it
retries; stamina and tenacity use the usual recipe (transport errors, 5xx and 429).
Waits go to trio's virtual clock: ours through ``clock=``, tenacity through ``sleep=``,
stamina on its own (it sleeps with ``trio.sleep`` under trio), httpx-retries through a
``Retry`` subclass whose ``asleep`` is the only place it sleeps (read from its source:
``RetryTransport`` calls ``retry.asleep(response)`` between attempts, and ``Retry``
copies itself with ``self.__class__``, so the subclass survives ``increment()``).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx
import trio

import resilient_client as rc

__all__ = [
    "ATTEMPTS",
    "CLIENTS",
    "SWEEPS",
    "Client",
    "TrioClock",
    "available",
    "ours_client",
]

ATTEMPTS = 3
BASE_DELAY = 0.25
MAX_DELAY = 8.0
TIMEOUT = 5.0
URL = "http://provider.test/v1/items"

Call = Callable[[], Awaitable[bool]]
"""Makes one GET call; True when it ended with a 2xx."""
Factory = Callable[[httpx.AsyncBaseTransport, random.Random], AbstractAsyncContextManager[Call]]


class TrioClock:
    """Our :class:`~resilient_client._clock.Clock` on trio's (virtual) clock."""

    def __init__(self, rng: random.Random) -> None:
        self.random = rng.random

    def monotonic(self) -> float:
        return trio.current_time()

    def wall(self) -> float:
        return 1_700_000_000.0 + trio.current_time()

    def sleep(self, seconds: float) -> None:
        raise RuntimeError("the scenarios run async only")

    async def asleep(self, seconds: float) -> None:
        await trio.sleep(max(0.0, seconds))


def _ok(response: httpx.Response) -> bool:
    return 200 <= response.status_code < 300


def ours_client(**policy: Any) -> Factory:
    """Our async client over the provider with ``rc.Policy(**policy)``, same retry shape."""

    @asynccontextmanager
    async def make(provider: httpx.AsyncBaseTransport, rng: random.Random) -> AsyncIterator[Call]:
        fields: dict[str, Any] = {
            "retry": rc.Retry(
                max_attempts=ATTEMPTS, backoff=rc.Backoff(initial=BASE_DELAY, max=MAX_DELAY)
            ),
            "timeouts": rc.Timeouts(connect=TIMEOUT, read=TIMEOUT, attempt=TIMEOUT),
        }
        fields.update(policy)
        client = rc.AsyncResilientClient(
            transport=provider,
            policy=rc.Policy(**fields),
            clock=TrioClock(rng),
            telemetry=False,
        )
        async with client:

            async def call() -> bool:
                return _ok(await client.get(URL))

            yield call

    return make


@asynccontextmanager
async def plain_httpx(
    provider: httpx.AsyncBaseTransport, rng: random.Random
) -> AsyncIterator[Call]:
    async with httpx.AsyncClient(transport=provider, timeout=TIMEOUT) as client:

        async def call() -> bool:
            return _ok(await client.get(URL))

        yield call


@asynccontextmanager
async def with_httpx_retries(
    provider: httpx.AsyncBaseTransport, rng: random.Random
) -> AsyncIterator[Call]:
    import httpx_retries

    class TrioRetry(httpx_retries.Retry):
        async def asleep(self, response: httpx.Response | Exception) -> None:
            headers = response.headers if isinstance(response, httpx.Response) else {}
            delay = self._calculate_sleep(headers)
            await trio.sleep(delay)
            self.elapsed_sleep += delay

    # Its backoff is factor × 2**retries_made, drawn from [0, that]: 0.125 gives the
    # first retry up to 0.25 s, as for the others.
    retry = TrioRetry(total=ATTEMPTS - 1, backoff_factor=BASE_DELAY / 2, max_backoff_wait=MAX_DELAY)
    transport = httpx_retries.RetryTransport(transport=provider, retry=retry)
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:

        async def call() -> bool:
            return _ok(await client.get(URL))

        yield call


def _recipe(exc: BaseException) -> bool:
    # The usual recipe from stamina's docs, with 429 added: transport errors, 5xx, 429.
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return code >= 500 or code == 429
    return isinstance(exc, httpx.TransportError)


@asynccontextmanager
async def with_stamina(
    provider: httpx.AsyncBaseTransport, rng: random.Random
) -> AsyncIterator[Call]:
    import stamina

    async with httpx.AsyncClient(transport=provider, timeout=TIMEOUT) as client:
        # stamina's wait: initial × 2**(n-1) + uniform(0, jitter), capped; timeout=None so
        # its wall-clock limit (45 s by default) does not read the real clock.
        @stamina.retry(
            on=_recipe,
            attempts=ATTEMPTS,
            timeout=None,
            wait_initial=BASE_DELAY,
            wait_jitter=BASE_DELAY,
            wait_max=MAX_DELAY,
        )
        async def request() -> httpx.Response:
            response = await client.get(URL)
            response.raise_for_status()
            return response

        async def call() -> bool:
            try:
                return _ok(await request())
            except httpx.HTTPStatusError:
                return False

        yield call


@asynccontextmanager
async def with_tenacity(
    provider: httpx.AsyncBaseTransport, rng: random.Random
) -> AsyncIterator[Call]:
    import tenacity

    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(ATTEMPTS),
        wait=tenacity.wait_random_exponential(multiplier=BASE_DELAY, max=MAX_DELAY),
        retry=tenacity.retry_if_exception(_recipe),
        sleep=trio.sleep,
        reraise=True,
    )
    async with httpx.AsyncClient(transport=provider, timeout=TIMEOUT) as client:

        async def request() -> httpx.Response:
            response = await client.get(URL)
            response.raise_for_status()
            return response

        async def call() -> bool:
            try:
                return _ok(await retrying(request))
            except httpx.HTTPStatusError:
                return False

        yield call


@dataclass(frozen=True)
class Client:
    label: str
    make: Factory
    package: str | None = None
    """The PyPI package it needs (None: only this project and httpx)."""


def _label(package: str) -> str:
    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return package


def available(client: Client) -> bool:
    if client.package is None:
        return True
    try:
        version(client.package)
    except PackageNotFoundError:
        return False
    return True


CLIENTS: tuple[Client, ...] = (
    Client("ours (defaults)", ours_client()),
    Client("ours, breaker=None", ours_client(breaker=None)),
    Client(_label("httpx-retries"), with_httpx_retries, "httpx-retries"),
    Client(_label("stamina"), with_stamina, "stamina"),
    Client(_label("tenacity"), with_tenacity, "tenacity"),
    Client("httpx, no retries", plain_httpx),
)


def _budget_sweep() -> tuple[Client, ...]:
    ratios = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
    return tuple(
        Client(f"ratio={r:g}", ours_client(breaker=None, budget=rc.RetryBudget(ratio=r)))
        for r in ratios
    )


def _breaker_sweep() -> tuple[Client, ...]:
    # Each a change of one field of the default breaker, with the default budget.
    variants: list[tuple[str, dict[str, Any]]] = [
        ("window_size=2", {"window_size": 2.0}),
        ("window_size=5 (default)", {}),
        ("window_size=10", {"window_size": 10.0}),
        ("reset_timeout=5", {"reset_timeout": 5.0}),
        ("reset_timeout_max=8", {"reset_timeout_max": 8.0}),
        ("failure_rate_threshold=0.5", {"failure_rate_threshold": 0.5}),
        ("failure_rate_threshold=0.9", {"failure_rate_threshold": 0.9}),
        ("minimum_calls=20", {"minimum_calls": 20}),
    ]
    return tuple(
        Client(label, ours_client(breaker=rc.Breaker(**change))) for label, change in variants
    )


SWEEPS: dict[str, tuple[tuple[str, ...], Callable[[], tuple[Client, ...]]]] = {
    "budget": (("random20", "random50", "outage"), _budget_sweep),
    "breaker": (("random50", "outage", "failfast", "queueing"), _breaker_sweep),
}
"""``--sweep NAME``: the scenarios it runs and the variants of our policy it compares
(each default but one), for the trade-off tables."""
