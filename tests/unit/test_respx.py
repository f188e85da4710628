"""respx mocks *below* the pipeline, so the whole pipeline runs against its routes.

respx's default mocker patches httpcore, under httpx's transports (ours wraps them). Its
``using="httpx"`` mocker replaces the client's transport lookup instead and would
silently skip the pipeline: these tests fail if anyone switches to it.
"""

from __future__ import annotations

import asyncio

import httpx
import respx

import resilient_client as rc
from resilient_client.testing import FakeClock

URL = "https://api.example.com/v1/items/7"


@respx.mock
def test_respx_routes_answer_each_attempt_of_the_sync_pipeline() -> None:
    route = respx.get(URL).mock(side_effect=[httpx.Response(503), httpx.Response(200)])
    with rc.ResilientClient(clock=FakeClock()) as client:
        response = client.get(URL)
    assert response.status_code == 200
    assert route.call_count == 2
    assert response.extensions["resilience"].attempts == 2


@respx.mock
def test_respx_routes_answer_each_attempt_of_the_async_pipeline() -> None:
    route = respx.post(URL).mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(201)])

    async def main() -> httpx.Response:
        async with rc.AsyncResilientClient(clock=FakeClock()) as client:
            return await client.post(URL, json={"a": 1})

    response = asyncio.run(main())
    assert response.status_code == 201
    assert route.call_count == 2
    keys = {call.request.headers["idempotency-key"] for call in route.calls}
    assert len(keys) == 1
