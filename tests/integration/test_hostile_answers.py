"""Issue 17, points 5 to 8, each against the hostile server on 127.0.0.1: an upstream
redirecting every call to a new host, ``Retry-After: -5``, httpx's own request log, an
error echoing the caller's key, and a problem nested 950 levels deep."""

from __future__ import annotations

import logging

import httpx
import pytest
from drivers import Driver
from test_hostile_kit import Hostile, serving

import resilient_client as rc
from resilient_client._call._endpoints import MAX_HOSTS
from resilient_client._logging import RedactingFilter
from resilient_client._retry import backoff_delay
from resilient_client.testing import FakeClock

hostile = pytest.fixture(scope="module", name="hostile")(serving)


def test_an_upstream_redirecting_to_ever_new_hosts_keeps_the_host_table_bounded(
    hostile: Hostile,
) -> None:
    policy = rc.Policy(retry=None, breaker=rc.Breaker())
    with rc.ResilientClient(policy=policy, follow_redirects=True) as client:
        for _ in range(MAX_HOSTS + 100):
            with pytest.raises(httpx.ConnectError):  # the next host: nothing listens there
                client.get(hostile.url("/redirect-next"))
        hosts = [key for key in client.health() if key.startswith("* ")]

    assert len(hosts) == MAX_HOSTS
    assert f"* 127.0.0.1:{hostile.port}" in hosts  # the one used on every call stays


def test_a_negative_retry_after_never_retries_faster_than_the_backoff(
    driver: Driver, hostile: Hostile
) -> None:
    clock = FakeClock(fixed=0.5)
    retry = rc.Retry(max_attempts=100)
    policy = rc.Policy(retry=retry, timeouts=rc.Timeouts(total=None), breaker=None, budget=None)
    client = driver.client(policy=policy, clock=clock)

    response = driver.request(client, "GET", hostile.url("/retry-after?value=-5"))

    expected = [backoff_delay(retry.backoff, n, None, 0.5) for n in range(1, 100)]
    assert response.status_code == 503
    assert clock.sleeps == pytest.approx(expected)
    assert sum(clock.sleeps) >= 99 * 0.5 * 0.25


def test_httpx_request_logs_are_redacted_by_the_filter(
    hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    secret_url = hostile.url("/ok?api_key=KEY-one&apikey=KEY-two&sig=KEY-three&q=1").replace(
        "http://", "http://user:KEY-password@"
    )
    log = logging.getLogger("httpx")
    redacting = RedactingFilter()  # rc.RedactingFilter once exported
    log.addFilter(redacting)
    try:
        with caplog.at_level(logging.INFO, logger="httpx"), rc.ResilientClient() as client:
            client.get(secret_url)
    finally:
        log.removeFilter(redacting)
    lines = [record.getMessage() for record in caplog.records if record.name == "httpx"]

    assert lines and all("KEY-" not in line for line in lines)
    assert "q=1" in lines[0] and "api_key=REDACTED" in lines[0]


def test_without_the_filter_httpx_logs_the_secrets(
    hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="httpx"), rc.ResilientClient() as client:
        client.get(hostile.url("/ok?api_key=KEY-one"))

    assert any("KEY-one" in record.getMessage() for record in caplog.records)


def test_an_error_echoing_the_callers_key_does_not_carry_it(
    driver: Driver, hostile: Hostile
) -> None:
    client = driver.client(raise_for_error=True, policy=rc.Policy(retry=None))

    with pytest.raises(driver.ns.ApiError) as raised:
        driver.request(
            client, "GET", hostile.url("/echo-error"), headers={"X-Api-Key": "k9Zq-77-secret"}
        )

    assert "k9Zq-77-secret" not in str(raised.value)
    assert "[token]" in str(raised.value)
    assert raised.value.problem.detail == "no such key: k9Zq-77-secret"  # kept for code


def test_a_deeply_nested_problem_always_serialises(hostile: Hostile) -> None:
    response = httpx.get(hostile.url("/deep?depth=950"))

    problem = rc.parse_problem(response)

    assert problem.title == "Deep"
    assert rc.Problem.model_validate_json(problem.model_dump_json()).title == "Deep"
