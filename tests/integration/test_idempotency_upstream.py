"""Exactly-once effects for retried POSTs, against the upstream's idempotent /payments.

The upstream stores each operation by its Idempotency-Key, answers 409 while a key is in
progress, and can commit an operation and then drop the connection before answering.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from drivers import Driver

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

NO_WAIT = rc.Retry(max_attempts=3, backoff=rc.Backoff(initial=0.0, max=0.0))


def test_lost_responses_after_commit_end_in_exactly_one_effect_each(
    upstream: RunningServer,
) -> None:
    client = rc.ResilientClient(
        base_url=upstream.url,
        clock=FakeClock(),
        policy=rc.Policy(retry=NO_WAIT, budget=None, breaker=None),
    )
    with client:
        responses = [client.post("/payments/lost?lose=100", json={"amount": n}) for n in range(100)]
    assert [r.status_code for r in responses] == [201] * 100
    assert all(r.headers.get("idempotent-replayed") == "true" for r in responses)
    assert [r.json()["amount"] for r in responses] == list(range(100))
    assert upstream.app.effects("lost") == 100
    assert upstream.app.scenario("lost").attempts == 200


def test_lost_responses_with_twenty_calls_in_flight(upstream: RunningServer) -> None:
    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=20)
        async with rc.AsyncResilientClient(
            base_url=upstream.url,
            clock=FakeClock(),
            policy=rc.Policy(retry=NO_WAIT, budget=None, breaker=None),
            limits=limits,
        ) as client:
            gate = asyncio.Semaphore(20)

            async def pay(n: int) -> httpx.Response:
                async with gate:
                    return await client.post("/payments/lost-async?lose=100", json={"amount": n})

            return await asyncio.gather(*(pay(n) for n in range(100)))

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [201] * 100
    assert len({r.json()["key"] for r in responses}) == 100
    assert upstream.app.effects("lost-async") == 100


def test_attempt_timing_out_while_the_server_works_retries_through_409(
    driver: Driver, upstream: RunningServer
) -> None:
    """Real time: the server works 0.6 s; attempts are capped at 0.2 s; waits are 0.1 s."""
    policy = rc.Policy(
        timeouts=rc.Timeouts(attempt=0.2, total=10.0),
        retry=rc.Retry(max_attempts=20, backoff=rc.Backoff(initial=0.1, max=0.1, jitter="none")),
    )
    client = driver.client(base_url=upstream.url, policy=policy)
    response = driver.request(client, "POST", "/payments/slow?work=0.6", json={"amount": 5})
    assert response.status_code == 201
    record = response.extensions["resilience"]
    assert record.retry_reasons[0] == "timeout"
    assert "status_409" in record.retry_reasons
    assert upstream.app.effects("slow") == 1
    keys = {r.headers["idempotency-key"] for r in upstream.app.scenario("slow").requests}
    assert keys == {record.idempotency_key}


def test_without_idempotency_a_lost_response_surfaces_and_is_not_retried(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(
        base_url=upstream.url, clock=FakeClock(), policy=rc.Policy(idempotency=None, retry=NO_WAIT)
    )
    with pytest.raises(driver.lib.RemoteProtocolError):
        driver.request(client, "POST", "/payments/unkeyed?lose=1", json={"amount": 1})
    assert upstream.app.scenario("unkeyed").attempts == 1
    assert upstream.app.effects("unkeyed") == 1  # the charge happened; the caller knows it failed


def test_without_idempotency_a_timed_out_post_is_not_retried(
    driver: Driver, upstream: RunningServer
) -> None:
    policy = rc.Policy(idempotency=None, timeouts=rc.Timeouts(attempt=0.2, total=5.0))
    client = driver.client(base_url=upstream.url, clock=FakeClock(), policy=policy)
    with pytest.raises(driver.lib.TimeoutException):
        driver.request(client, "POST", "/payments/unkeyed-slow?work=0.6", json={"amount": 1})
    assert upstream.app.scenario("unkeyed-slow").attempts == 1


def test_a_key_reused_with_another_payload_is_a_422_api_error(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock(), raise_for_error=True)
    key = rc.idempotency_key_for("tenant-9", "order", 77)
    driver.request(
        client, "POST", "/payments/reuse", json={"amount": 1}, headers={"Idempotency-Key": key}
    )
    with pytest.raises(driver.ns.BadRequestError) as raised:
        driver.request(
            client, "POST", "/payments/reuse", json={"amount": 2}, headers={"Idempotency-Key": key}
        )
    assert raised.value.response.status_code == 422
    assert "idempotency key reused with a different payload" in str(raised.value)
    assert upstream.app.scenario("reuse").attempts == 2
    assert upstream.app.effects("reuse") == 1


def test_a_derived_key_makes_a_rerun_repeat_not_duplicate(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock())
    for _ in range(2):  # the job "crashes" and runs again with the same operation id
        extensions = {"idempotency_key": rc.idempotency_key_for("tenant-9", "order", 78)}
        response = driver.request(
            client, "POST", "/payments/rerun", json={"amount": 3}, extensions=extensions
        )
        assert response.status_code == 201
    assert upstream.app.effects("rerun") == 1
