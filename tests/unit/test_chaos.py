"""The chaos upstream's contract: each endpoint, over a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from waiting import eventually

from resilient_client.chaos import (
    FORMATS,
    ChaosApp,
    RunningServer,
    envelope,
    serve,
    serve_in_subprocess,
)
from resilient_client.testing import FakeClock, no_waits

# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5.0) as c:
        yield c


@pytest.fixture
def app(server: RunningServer) -> ChaosApp:
    return server.app


@pytest.fixture
def name() -> str:
    """A scenario name no other test uses."""
    return uuid.uuid4().hex[:12]


# --- /ok ---------------------------------------------------------------------------------


def test_ok_answers_json(client: httpx.Client, app: ChaosApp, name: str) -> None:
    response = client.get(f"/ok/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"ok": True}
    assert app.scenario(name).attempts == 1


def test_ok_size_answers_that_many_bytes(client: httpx.Client, name: str) -> None:
    response = client.get(f"/ok/{name}?size=100000")
    assert len(response.content) == 100_000


def test_ok_delay_waits_before_answering(name: str) -> None:
    # On the app's clock, not the wall's: the wait goes through clock.asleep.
    clock = FakeClock()
    app = ChaosApp(clock=clock)
    started = clock.monotonic()
    sent_at: list[float] = []
    messages = asyncio.run(drive(app, "GET", f"/ok/{name}?delay=0.1", sent_at=sent_at))
    assert messages[0]["status"] == 200
    assert clock.sleeps == [0.1]
    # Every byte of the answer went out after the wait, none before it.
    assert sent_at and min(sent_at) - started >= 0.1


def test_two_part_responses_do_not_wait_for_delayed_ack(client: httpx.Client, name: str) -> None:
    # Headers and body go out in two writes; with Nagle on each call waits ~40 ms.
    timings = []
    for _ in range(15):
        started = time.perf_counter()
        client.get(f"/ok/{name}")
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.02


# --- /flaky and /status -----------------------------------------------------------------------


def test_flaky_fails_n_times_then_succeeds(client: httpx.Client, app: ChaosApp, name: str) -> None:
    statuses = [client.get(f"/flaky/{name}?fail=2").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert client.get(f"/flaky/{name}?fail=2").json() == {"ok": True, "attempt": 4}
    assert app.scenario(name).attempts == 4


def test_flaky_failure_carries_the_requested_hints(client: httpx.Client, name: str) -> None:
    query = "fail=1&status=429&retry_after=7&retry_after_ms=1500&should_retry=false&request_id=r1"
    response = client.get(f"/flaky/{name}?{query}")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["retry-after-ms"] == "1500"
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["x-request-id"] == "r1"
    assert response.json() == {"ok": False, "status": 429, "attempt": 1}


def test_retry_after_date_is_that_many_seconds_after_the_date_header(
    client: httpx.Client, name: str
) -> None:
    response = client.get(f"/flaky/{name}?retry_after_date=30")
    sent = parsedate_to_datetime(response.headers["date"])
    retry_at = parsedate_to_datetime(response.headers["retry-after"])
    assert (retry_at - sent).total_seconds() == 30
    assert abs(sent.timestamp() - time.time()) < 2
    assert response.headers["retry-after"].endswith(" GMT")


def test_flaky_failure_in_an_envelope(client: httpx.Client, name: str) -> None:
    response = client.get(f"/flaky/{name}?format=google&retry_after=2")
    error = response.json()["error"]
    assert (response.status_code, error["status"]) == (503, "UNAVAILABLE")
    retry_info = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
    assert retry_info == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]


def test_status_always_answers_the_code(client: httpx.Client, name: str) -> None:
    statuses = {client.get(f"/status/{name}/418").status_code for _ in range(3)}
    assert statuses == {418}
    assert client.get(f"/status/{name}/204").content == b""


def test_bad_parameter_is_a_400_problem_naming_it(client: httpx.Client, name: str) -> None:
    response = client.get(f"/status/{name}/abc")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "code" in response.json()["title"]
    assert client.get(f"/flaky/{name}?format=nope").status_code == 400


def test_unknown_endpoint_is_a_404_problem(client: httpx.Client) -> None:
    response = client.get("/nope/x")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


# --- /stall, /drop ----------------------------------------------------------------------------


def test_stall_holds_the_response_past_the_client_timeout(
    client: httpx.Client, app: ChaosApp, name: str
) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"/stall/{name}?seconds=5", timeout=0.2)
    assert time.monotonic() - started < 2
    # The client's disconnect ends the stalled handler.
    assert eventually(lambda: app.scenario(name).in_flight == 0)


def test_stall_only_the_first_times(client: httpx.Client, name: str) -> None:
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"/stall/{name}?seconds=5&times=1", timeout=0.2)
    response = client.get(f"/stall/{name}?seconds=5&times=1", timeout=1.0)
    assert response.json() == {"ok": True, "attempt": 2}


def test_drop_before_loses_the_connection_without_a_response(
    client: httpx.Client, app: ChaosApp, name: str
) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        client.get(f"/drop/{name}?when=before")
    assert client.get(f"/drop/{name}?when=before").json() == {"ok": True}
    assert app.scenario(name).attempts == 2


def test_drop_mid_truncates_the_body(client: httpx.Client, name: str) -> None:
    with client.stream("GET", f"/drop/{name}?when=mid&times=2") as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            response.read()
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"/drop/{name}?when=mid&times=2")
    assert client.get(f"/drop/{name}?when=mid&times=2").status_code == 200


# --- /echo, recording ---------------------------------------------------------------------------


def test_echo_reflects_the_request(client: httpx.Client, app: ChaosApp, name: str) -> None:
    headers = [("X-Dup", "a"), ("X-Dup", "b"), ("X-Trace", "t1")]
    response = client.post(f"/echo/{name}?q=1&q=2", content=b"hello", headers=headers)
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == f"/echo/{name}"
    assert echoed["query"] == "q=1&q=2"
    assert echoed["body"] == "hello"
    assert echoed["headers"]["x-dup"] == "a, b"
    (recorded,) = app.scenario(name).requests
    assert (recorded.method, recorded.body_size, recorded.headers["x-trace"]) == ("POST", 5, "t1")


def test_requests_record_injected_clock_readings() -> None:
    clock = FakeClock(start=50.0, start_wall=784111777.0)
    app = ChaosApp(clock=clock)
    messages = asyncio.run(drive(app, "GET", "/ok/n"))
    assert dict(messages[0]["headers"])[b"date"] == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert app.scenario("n").requests[0].arrived == 50.0


# --- concurrency ----------------------------------------------------------------------------


def test_slow_reports_peak_concurrency(client: httpx.Client, app: ChaosApp, name: str) -> None:
    with ThreadPoolExecutor(5) as pool:
        statuses = list(pool.map(lambda _: client.get(f"/slow/{name}?seconds=0.5"), range(5)))
    assert [r.status_code for r in statuses] == [200] * 5
    # The server leaves a handler just after its last byte is sent: allow it that moment.
    assert eventually(lambda: app.scenario(name).in_flight == 0)
    stats = app.scenario(name)
    assert (stats.peak_concurrency, stats.in_flight, stats.attempts) == (5, 0, 5)


async def test_a_hundred_concurrent_clients_are_served(server: RunningServer, name: str) -> None:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=10.0) as c:
        responses = await asyncio.gather(*(c.get(f"/slow/{name}?seconds=1") for _ in range(100)))
    assert {r.status_code for r in responses} == {200}
    assert server.app.scenario(name).peak_concurrency == 100


# --- /outage ---------------------------------------------------------------------------------


def test_outage_without_a_plan_answers_200(client: httpx.Client, name: str) -> None:
    assert client.get(f"/outage/{name}").status_code == 200


def test_outage_follows_the_seeded_plan(client: httpx.Client, app: ChaosApp, name: str) -> None:
    app.set_failure_plan(name, rate=0.5, status=502, seed=7)
    statuses = [client.get(f"/outage/{name}").status_code for _ in range(12)]
    rng = random.Random(7)
    assert statuses == [502 if rng.random() < 0.5 else 200 for _ in range(12)]
    app.set_failure_plan(name, rate=1.0)
    assert {client.get(f"/outage/{name}").status_code for _ in range(3)} == {503}
    app.set_failure_plan(name, rate=0.0)
    assert client.get(f"/outage/{name}").status_code == 200


def test_failure_plan_rejects_a_rate_outside_0_1(app: ChaosApp) -> None:
    with pytest.raises(ValueError, match="rate"):
        app.set_failure_plan("x", rate=1.5)


# --- /payments -------------------------------------------------------------------------------


def pay(client: httpx.Client, name: str, key: str | None, amount: int = 10, query: str = "") -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"/payments/{name}?{query}", json={"amount": amount}, headers=headers)


def test_payments_without_a_key_commit_every_time(
    client: httpx.Client, app: ChaosApp, name: str
) -> None:
    first, second = pay(client, name, None), pay(client, name, None)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert app.effects(name) == 2


def test_payments_replay_a_completed_key(client: httpx.Client, app: ChaosApp, name: str) -> None:
    first, second = pay(client, name, "k1"), pay(client, name, "k1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() == {"id": first.json()["id"], "amount": 10, "key": "k1"}
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert app.effects(name) == 1


def test_payments_key_may_be_an_sf_string_or_another_header(
    client: httpx.Client, app: ChaosApp, name: str
) -> None:
    assert pay(client, name, '"k2"').json()["key"] == "k2"
    assert "idempotent-replayed" in pay(client, name, "k2").headers
    response = client.post(
        f"/payments/{name}?header=X-Idempotency-Key",
        json={"amount": 10},
        headers={"X-Idempotency-Key": "k2"},
    )
    assert response.headers["idempotent-replayed"] == "true"
    assert app.effects(name) == 1


def test_payments_conflict_while_the_original_is_in_progress(
    client: httpx.Client, app: ChaosApp, name: str
) -> None:
    with ThreadPoolExecutor(1) as pool:
        original = pool.submit(pay, client, name, "k3", 10, "work=0.5")
        assert eventually(lambda: app.scenario(name).attempts == 1)
        conflict = pay(client, name, "k3", 10, "work=0.5")
        assert original.result().status_code == 201
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["type"].endswith("/idempotency-in-progress")
    assert app.effects(name) == 1


def test_payments_refuse_a_key_reused_with_another_payload(
    client: httpx.Client, app: ChaosApp, name: str
) -> None:
    pay(client, name, "k4", amount=10)
    response = pay(client, name, "k4", amount=99)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "different payload" in response.json()["title"]
    assert app.effects(name) == 1


def test_payments_lose_the_response_after_committing(
    client: httpx.Client, app: ChaosApp, name: str
) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        pay(client, name, "k5", query="lose=1")
    assert app.effects(name) == 1
    retry = pay(client, name, "k5", query="lose=1")
    assert (retry.status_code, retry.headers["idempotent-replayed"]) == (201, "true")
    assert app.effects(name) == 1


def test_payments_lose_mid_truncates_and_keyless_loses_count_too(
    client: httpx.Client, app: ChaosApp, name: str
) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        pay(client, name, None, query="lose=1&lose_mode=mid")
    assert app.effects(name) == 1
    assert pay(client, name, None, query="lose=1").status_code == 201
    assert app.effects(name) == 2


def test_payments_only_accept_post(client: httpx.Client, name: str) -> None:
    response = client.get(f"/payments/{name}")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


# --- /problem and envelopes ---------------------------------------------------------------------

MEDIA = {
    "rfc9457": "application/problem+json",
    "google": "application/json",
    "microsoft": "application/json",
    "jsonapi": "application/vnd.api+json",
    "openai": "application/json",
    "anthropic": "application/json",
    "stripe": "application/json",
    "graphql": "application/json",
    "html": "text/html",
    "text": "text/plain",
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_problem_answers_each_envelope_with_its_media_type(
    client: httpx.Client, name: str, fmt: str
) -> None:
    response = client.get(f"/problem/{name}/{fmt}?status=503")
    assert response.status_code == 503
    media = response.headers.get("content-type", "").split(";")[0]
    if fmt == "empty":
        assert (media, response.content) == ("", b"")
    elif fmt == "html":
        assert media == MEDIA[fmt]
        assert response.text.startswith("<html>")
        assert "503 Service Unavailable" in response.text
    elif fmt == "text":
        assert media == MEDIA[fmt]
        assert response.text.startswith("503 Service Unavailable")
    else:
        assert media == MEDIA[fmt]
        assert isinstance(response.json(), dict)


def test_problem_defaults_to_400(client: httpx.Client, name: str) -> None:
    response = client.get(f"/problem/{name}/rfc9457")
    body = response.json()
    assert (response.status_code, body["status"]) == (400, 400)
    assert body["invalid-params"][0]["name"] == "amount"
    assert body["code"] == "bad_request"


def envelope_json(fmt: str, status: int, **kw: Any) -> tuple[dict[str, str], Any]:
    headers, body = envelope(fmt, status, **kw)
    return headers, json.loads(body)


def test_google_envelope_codes_and_details() -> None:
    _, unavailable = envelope_json("google", 503, retry_after=1.5)
    assert unavailable["error"]["status"] == "UNAVAILABLE"
    kinds = [d["@type"].rsplit(".", 1)[1] for d in unavailable["error"]["details"]]
    assert kinds == ["ErrorInfo", "RetryInfo"]
    assert unavailable["error"]["details"][1]["retryDelay"] == "1.500s"
    _, invalid = envelope_json("google", 400)
    assert invalid["error"]["status"] == "INVALID_ARGUMENT"
    assert invalid["error"]["details"][1]["fieldViolations"][0]["field"] == "payment.amount"


def test_vendor_envelopes_pick_codes_by_status() -> None:
    assert envelope_json("openai", 429)[1]["error"]["type"] == "rate_limit_error"
    headers, stripe = envelope_json("stripe", 402, request_id="req_1")
    assert (stripe["error"]["type"], stripe["error"]["code"]) == ("card_error", "card_declined")
    assert headers["request-id"] == "req_1"
    assert stripe["error"]["request_log_url"].endswith("/req_1")
    _, anthropic = envelope_json("anthropic", 529, request_id="req_2")
    assert anthropic == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": "req_2",
    }
    headers, microsoft = envelope_json("microsoft", 404)
    assert headers["x-ms-error-code"] == microsoft["error"]["code"] == "ResourceNotFound"
    assert microsoft["error"]["innererror"]["innererror"]["code"]
    _, jsonapi = envelope_json("jsonapi", 422)
    assert jsonapi["errors"][0]["status"] == "422"
    assert jsonapi["errors"][0]["source"] == {"pointer": "/data/attributes/amount"}
    _, graphql = envelope_json("graphql", 200)
    assert graphql["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"


def test_envelope_is_deterministic_and_rejects_unknown_formats() -> None:
    assert envelope("stripe", 500) == envelope("stripe", 500)
    with pytest.raises(ValueError, match="unknown envelope format"):
        envelope("soap", 500)


# --- stats, reset, lifecycle -----------------------------------------------------------------


def test_stats_endpoint_reports_a_scenario(client: httpx.Client, name: str) -> None:
    pay(client, name, "k6")
    stats = client.get(f"/__stats/{name}").json()
    assert (stats["attempts"], stats["effects"], stats["in_flight"]) == (1, 1, 0)
    assert stats["requests"][0]["headers"]["idempotency-key"] == "k6"
    assert stats["requests"][0]["body_size"] > 0


def test_reset_endpoint_forgets_everything(client: httpx.Client, app: ChaosApp, name: str) -> None:
    pay(client, name, "k7")
    assert client.get("/__reset").status_code == 405
    assert client.post("/__reset").json() == {"ok": True}
    assert (app.scenario(name).attempts, app.effects(name)) == (0, 0)
    assert pay(client, name, "k7").headers.get("idempotent-replayed") is None


def test_serve_exits_promptly_with_a_stalled_request_in_flight() -> None:
    outcome: list[BaseException] = []

    def stalled_call(url: str) -> None:
        try:
            httpx.get(f"{url}/stall/s?seconds=30", timeout=10.0)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    with serve() as running:
        caller = threading.Thread(target=stalled_call, args=(running.url,))
        caller.start()
        assert eventually(lambda: running.app.scenario("s").in_flight == 1)
        started = time.monotonic()
    assert time.monotonic() - started < 2.0
    caller.join(2.0)
    assert isinstance(outcome[0], httpx.RemoteProtocolError)


def test_testing_mode_leaves_the_server_s_waits_real(client: httpx.Client, name: str) -> None:
    # Its stalls are a provider's time, not the pipeline's waits: neither skipped nor
    # recorded, and its startup is not a busy loop of skipped polls.
    with no_waits() as waits:
        with serve():
            pass
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"/stall/{name}?seconds=5", timeout=0.2)
    assert waits.delays == []


def test_serve_in_subprocess_serves_until_exit() -> None:
    with serve_in_subprocess() as running:
        assert httpx.get(f"{running.url}/flaky/p?fail=1").status_code == 503
        assert httpx.get(f"{running.url}/__stats/p").json()["attempts"] == 1
    assert running.process.returncode == 0


# --- helpers for driving the ASGI app directly ----------------------------------------------------


async def drive(
    app: ChaosApp, method: str, target: str, *, sent_at: list[float] | None = None
) -> list[dict[str, Any]]:
    """One request (``target``: path and optional query) through the ASGI callable, no
    server; returns the sent messages, and appends the app clock's time at each to
    ``sent_at``. The client stays connected until the app has answered."""
    sent: list[dict[str, Any]] = []
    inbox = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await asyncio.Event().wait()  # no disconnect: the app's waits are what end
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        sent.append(dict(message))
        if sent_at is not None:
            sent_at.append(app.clock.monotonic())

    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode("latin-1"),
        "headers": [],
    }
    async with asyncio.timeout(5.0):  # a request that never ends fails, not hangs
        await app(scope, receive, send)
    return sent
