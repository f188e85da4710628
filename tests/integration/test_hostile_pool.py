"""Issue 17, point 3: after a storm of attempt timeouts the async connection pool is never
left wedged (httpcore 1.0.9 keeps a connection given to a cancelled request "in use"
forever): a follow-up call succeeds promptly, on asyncio and on trio."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from test_hostile_kit import Hostile, serving

import resilient_client as rc

hostile = pytest.fixture(scope="module", name="hostile")(serving)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_storm_of_attempt_timeouts_leaves_the_pool_usable(hostile: Hostile, backend: str) -> None:
    policy = rc.Policy(
        timeouts=rc.Timeouts(attempt=0.5, total=5.0), retry=None, breaker=None, budget=None
    )
    inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=10))

    async def storm_then_call() -> tuple[int, float, int]:
        async with rc.AsyncResilientClient(transport=inner, policy=policy) as client:

            async def slow() -> None:
                with pytest.raises(rc.AttemptTimeout):
                    await client.get(hostile.url("/slow?delay=0.6"))

            async with anyio.create_task_group() as group:
                for _ in range(300):
                    group.start_soon(slow)
            started = time.monotonic()
            response = await client.get(hostile.url("/ok"))
            return response.status_code, time.monotonic() - started, len(inner._pool.connections)

    status, took, connections = anyio.run(storm_then_call, backend=backend)

    assert status == 200
    assert took < 0.25
    assert connections <= 10
