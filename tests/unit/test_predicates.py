"""``Retry(retry_if=...)``: a predicate over the request, the read response, the error and
the parsed problem has the last word on a retry, within the method rule. Against the
real upstream (the chaos server)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from drivers import Driver

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock


class Recorder:
    """A predicate answering ``answer(response)``, keeping what it was shown."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.seen: list[tuple[Any, Any, Any, Any]] = []

    def __call__(self, request: Any, response: Any, error: Any, problem: Any) -> bool | None:
        self.seen.append((request, response, error, problem))
        return self.answer(response)  # type: ignore[no-any-return]


def _client(driver: Driver, upstream: RunningServer, predicate: Any, **policy: Any) -> Any:
    retry = rc.Retry(max_attempts=4, retry_if=predicate)
    return driver.client(
        base_url=upstream.url,
        clock=FakeClock(),
        policy=rc.Policy(retry=retry, breaker=None, budget=None, **policy),
    )


def test_a_predicate_retries_on_a_body_field_of_a_200(
    driver: Driver, upstream: RunningServer
) -> None:
    # /flaky with fail=0 answers 200 {"ok": true, "attempt": k}: retry until attempt 3
    predicate = Recorder(lambda response: response.json()["attempt"] < 3 or None)
    client = _client(driver, upstream, predicate)
    response = driver.request(client, "GET", "/flaky/body200?fail=0")
    assert response.status_code == 200 and response.json()["attempt"] == 3
    assert upstream.app.scenario("body200").attempts == 3
    info = rc.resilience_info(response)
    assert info is not None and info.retry_reasons == ("retry_if", "retry_if")
    request, seen, error, problem = predicate.seen[0]
    assert request.method == "GET" and error is None and problem is None
    assert seen.status_code == 200 and seen.is_stream_consumed  # its body was read


def test_a_predicate_refuses_to_retry_a_503(driver: Driver, upstream: RunningServer) -> None:
    predicate = Recorder(lambda response: False if response.status_code == 503 else None)
    client = _client(driver, upstream, predicate)
    response = driver.request(client, "GET", "/status/final503/503?format=rfc9457")
    assert response.status_code == 503
    assert upstream.app.scenario("final503").attempts == 1
    info = rc.resilience_info(response)
    assert info is not None and info.stop_reason == "retry_if"
    _, _, _, problem = predicate.seen[0]
    assert isinstance(problem, rc.Problem) and problem.status == 503


def test_none_keeps_the_built_in_decision(driver: Driver, upstream: RunningServer) -> None:
    predicate = Recorder(lambda response: None)
    client = _client(driver, upstream, predicate)
    assert driver.request(client, "GET", "/status/kept/503").status_code == 503
    assert upstream.app.scenario("kept").attempts == 4
    assert len(predicate.seen) == 4


def test_a_predicate_cannot_make_an_unkeyed_post_retryable(
    driver: Driver, upstream: RunningServer
) -> None:
    predicate = Recorder(lambda response: True)
    client = _client(driver, upstream, predicate, idempotency=None)
    response = driver.request(client, "POST", "/status/unkeyed/503", content=b"{}")
    assert response.status_code == 503
    assert upstream.app.scenario("unkeyed").attempts == 1
    info = rc.resilience_info(response)
    assert info is not None and info.stop_reason == "method_not_retryable"


def test_a_predicate_sees_transport_errors(driver: Driver, upstream: RunningServer) -> None:
    predicate = Recorder(lambda response: False)
    client = _client(driver, upstream, predicate)
    with pytest.raises(httpx.RemoteProtocolError):
        driver.request(client, "GET", "/drop/dropped?times=5")
    assert upstream.app.scenario("dropped").attempts == 1
    _, response, error, problem = predicate.seen[0]
    assert response is None and problem is None
    assert isinstance(error, httpx.RemoteProtocolError)


def test_a_streamed_call_shows_the_predicate_a_small_body(
    driver: Driver, upstream: RunningServer
) -> None:
    predicate = Recorder(lambda response: response.json()["attempt"] < 2 or None)
    client = _client(driver, upstream, predicate)
    body = driver.stream_read(client, "GET", "/flaky/streamed?fail=0")
    assert b'"attempt":2' in body.replace(b" ", b"")


# -- Breaker(failure_if=...): what counts against the endpoint's health --------------------


def _breaker_client(driver: Driver, upstream: RunningServer, predicate: Any) -> Any:
    breaker = rc.Breaker(failure_threshold=2, reset_timeout=30.0, failure_if=predicate)
    return driver.client(
        base_url=upstream.url,
        clock=FakeClock(),
        policy=rc.Policy(retry=None, breaker=breaker, budget=None),
    )


