"""respx mocks *below* the pipeline, so the whole pipeline runs against its routes.

respx's default mocker patches httpcore, under httpx's transports (ours wraps them). Its
``using="httpx"`` mocker replaces the client's transport lookup instead and would
silently skip the pipeline: these tests fail if anyone switches to it. Sync and async
through ``driver``.
"""

from __future__ import annotations

import httpx
import respx
from drivers import Driver

from resilient_client.testing import FakeClock

URL = "https://api.example.com/v1/items/7"


def test_respx_routes_answer_each_attempt_of_the_pipeline(driver: Driver) -> None:
    with respx.mock:
        route = respx.get(URL).mock(side_effect=[httpx.Response(503), httpx.Response(200)])
        response = driver.request(driver.client(clock=FakeClock()), "GET", URL)
    assert response.status_code == 200
    assert route.call_count == 2
    assert response.extensions["resilience"].attempts == 2


def test_respx_routes_see_one_idempotency_key_on_every_attempt(driver: Driver) -> None:
    with respx.mock:
        route = respx.post(URL).mock(
            side_effect=[httpx.ConnectError("refused"), httpx.Response(201)]
        )
        response = driver.request(driver.client(clock=FakeClock()), "POST", URL, json={"a": 1})
    assert response.status_code == 201
    assert route.call_count == 2
    keys = {call.request.headers["idempotency-key"] for call in route.calls}
    assert len(keys) == 1
