"""A failure explains itself (issue 19): the note and the record on whatever the pipeline
raises, one DEBUG line per retry, nothing above DEBUG for a failure the caller is handed,
readable records and tables, and the problem's code and category on attempt spans; chaos
faults marked wherever a person looks (issue 25)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from drivers import Driver
from otel_support import Otel, attrs

import resilient_client as rc
from resilient_client.testing import FakeClock, ScriptedTransport

URL = "https://api.test/v1/users/1"
USERS = {"GET /v1/users/{id}": rc.Policy(), "POST /v1/payments": rc.Policy()}


def make(driver: Driver, script: list[Any], **kwargs: Any) -> Any:
    kwargs.setdefault("endpoints", USERS)
    return driver.client(transport=ScriptedTransport(script), clock=FakeClock(), **kwargs)


def test_an_unkeyed_post_that_may_have_been_processed_says_why_it_was_not_retried(
    driver: Driver,
) -> None:
    client = make(
        driver,
        [httpx.RemoteProtocolError("Server disconnected without sending a response.")],
        policy=rc.Policy(idempotency=None),
    )
    with pytest.raises(httpx.RemoteProtocolError) as raised:
        driver.request(client, "POST", "https://api.test/v1/payments", json={"amount": 1})
    (note,) = raised.value.__notes__
    assert "1 attempt" in note and "stopped by method_not_retryable" in note
    assert "may already have been processed" in note
    info = rc.resilience_info(raised.value)
    assert info is not None and info.endpoint == "POST /v1/payments" and info.attempts == 1


@pytest.mark.parametrize(
    ("script", "policy", "error", "reason"),
    [
        ([httpx.ConnectError("refused")] * 3, rc.Policy(), httpx.ConnectError, "max_attempts"),
        (
            [httpx.ConnectTimeout("slow")] * 3,
            rc.Policy(timeouts=rc.Timeouts(total=0.2)),
            httpx.ConnectTimeout,
            "deadline",
        ),
        ([404], rc.Policy(), rc.NotFoundError, "status_not_retryable"),
    ],
)
def test_every_raised_failure_carries_the_calls_record_and_a_note(
    driver: Driver, script: list[Any], policy: rc.Policy, error: type[Exception], reason: str
) -> None:
    client = make(driver, script, policy=policy, raise_for_error=True)
    with pytest.raises(error) as raised:
        driver.request(client, "GET", URL)
    info = rc.resilience_info(raised.value)
    assert info is not None and info.stop_reason == reason
    assert any(f"stopped by {reason}" in note for note in raised.value.__notes__)


def test_an_open_breaker_says_when_the_next_probe_is(driver: Driver) -> None:
    policy = rc.Policy(retry=None, breaker=rc.Breaker(window="consecutive", failure_threshold=2))
    client = make(driver, [500, 500, 200], policy=policy)
    for _ in range(2):
        driver.request(client, "GET", URL)
    with pytest.raises(rc.CircuitOpenError) as raised:
        driver.request(client, "GET", URL)
    assert raised.value.retry_after == pytest.approx(policy.breaker.reset_timeout)  # type: ignore[union-attr]
    assert f"next probe in {policy.breaker.reset_timeout:.1f} s" in str(raised.value)  # type: ignore[union-attr]
    info = rc.resilience_info(raised.value)
    assert info is not None and info.attempts == 0 and info.stop_reason == "breaker"


@pytest.mark.parametrize("refused_by", ["bulkhead", "throttle"])
def test_a_call_refused_before_its_first_attempt_says_who_refused_it(
    driver: Driver, otel: Otel, refused_by: str
) -> None:
    if refused_by == "bulkhead":
        policy = rc.Policy(bulkhead=rc.Bulkhead(max_concurrent=1, max_wait=0.0))
        client = make(driver, [], policy=policy, tracer_provider=otel.tracer_provider)
        endpoint = client.pipeline.endpoint_for(client.build_request("GET", URL))
        assert endpoint.bulkhead.acquire(0)  # someone else holds the only slot
    else:  # five 503s, then random() = 0 sheds every call
        throttle = rc.AdaptiveThrottle(k=2.0, window=60.0, min_requests=5)
        client = driver.client(
            transport=ScriptedTransport([503] * 5),
            clock=FakeClock(fixed=0.0),
            endpoints=USERS,
            policy=rc.Policy(retry=None, throttle=throttle),
            tracer_provider=otel.tracer_provider,
        )
        for _ in range(5):
            driver.request(client, "GET", URL)
        otel.exporter.clear()
    with pytest.raises((rc.BulkheadFull, rc.LoadShedError)) as raised:
        driver.request(client, "GET", URL)
    (note,) = raised.value.__notes__
    assert note.endswith(f"0 attempts in 0.000s, stopped by {refused_by}")
    info = rc.resilience_info(raised.value)
    assert info is not None and info.stop_reason == refused_by
    assert attrs(otel.call_span())["resilient_client.stop_reason"] == refused_by


def test_a_predicate_that_raises_is_not_explained_as_no_attempt(driver: Driver) -> None:
    # The README's own retry_if, on a 200 whose body is not JSON.
    def retry_if(request: Any, response: Any, error: Any, problem: Any) -> bool | None:
        return response.json().get("status") == "pending" or None

    policy = rc.Policy(retry=rc.Retry(retry_if=retry_if))
    client = make(driver, [httpx.Response(200, text="not json")], policy=policy)
    with pytest.raises(ValueError) as raised:
        driver.request(client, "GET", URL)
    (note,) = raised.value.__notes__
    assert note.endswith("1 attempt in 0.000s, stopped by this error, raised outside any attempt")


def test_a_retry_is_one_debug_line_and_a_raised_failure_is_logged_at_debug_only(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    client = make(driver, [503, 503, 503], raise_for_error=True)
    with (
        caplog.at_level(logging.DEBUG, logger="resilient_client"),
        pytest.raises(rc.ServiceUnavailableError),
    ):
        driver.request(client, "GET", URL)
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 2
    assert "attempt 1 of 3 failed (status_503)" in retries[0]
    assert "attempt 2 of 3 failed (status_503)" in retries[1]
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]
    for record in caplog.records:
        assert record.endpoint == "GET /v1/users/{id}"  # type: ignore[attr-defined]
        assert record.correlation_id  # type: ignore[attr-defined]


def test_a_404_handed_to_the_caller_is_not_also_a_warning(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    client = make(driver, [404], raise_for_error=True)
    with caplog.at_level(logging.DEBUG), pytest.raises(rc.NotFoundError):
        driver.request(client, "GET", URL)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_records_and_tables_read_as_durations_not_instants(driver: Driver) -> None:
    policy = rc.Policy(breaker=rc.Breaker(window="consecutive", failure_threshold=3))
    client = make(driver, [503, 503, 503, 200], policy=policy)
    response = driver.request(client, "GET", URL)
    text = str(rc.resilience_info(response))
    assert text.startswith("GET /v1/users/{id}: 3 attempts in ")
    assert "retried for status_503, status_503" in text and "stopped by max_attempts" in text
    table = str(client.health())
    assert table.splitlines()[0].split() == [
        "endpoint",
        "breaker",
        "budget",
        "bulkhead",
        "throttle",
    ]
    assert "GET /v1/users/{id}" in table and "next probe in" in table
    assert "retry_at" not in table and "BreakerSnapshot(" not in table
    assert "next probe in" in str(client.breakers())


def test_attempt_spans_carry_the_problems_code_and_category(driver: Driver, otel: Otel) -> None:
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "slow down"}}
    script: list[Any] = [httpx.Response(429, json=body), 200]
    client = make(driver, script, observers=[otel.observer()])
    driver.request(client, "GET", URL)
    first, second = otel.attempt_spans()
    assert attrs(first)["resilient_client.problem.category"] == "throttled"
    assert attrs(first)["resilient_client.problem.code"] == "RESOURCE_EXHAUSTED"
    assert "resilient_client.problem.category" not in attrs(second)
    (failure,) = otel.points("resilient_client.failures")
    assert failure.value == 1
    assert failure.attributes["resilient_client.problem.category"] == "throttled"


def test_a_chaos_fault_is_marked_in_the_span_the_metric_and_the_record(
    driver: Driver, otel: Otel
) -> None:
    chaos = rc.Chaos(rate=1.0, faults=(503,), seed=7)
    policy = rc.Policy(chaos=chaos, retry=rc.Retry(max_attempts=2), breaker=None)
    transport = ScriptedTransport([200, 200])
    client = driver.client(
        transport=transport, clock=FakeClock(), policy=policy, observers=[otel.observer()]
    )
    response = driver.request(client, "GET", URL)
    assert response.status_code == 503 and transport.requests == []  # never sent
    info = rc.resilience_info(response)
    assert info is not None and info.injected == ("503", "503")
    spans = otel.attempt_spans()
    assert [attrs(s)["resilient_client.chaos.fault"] for s in spans] == ["503", "503"]
    (failure,) = otel.points("resilient_client.failures")
    assert failure.value == 2 and failure.attributes["resilient_client.chaos.fault"] == "503"