def test_failure_if_ignores_a_500_the_breaker_would_count(
    driver: Driver, upstream: RunningServer
) -> None:
    predicate = Recorder(lambda response: False if response.status_code == 500 else None)
    client = _breaker_client(driver, upstream, predicate)
    for _ in range(4):
        response = driver.request(client, "GET", "/status/known500/500?format=rfc9457")
        assert response.status_code == 500
    assert upstream.app.scenario("known500").attempts == 4  # never refused: not failures
    (snapshot,) = client.breakers().values()
    assert snapshot.state == "closed"
    request, seen, error, problem = predicate.seen[0]
    assert request.method == "GET" and error is None and seen.is_stream_consumed
    assert isinstance(problem, rc.Problem) and problem.status == 500


def test_failure_if_counts_a_200_whose_body_says_degraded(
    driver: Driver, upstream: RunningServer
) -> None:
    # /flaky with fail=0 answers 200 {"ok": true, "attempt": k}; call attempt 2+ degraded
    predicate = Recorder(lambda response: response.json()["attempt"] >= 2 or None)
    client = _breaker_client(driver, upstream, predicate)
    for _ in range(3):
        assert driver.request(client, "GET", "/flaky/degraded?fail=0").status_code == 200
    with pytest.raises(rc.CircuitOpenError):  # two "failures" in a row opened it
        driver.request(client, "GET", "/flaky/degraded?fail=0")
    assert upstream.app.scenario("degraded").attempts == 3


def test_failure_if_can_forgive_a_transport_error(driver: Driver, upstream: RunningServer) -> None:
    predicate = Recorder(lambda response: False)
    client = _breaker_client(driver, upstream, predicate)
    for _ in range(3):
        with pytest.raises(httpx.RemoteProtocolError):
            driver.request(client, "GET", "/drop/forgiven?times=5")
    assert upstream.app.scenario("forgiven").attempts == 3  # the breaker never opened
    _, response, error, problem = predicate.seen[0]
    assert response is None and problem is None
    assert isinstance(error, httpx.RemoteProtocolError)


@pytest.mark.parametrize("hedged", [False, True], ids=["attempt", "hedge-race"])
@pytest.mark.parametrize("stream", [False, True], ids=["read", "streamed"])
def test_a_failure_if_that_raises_on_a_probe_gives_its_slot_back(
    driver: Driver, upstream: RunningServer, stream: bool, hedged: bool
) -> None:
    # A predicate that chokes on an answer (response.json() on a body that is no JSON)
    # ends the call with its error; the half-open probe's slot must end with it, or the
    # breaker refuses everything until the slot's lease runs out (reset_timeout).
    choked: list[int] = []

    def predicate(request: Any, response: Any, error: Any, problem: Any) -> bool | None:
        if response is not None and response.status_code == 200 and not choked:
            choked.append(1)
            raise ValueError("not the JSON the predicate expected")
        return None

    clock = FakeClock()
    client = driver.client(
        base_url=upstream.url,
        clock=clock,
        policy=rc.Policy(
            retry=None,
            budget=None,
            breaker=rc.Breaker(failure_threshold=2, reset_timeout=30.0, failure_if=predicate),
            # (a hedge race's attempt is judged by the race: a delay no answer here waits)
            hedging=rc.Hedging(delay=30.0) if hedged else None,
        ),
    )
    for _ in range(2):
        assert driver.request(client, "GET", "/status/down/503").status_code == 503
    clock.advance(30.0)  # half_open: one probe at a time
    send = driver.stream_read if stream else driver.request
    with pytest.raises(ValueError, match="not the JSON"):
        send(client, "GET", "/status/back/200")
    (snapshot,) = client.breakers().values()
    assert (snapshot.state, snapshot.probes_in_flight) == ("half_open", 0)
    assert driver.request(client, "GET", "/status/back/200").status_code == 200  # the probe
    (snapshot,) = client.breakers().values()
    assert snapshot.state == "closed"
    assert upstream.app.scenario("back").attempts == 2


def test_failure_if_none_keeps_the_built_in_rule(driver: Driver, upstream: RunningServer) -> None:
    predicate = Recorder(lambda response: None)
    client = _breaker_client(driver, upstream, predicate)
    for _ in range(2):
        driver.request(client, "GET", "/status/builtin/503")
    with pytest.raises(rc.CircuitOpenError):
        driver.request(client, "GET", "/status/builtin/503")
    assert len(predicate.seen) == 2
