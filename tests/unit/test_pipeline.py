"""The pipeline's decisions, sync and async, over a scripted transport and a fake clock.

No test here sleeps: waits go to the FakeClock, which records them.
"""

from __future__ import annotations

import email.utils
import importlib
import inspect
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import tenacity
from drivers import Driver

import resilient_client as rc
from resilient_client.testing import FakeClock, ScriptedTransport

URL = "https://api.example.com/v1/things/1"


def make(
    driver: Driver,
    script: list[Any],
    *,
    clock: FakeClock | None = None,
    latency: float = 0.0,
    **kwargs: Any,
) -> tuple[Any, ScriptedTransport, FakeClock]:
    clock = clock or FakeClock(fixed=0.5)
    transport = ScriptedTransport(script, clock=clock, latency=latency)
    client = driver.client(transport=transport, clock=clock, **kwargs)
    return client, transport, clock


def info(response: httpx.Response) -> rc.ResilienceInfo:
    value = response.extensions["resilience"]
    assert isinstance(value, rc.ResilienceInfo)
    return value


def test_retries_a_listed_status_until_success(driver: Driver) -> None:
    client, transport, clock = make(driver, [503, 502, 200])
    response = driver.request(client, "GET", URL)
    assert response.status_code == 200
    assert len(transport.requests) == 3
    record = info(response)
    assert record.attempts == 3
    assert record.retry_reasons == ("status_503", "status_502")
    assert record.stop_reason == "success"
    assert record.endpoint == "* api.example.com"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 501])
def test_statuses_not_listed_are_not_retried(driver: Driver, status: int) -> None:
    client, transport, clock = make(driver, [status, 200])
    response = driver.request(client, "GET", URL)
    assert response.status_code == status
    assert len(transport.requests) == 1
    assert clock.sleeps == []


def test_gives_up_after_max_attempts_with_the_last_response(driver: Driver) -> None:
    client, transport, _ = make(driver, [503] * 10)
    response = driver.request(client, "GET", URL)
    assert response.status_code == 503
    assert len(transport.requests) == 3
    assert info(response).stop_reason == "max_attempts"


@pytest.mark.parametrize(
    ("jitter", "expected"),
    [
        ("full", [0.05, 0.1, 0.2, 0.25]),  # r * min(max, initial * 2**(n-1)), r = 0.5
        ("equal", [0.075, 0.15, 0.3, 0.375]),  # base/2 + r*base/2
        ("none", [0.1, 0.2, 0.4, 0.5]),
        # min(max, initial + r * (3 * previous - initial)), previous starts at initial
        ("decorrelated", [0.2, 0.35, 0.5, 0.5]),
    ],
)
def test_backoff_formulas(driver: Driver, jitter: str, expected: list[float]) -> None:
    policy = rc.Policy(
        retry=rc.Retry(
            max_attempts=5, backoff=rc.Backoff(initial=0.1, multiplier=2.0, max=0.5, jitter=jitter)
        )
    )
    client, _, clock = make(driver, [503] * 5, policy=policy)
    driver.request(client, "GET", URL)
    assert clock.sleeps == pytest.approx(expected)


def test_retry_after_seconds_replaces_the_backoff(driver: Driver) -> None:
    client, _, clock = make(driver, [httpx.Response(429, headers={"Retry-After": "7"}), 200])
    assert driver.request(client, "GET", URL).status_code == 200
    assert clock.sleeps == [7.0]


def test_retry_after_http_date_is_measured_against_the_wall_clock(driver: Driver) -> None:
    clock = FakeClock(fixed=0.5)
    when = email.utils.formatdate(clock.wall() + 12, usegmt=True)
    client, _, _ = make(
        driver, [httpx.Response(503, headers={"Retry-After": when}), 200], clock=clock
    )
    assert driver.request(client, "GET", URL).status_code == 200
    assert clock.sleeps == pytest.approx([12.0], abs=1.0)


def test_retry_after_ms_is_honoured(driver: Driver) -> None:
    response = httpx.Response(429, headers={"retry-after-ms": "1500", "Retry-After": "9"})
    client, _, clock = make(driver, [response, 200])
    driver.request(client, "GET", URL)
    assert clock.sleeps == [1.5]


def test_retry_after_longer_than_the_cap_ends_the_call_without_sleeping(driver: Driver) -> None:
    client, transport, clock = make(
        driver, [httpx.Response(429, headers={"Retry-After": "3600"}), 200]
    )
    response = driver.request(client, "GET", URL)
    assert response.status_code == 429
    assert clock.sleeps == []
    assert len(transport.requests) == 1
    assert info(response).stop_reason == "retry_after_too_long"


def test_a_wait_past_the_deadline_is_not_slept(driver: Driver) -> None:
    policy = rc.Policy(timeouts=rc.Timeouts(total=5.0))
    client, transport, clock = make(
        driver, [httpx.Response(503, headers={"Retry-After": "6"}), 200], policy=policy
    )
    response = driver.request(client, "GET", URL)
    assert response.status_code == 503
    assert clock.sleeps == []
    assert info(response).stop_reason == "deadline"


def test_respect_retry_after_off_uses_the_backoff(driver: Driver) -> None:
    policy = rc.Policy(retry=rc.Retry(respect_retry_after=False))
    client, _, clock = make(
        driver, [httpx.Response(429, headers={"Retry-After": "30"}), 200], policy=policy
    )
    driver.request(client, "GET", URL)
    assert clock.sleeps == [0.125]


def test_each_attempt_is_clipped_to_what_is_left_of_the_deadline(driver: Driver) -> None:
    policy = rc.Policy(timeouts=rc.Timeouts(connect=5.0, read=10.0, attempt=None, total=12.0))
    client, transport, clock = make(
        driver,
        [503, 503, 200],
        policy=policy,
        latency=4.0,
        clock=FakeClock(fixed=0.0),  # zero backoff: only the latency uses up the deadline
    )
    driver.request(client, "GET", URL)
    timeouts = [r.extensions["timeout"] for r in transport.requests]
    assert timeouts[0] == {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 5.0}
    assert timeouts[1] == {"connect": 5.0, "read": 8.0, "write": 8.0, "pool": 5.0}
    assert timeouts[2] == {"connect": 4.0, "read": 4.0, "write": 4.0, "pool": 4.0}


def test_attempt_cap_clips_every_phase(driver: Driver) -> None:
    policy = rc.Policy(timeouts=rc.Timeouts(attempt=2.0))
    client, transport, _ = make(driver, [200], policy=policy)
    driver.request(client, "GET", URL)
    assert transport.requests[0].extensions["timeout"] == {
        "connect": 2.0,
        "read": 2.0,
        "write": 2.0,
        "pool": 2.0,
    }


def test_deadline_running_out_raises_deadline_exceeded(driver: Driver) -> None:
    policy = rc.Policy(timeouts=rc.Timeouts(total=3.0), retry=rc.Retry(max_attempts=10))
    timeout = httpx.ReadTimeout("read timed out")
    client, transport, clock = make(
        driver, [timeout] * 10, policy=policy, latency=1.0, clock=FakeClock(fixed=0.0)
    )
    with pytest.raises(rc.DeadlineExceeded) as raised:
        driver.request(client, "GET", URL)
    assert isinstance(raised.value, httpx.TimeoutException)
    assert len(transport.requests) == 3
    assert raised.value.endpoint == "* api.example.com"
    assert "deadline of 3s exceeded" in str(raised.value)


def test_explicit_timeout_on_a_call_is_honoured_for_each_attempt(driver: Driver) -> None:
    client, transport, _ = make(driver, [503, 200])
    driver.request(client, "GET", URL, timeout=1.5)
    assert [r.extensions["timeout"]["read"] for r in transport.requests] == [1.5, 1.5]


# The policy's phases, as the transport sees them for a call that names no timeout.
POLICY_PHASES = {"connect": 1.0, "read": 2.0, "write": 3.0, "pool": 4.0}
PHASED = rc.Policy(timeouts=rc.Timeouts(**POLICY_PHASES))


def sent_timeouts(transport: ScriptedTransport) -> list[dict[str, float | None]]:
    return [dict(r.extensions["timeout"]) for r in transport.requests]


def test_a_call_naming_no_timeout_gets_the_policys_not_the_clients_default(
    driver: Driver,
) -> None:
    client, transport, _ = make(driver, [200], policy=PHASED)
    driver.request(client, "GET", URL)
    assert sent_timeouts(transport) == [POLICY_PHASES]


def test_a_call_timeout_equal_to_the_clients_default_is_still_honoured(driver: Driver) -> None:
    """httpx's default is 5 s; a caller who asks for 5 s gets 5 s, not the policy's."""
    client, transport, _ = make(driver, [200], policy=PHASED)
    assert client.timeout == driver.lib.Timeout(5.0)
    driver.request(client, "GET", URL, timeout=5.0)
    assert sent_timeouts(transport) == [dict.fromkeys(POLICY_PHASES, 5.0)]


def test_a_timeout_set_on_the_client_later_is_honoured(driver: Driver) -> None:
    client, transport, _ = make(driver, [200, 200], policy=PHASED)
    driver.request(client, "GET", URL)
    client.timeout = 7.0
    driver.request(client, "GET", URL)
    assert sent_timeouts(transport) == [POLICY_PHASES, dict.fromkeys(POLICY_PHASES, 7.0)]


def test_the_clients_own_default_saved_and_put_back_is_the_default_again(
    driver: Driver,
) -> None:
    client, transport, _ = make(driver, [200, 200, 200], policy=PHASED)
    saved = client.timeout
    client.timeout = 7.0
    driver.request(client, "GET", URL)
    client.timeout = saved
    driver.request(client, "GET", URL)
    again = client.timeout
    client.timeout = again  # the stored copy of the default, put back once more
    driver.request(client, "GET", URL)
    assert sent_timeouts(transport) == [dict.fromkeys(POLICY_PHASES, 7.0), *[POLICY_PHASES] * 2]


def test_a_client_timeout_is_honoured(driver: Driver) -> None:
    client, transport, _ = make(driver, [200], policy=PHASED, timeout=6.0)
    driver.request(client, "GET", URL)
    assert sent_timeouts(transport) == [dict.fromkeys(POLICY_PHASES, 6.0)]


def test_a_clipped_retry_leaves_the_callers_timeout_to_a_redirects_next_hop(
    driver: Driver,
) -> None:
    """The retry clipped to what is left of the deadline sends its clip on a request of
    its own: the caller's request keeps its timeout, and the redirect's next hop (a call
    of its own, with a deadline of its own) gets the caller's 5 s again, as with httpx."""
    policy = rc.Policy(timeouts=rc.Timeouts(attempt=None, total=6.0))
    moved = httpx.Response(307, headers={"location": "https://api.example.com/v1/things/2"})
    client, transport, _ = make(
        driver,
        [503, moved, 200],
        policy=policy,
        latency=4.0,
        clock=FakeClock(fixed=0.0),  # zero backoff: the second attempt has 2 s left
        follow_redirects=True,
    )
    response = driver.request(client, "GET", URL, timeout=5.0)

    assert response.status_code == 200
    assert [t["read"] for t in sent_timeouts(transport)] == [5.0, 2.0, 5.0]
    assert response.request.extensions["timeout"] == dict.fromkeys(POLICY_PHASES, 5.0)


@pytest.mark.parametrize("client_timeout", [None, 6.0])
def test_a_timeout_extension_is_honoured(driver: Driver, client_timeout: float | None) -> None:
    """httpx sends a request's own ``timeout`` extension as it is: so does the pipeline."""
    kwargs = {} if client_timeout is None else {"timeout": client_timeout}
    client, transport, _ = make(driver, [200], policy=PHASED, **kwargs)
    chosen = {"connect": 0.5, "read": 0.6, "write": 0.7, "pool": 0.8}
    driver.request(client, "GET", URL, extensions={"timeout": chosen})
    assert sent_timeouts(transport) == [chosen]


def test_a_request_built_elsewhere_and_sent_gets_the_policys_timeouts(driver: Driver) -> None:
    client, transport, _ = make(driver, [200], policy=PHASED)
    driver.run(client.send(driver.lib.Request("GET", URL)))
    assert sent_timeouts(transport) == [POLICY_PHASES]


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
async def test_the_async_send_is_a_coroutine_function_to_those_who_ask(library: str) -> None:
    """Wrappers choose by asking: mock.patch makes an AsyncMock only of a coroutine
    function, and tenacity (backoff too) wraps anything else as sync - retrying nothing,
    as the failure comes only when the coroutine it returned is awaited."""
    lib: Any = importlib.import_module(library)
    ns: Any = importlib.import_module("resilient_client.httpx2") if library == "httpx2" else rc
    sent: list[Any] = []

    def answer(request: Any) -> Any:
        sent.append(request)
        if len(sent) == 1:
            raise lib.ConnectError("refused", request=request)
        return lib.Response(200)

    client = ns.AsyncResilientClient(
        transport=lib.MockTransport(answer), policy=rc.Policy(retry=None), telemetry=False
    )
    async with client:
        assert inspect.iscoroutinefunction(client.send)
        with mock.patch.object(client, "send") as patched:
            assert isinstance(patched, mock.AsyncMock)
        send = tenacity.retry(stop=tenacity.stop_after_attempt(2), reraise=True)(client.send)
        response = await send(client.build_request("GET", URL))
    assert response.status_code == 200 and len(sent) == 2  # the refused one, retried


def test_each_redirect_hop_gets_its_own_endpoints_timeouts(driver: Driver) -> None:
    """A hop is a call of its own: the first hop's timeouts (written on the request,
    whose extensions httpx hands on) are not taken for a timeout= on the next."""
    seen: list[dict[str, float | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        if request.url.path == "/a":
            return httpx.Response(302, headers={"location": "https://other.example.com/b"})
        return httpx.Response(200)

    hop_b = {"connect": 5.0, "read": 6.0, "write": 7.0, "pool": 8.0}
    client = driver.client(
        transport=httpx.MockTransport(answer),
        policy=rc.Policy(timeouts=rc.Timeouts(**POLICY_PHASES, attempt=0.5)),
        endpoints={"* /b": rc.Policy(timeouts=rc.Timeouts(**hop_b, attempt=None))},
    )
    response = driver.request(client, "GET", "https://api.example.com/a", follow_redirects=True)
    assert response.status_code == 200
    assert seen == [dict.fromkeys(POLICY_PHASES, 0.5), hop_b]


def test_transport_failures_of_idempotent_calls_are_retried(driver: Driver) -> None:
    script = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("drop"),
        200,
    ]
    policy = rc.Policy(retry=rc.Retry(max_attempts=4))
    client, transport, _ = make(driver, script, policy=policy)
    response = driver.request(client, "GET", URL)
    assert response.status_code == 200
    assert info(response).retry_reasons == ("connect_error", "timeout", "broken")


def test_last_exception_is_raised_when_attempts_run_out(driver: Driver) -> None:
    client, transport, _ = make(driver, [httpx.ConnectError("refused")] * 5)
    with pytest.raises(httpx.ConnectError) as raised:
        driver.request(client, "GET", URL)
    assert len(transport.requests) == 3
    assert any("3 attempts" in note for note in raised.value.__notes__)


def test_post_without_a_key_is_not_retried_once_it_may_have_been_processed(driver: Driver) -> None:
    policy = rc.Policy(idempotency=None)
    client, transport, _ = make(driver, [503, 200], policy=policy)
    assert driver.request(client, "POST", URL, json={"a": 1}).status_code == 503
    assert len(transport.requests) == 1
    client, transport, _ = make(driver, [httpx.ReadTimeout("slow"), 200], policy=policy)
    with pytest.raises(httpx.ReadTimeout):
        driver.request(client, "POST", URL, json={"a": 1})
    assert len(transport.requests) == 1


@pytest.mark.parametrize("first", [httpx.ConnectError("refused"), 421, 425])
def test_post_without_a_key_is_retried_when_it_was_provably_not_processed(
    driver: Driver, first: Any
) -> None:
    client, transport, _ = make(driver, [first, 201], policy=rc.Policy(idempotency=None))
    assert driver.request(client, "POST", URL, json={"a": 1}).status_code == 201
    assert len(transport.requests) == 2


def test_post_gets_one_key_sent_on_every_attempt(driver: Driver) -> None:
    client, transport, _ = make(driver, [503, httpx.ReadTimeout("slow"), 201])
    response = driver.request(client, "POST", URL, json={"a": 1})
    keys = [r.headers["Idempotency-Key"] for r in transport.requests]
    assert response.status_code == 201
    assert len(keys) == 3 and len(set(keys)) == 1
    assert info(response).idempotency_key == keys[0]


def test_each_call_gets_its_own_key(driver: Driver) -> None:
    client, transport, _ = make(driver, [201, 201])
    driver.request(client, "POST", URL)
    driver.request(client, "POST", URL)
    assert (
        transport.requests[0].headers["Idempotency-Key"]
        != transport.requests[1].headers["Idempotency-Key"]
    )


def test_a_key_the_caller_set_is_kept(driver: Driver) -> None:
    client, transport, _ = make(driver, [503, 201, 503, 201])
    driver.request(client, "POST", URL, headers={"Idempotency-Key": "order-17"})
    response = driver.request(client, "POST", URL, extensions={"idempotency_key": "order-18"})
    assert [r.headers["Idempotency-Key"] for r in transport.requests] == ["order-17"] * 2 + [
        "order-18"
    ] * 2
    assert info(response).idempotency_key == "order-18"


def test_key_header_name_and_structured_field_format(driver: Driver) -> None:
    policy = rc.Policy(idempotency=rc.Idempotency(header="X-Idempotency-Key", format="sf-string"))
    client, transport, _ = make(driver, [201], policy=policy)
    response = driver.request(client, "PATCH", URL)
    sent = transport.requests[0].headers["X-Idempotency-Key"]
    assert sent == f'"{info(response).idempotency_key}"'
    assert "Idempotency-Key" not in transport.requests[0].headers  # only the configured name


def test_conflict_on_a_keyed_request_is_retried_and_422_is_not(driver: Driver) -> None:
    client, transport, _ = make(driver, [409, 409, 201])
    assert driver.request(client, "POST", URL).status_code == 201
    client, transport, _ = make(driver, [422, 201])
    assert driver.request(client, "POST", URL).status_code == 422
    assert len(transport.requests) == 1


def test_conflict_without_a_key_is_not_retried(driver: Driver) -> None:
    client, transport, _ = make(driver, [409, 200])
    assert driver.request(client, "PUT", URL).status_code == 409
    assert len(transport.requests) == 1


def test_server_should_retry_hints_override_the_status_table(driver: Driver) -> None:
    no = httpx.Response(503, headers={"x-should-retry": "false"})
    client, transport, _ = make(driver, [no, 200])
    assert driver.request(client, "GET", URL).status_code == 503
    yes = httpx.Response(400, headers={"stripe-should-retry": "true"})
    client, transport, _ = make(driver, [yes, 200])
    assert driver.request(client, "GET", URL).status_code == 200


def test_a_500_whose_problem_is_permanent_is_not_retried(driver: Driver) -> None:
    body = {"error": {"code": 500, "status": "INVALID_ARGUMENT", "message": "bad field"}}
    client, transport, _ = make(driver, [httpx.Response(500, json=body), 200])
    response = driver.request(client, "GET", URL)
    assert response.status_code == 500
    assert info(response).stop_reason == "problem_not_retryable"


def test_a_one_shot_streaming_body_is_never_resent(driver: Driver) -> None:
    async def agen() -> Any:
        yield b"chunk"

    def gen() -> Any:
        yield b"chunk"

    client, transport, _ = make(driver, [503, 200], policy=rc.Policy())
    content = agen() if driver.is_async else gen()
    response = driver.request(client, "PUT", URL, content=content)
    assert response.status_code == 503
    assert info(response).stop_reason == "body_not_replayable"


def test_retried_responses_are_closed(driver: Driver) -> None:
    closed: list[int] = []

    class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __init__(self, n: int) -> None:
            self.n = n

        def __iter__(self) -> Any:
            yield b"x"

        async def __aiter__(self) -> Any:
            yield b"x"

        def close(self) -> None:
            closed.append(self.n)

        async def aclose(self) -> None:
            closed.append(self.n)

    script = [httpx.Response(503, stream=Body(n)) for n in range(2)] + [
        httpx.Response(200, stream=Body(2))
    ]
    client, _, _ = make(driver, script)
    response = driver.request(client, "GET", URL)
    assert response.status_code == 200
    assert closed[:2] == [0, 1]


class ChunkedBody(httpx.SyncByteStream):
    """A body without Content-Length (so a streamed call leaves it unread), noting its close."""

    def __init__(self, closed: list[str]) -> None:
        self.closed = closed

    def __iter__(self) -> Any:
        yield b"down"

    def close(self) -> None:
        self.closed.append("close")


class AsyncChunkedBody(httpx.AsyncByteStream):
    """:class:`ChunkedBody` for the async client: it has no sync close."""

    def __init__(self, closed: list[str]) -> None:
        self.closed = closed

    async def __aiter__(self) -> Any:
        yield b"down"

    async def aclose(self) -> None:
        self.closed.append("aclose")


def test_a_streamed_write_parked_with_its_failure_unread_raises_write_parked(
    driver: Driver, tmp_path: Path
) -> None:
    """The caller never gets the 503, so the driver closes it: awaited by the async one (a
    sync close of an async stream raised RuntimeError in place of WriteParked)."""
    closed: list[str] = []
    body = AsyncChunkedBody(closed) if driver.is_async else ChunkedBody(closed)
    outbox = rc.Outbox(f"sqlite:///{tmp_path / 'outbox.db'}")
    policy = rc.Policy(outbox=True, retry=rc.Retry(max_attempts=1))
    client, _, _ = make(driver, [httpx.Response(503, stream=body)], policy=policy, outbox=outbox)

    with pytest.raises(rc.WriteParked):
        driver.stream_read(client, "POST", URL, json={"a": 1})

    assert closed == ["aclose" if driver.is_async else "close"]
    assert len(outbox.entries()) == 1


def test_a_fallback_answer_wins_over_the_outbox(driver: Driver, tmp_path: Path) -> None:
    """A keyed write of an outbox endpoint that fails retryably: the fallback is asked
    first, and its answer is the call's - not parked, and not the 503 it replaced."""

    def queued(request: Any, failure: Any) -> httpx.Response:
        return httpx.Response(202, content=b"queued")

    outbox = rc.Outbox(f"sqlite:///{tmp_path / 'outbox.db'}")
    policy = rc.Policy(outbox=True, fallback=queued, retry=rc.Retry(max_attempts=2))
    client, transport, _ = make(driver, [503, 503], policy=policy, outbox=outbox)

    response = driver.request(client, "POST", URL, json={"a": 1})

    assert (response.status_code, response.content) == (202, b"queued")
    assert info(response).fallback is True
    assert len(transport.requests) == 2 and outbox.entries() == []


def test_a_parked_409_is_not_offered_to_the_fallback(driver: Driver, tmp_path: Path) -> None:
    """The fallback answers what it answers anywhere else (an exception, a final 5xx or
    429): a keyed write's 409 (its first request still in progress) is parked, not
    offered to it."""
    asked: list[int] = []

    def queued(request: Any, failure: Any) -> httpx.Response:
        asked.append(failure.status_code)
        return httpx.Response(202, content=b"queued")

    outbox = rc.Outbox(f"sqlite:///{tmp_path / 'outbox.db'}")
    policy = rc.Policy(outbox=True, fallback=queued, retry=rc.Retry(max_attempts=2))
    client, _, _ = make(driver, [409, 409], policy=policy, outbox=outbox)

    with pytest.raises(driver.ns.WriteParked):
        driver.request(client, "POST", URL, json={"a": 1})
    assert asked == [] and len(outbox.entries()) == 1


def test_the_correlation_id_is_the_same_on_every_attempt(driver: Driver) -> None:
    client, transport, _ = make(driver, [503, 200])
    response = driver.request(client, "GET", URL)
    ids = {r.headers["X-Correlation-ID"] for r in transport.requests}
    assert ids == {info(response).correlation_id}
    with rc.correlation_id("trace-me-42"):
        driver.request(client, "GET", URL)
    assert transport.requests[-1].headers["X-Correlation-ID"] == "trace-me-42"


def test_a_correlation_id_the_caller_sent_is_kept_not_doubled(driver: Driver) -> None:
    client, transport, _ = make(driver, [503, 200], correlation_header="X-Trace-Ref")
    headers = {"Accept": "application/json", "x-trace-REF": "from-caller-7"}
    response = driver.request(client, "GET", URL, headers=headers)
    assert len(transport.requests) == 2  # the 503 and its retry: the loop checks both
    for sent in transport.requests:
        assert sent.headers.get_list("X-Trace-Ref") == ["from-caller-7"]
    assert info(response).correlation_id == "from-caller-7"
    driver.request(client, "GET", URL)  # and one of ours, under the configured name
    generated = transport.requests[-1].headers.get_list("x-trace-ref")
    assert len(generated) == 1 and len(generated[0]) == 32
    assert b"X-Trace-Ref" in [name for name, _ in transport.requests[-1].headers.raw]


def test_per_call_policy_override(driver: Driver) -> None:
    client, transport, _ = make(driver, [503] * 10)
    override = rc.Policy(retry=rc.Retry(max_attempts=5))
    driver.request(client, "GET", URL, extensions={"resilience": override})
    assert len(transport.requests) == 5


def test_per_call_override_of_the_wrong_type_names_the_extension(driver: Driver) -> None:
    client, _, _ = make(driver, [200])
    with pytest.raises(TypeError, match='extensions\\["resilience"\\]'):
        driver.request(client, "GET", URL, extensions={"resilience": {"retry": None}})


def test_endpoint_policies_match_relative_to_base_url(driver: Driver) -> None:
    endpoints = {
        "GET /things/{id}": rc.Policy(retry=rc.Retry(max_attempts=5)),
        "* /reports/**": rc.Policy(retry=None),
    }
    client, transport, _ = make(
        driver, [503] * 20, base_url="https://api.example.com/v1", endpoints=endpoints
    )
    assert info(driver.request(client, "GET", "/things/7")).endpoint == "GET /things/{id}"
    assert len(transport.requests) == 5
    assert info(driver.request(client, "GET", "/reports/q/3")).attempts == 1
    assert info(driver.request(client, "GET", "/other")).endpoint == "* api.example.com"


def test_raise_for_error_raises_the_typed_error_after_retries(driver: Driver) -> None:
    client, transport, _ = make(driver, [503, 503, 503], raise_for_error=True)
    with pytest.raises(rc.ServiceUnavailableError) as raised:
        driver.request(client, "GET", URL)
    assert isinstance(raised.value, httpx.HTTPStatusError)
    assert raised.value.problem.status == 503
    assert len(transport.requests) == 3


def test_retry_none_makes_one_attempt(driver: Driver) -> None:
    client, transport, _ = make(
        driver, [httpx.ConnectError("x"), 200], policy=rc.Policy(retry=None)
    )
    with pytest.raises(httpx.ConnectError):
        driver.request(client, "GET", URL)
    assert len(transport.requests) == 1


class Events:
    """An observer keeping every event of the calls it sees, in order."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_event(self, call: Any, event: Any) -> None:
        self.seen.append(event)

    def names(self) -> list[str]:
        return [type(event).__name__ for event in self.seen]


class OversleepingClock(FakeClock):
    """A clock whose sleeps overrun by ``late`` seconds, as a busy machine's do."""

    def __init__(self, late: float) -> None:
        super().__init__(fixed=0.0)
        self.late = late

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds + self.late)


def test_a_call_out_of_time_between_attempts_counts_no_extra_attempt(driver: Driver) -> None:
    clock = OversleepingClock(late=5.0)
    events = Events()
    policy = rc.Policy(
        timeouts=rc.Timeouts(total=2.0),
        retry=rc.Retry(backoff=rc.Backoff(initial=0.5, jitter="none")),
    )
    client, transport, _ = make(driver, [503, 200], clock=clock, policy=policy, observers=[events])
    with pytest.raises(rc.DeadlineExceeded) as raised:
        driver.request(client, "GET", URL)
    assert len(transport.requests) == 1
    assert raised.value.attempts == 1
    assert events.names() == [
        "CallStarted",
        "AttemptStarted",
        "AttemptEnded",
        "RetryScheduled",
        "CallEnded",
    ]


def test_a_fallback_that_raises_still_ends_the_call(driver: Driver) -> None:
    def broken(request: httpx.Request, failure: object) -> httpx.Response:
        raise RuntimeError("fallback broke")

    events = Events()
    policy = rc.Policy(fallback=broken, retry=None)
    client, _, _ = make(driver, [httpx.ConnectError("refused")], policy=policy, observers=[events])
    with pytest.raises(RuntimeError, match="fallback broke"):
        driver.request(client, "GET", URL)
    assert events.names()[-1] == "CallEnded"
    assert isinstance(events.seen[-1].error, RuntimeError)


def test_a_failure_the_fallback_answers_is_not_logged_as_failed(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    def cached(request: httpx.Request, failure: object) -> httpx.Response:
        return httpx.Response(200, json={"cached": True})

    policy = rc.Policy(fallback=cached, retry=None)
    caplog.set_level("DEBUG", logger="resilient_client")
    for failure in (httpx.ConnectError("refused"), 503):
        client, _, _ = make(driver, [failure], policy=policy)
        response = driver.request(client, "GET", URL)
        assert response.status_code == 200 and info(response).fallback
    assert [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "GET"])
def test_a_key_the_caller_sent_counts_on_idempotent_methods_too(
    driver: Driver, method: str
) -> None:
    client, transport, _ = make(driver, [409, 200])
    response = driver.request(client, method, URL, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 200  # a keyed 409 (in progress) is retried
    assert len(transport.requests) == 2
    assert info(response).idempotency_key == "k1"
    unkeyed, _, _ = make(driver, [409, 200])
    assert driver.request(unkeyed, method, URL).status_code == 409


def test_a_per_call_override_that_switches_the_budget_off_does_not_feed_it(
    driver: Driver,
) -> None:
    client, _, _ = make(driver, [200] * 3)
    off = rc.Policy(budget=None)
    for _ in range(3):
        driver.request(client, "GET", URL, extensions={"resilience": off})
    budget = client.health()["* api.example.com"].budget
    assert budget is not None and budget.calls == 0
    driver.request(client, "GET", URL)
    budget = client.health()["* api.example.com"].budget
    assert budget is not None and budget.calls == 1


def test_a_per_call_override_cannot_change_the_endpoints_breaker_settings(
    driver: Driver,
) -> None:
    # The endpoint's breaker counts 429 as a failure; an override saying otherwise
    # cannot change that (its state and parameters are the endpoint's).
    policy = rc.Policy(breaker=rc.Breaker(failure_on_429=True), retry=None)
    client, _, _ = make(driver, [429, 429], policy=policy)
    lenient = rc.Policy(breaker=rc.Breaker(failure_on_429=False))
    # ... and says so, once per override, rather than ignore it in silence.
    with pytest.warns(UserWarning, match=r"changes breaker, which keep their state per endpoint"):
        driver.request(client, "GET", URL, extensions={"resilience": lenient})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        driver.request(client, "GET", URL, extensions={"resilience": lenient})
    assert client.breakers()["* api.example.com"].failures == 2


@pytest.mark.parametrize(
    "override",
    [
        rc.Policy(chaos=rc.Chaos(rate=1.0)),  # the endpoint has none: it stays without
        rc.Policy(hedging=rc.Hedging(delay=0.1)),
        rc.Policy(rate_limit=rc.RateLimit(per_second=1.0)),
        rc.Policy(bulkhead=rc.Bulkhead(max_concurrent=1)),
    ],
    ids=["chaos", "hedging", "rate_limit", "bulkhead"],
)
def test_a_per_call_override_that_would_switch_on_endpoint_state_is_named(
    driver: Driver, override: rc.Policy
) -> None:
    client, transport, _ = make(driver, [200])
    (name,) = [field for field in override.model_fields_set]
    with pytest.warns(UserWarning, match=rf"changes {name}, .*can only switch them off"):
        response = driver.request(client, "GET", URL, extensions={"resilience": override})
    assert response.status_code == 200 and len(transport.requests) == 1


def test_a_per_call_override_that_switches_endpoint_state_off_says_nothing(
    driver: Driver,
) -> None:
    client, _, _ = make(driver, [200])
    off = rc.Policy(breaker=None, budget=None, retry=rc.Retry(max_attempts=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert driver.request(client, "GET", URL, extensions={"resilience": off}).status_code == 200


def test_an_attempt_cut_at_the_deadline_is_an_attempt_timeout_to_the_breaker() -> None:
    from resilient_client._call._call import Call
    from resilient_client._call._end import end_with_outcome
    from resilient_client._call._pipeline import Pipeline

    clock = FakeClock(fixed=0.0)
    with pytest.warns(UserWarning, match="can never apply"):  # the point of this test
        policy = rc.Policy(timeouts=rc.Timeouts(total=1.0, attempt=5.0))
    call = Call(Pipeline(policy=policy, clock=clock), httpx.Request("GET", URL))
    call.time_attempt()
    assert call.limit == 1.0  # the deadline, not the cap, sets this attempt's limit
    call.start_attempt()
    clock.advance(1.5)
    error = call.attempt_timed_out()
    assert isinstance(error, rc.AttemptTimeout) and not isinstance(error, rc.DeadlineExceeded)
    assert call.attempt_ended(error)[0] == "failure"  # as the sync driver's ReadTimeout
    with pytest.raises(rc.DeadlineExceeded):  # yet the caller learns the deadline passed
        end_with_outcome(call, error)


def test_a_client_that_sends_no_correlation_header_still_has_an_id_per_call(
    driver: Driver,
) -> None:
    client, transport, _ = make(driver, [503, 200, 200], correlation_header=None)
    first = info(driver.request(client, "GET", URL)).correlation_id
    second = info(driver.request(client, "GET", URL)).correlation_id
    assert len(first) == 32 and len(second) == 32 and first != second
    assert all("x-correlation-id" not in sent.headers for sent in transport.requests)
    with rc.correlation_id("trace-me-43"):
        assert info(driver.request(client, "GET", URL)).correlation_id == "trace-me-43"


def test_a_per_call_override_can_switch_idempotency_keys_off(driver: Driver) -> None:
    client, transport, _ = make(driver, [503, 200])
    off = rc.Policy(idempotency=None)
    response = driver.request(client, "POST", URL, json={}, extensions={"resilience": off})
    assert response.status_code == 503  # unkeyed POST: not retried
    assert len(transport.requests) == 1
    assert "idempotency-key" not in transport.requests[0].headers
    assert info(response).idempotency_key is None


def test_a_per_call_override_can_name_another_idempotency_header_and_format(
    driver: Driver,
) -> None:
    client, transport, _ = make(driver, [503, 200, 503, 200])
    other = rc.Idempotency(methods=frozenset({"put"}), header="X-Request-Key", format="sf-string")
    override = rc.Policy(idempotency=other)
    response = driver.request(client, "PUT", URL, extensions={"resilience": override})
    key = info(response).idempotency_key
    assert response.status_code == 200 and key is not None
    assert [r.headers["x-request-key"] for r in transport.requests] == [f'"{key}"'] * 2
    assert all("idempotency-key" not in r.headers for r in transport.requests)
    # The endpoint's own rule is untouched by the override: a POST still gets its key.
    response = driver.request(client, "POST", URL, json={})
    assert response.status_code == 200 and "idempotency-key" in transport.requests[-1].headers


def test_decorrelated_backoff_follows_the_wait_a_retry_after_set(driver: Driver) -> None:
    # "Decorrelated" draws the next delay from the last one actually waited, hint included.
    backoff = rc.Backoff(initial=0.1, max=5.0, jitter="decorrelated")
    policy = rc.Policy(retry=rc.Retry(max_attempts=3, backoff=backoff))
    script = [httpx.Response(429, headers={"Retry-After": "0.3"}), 503, 200]
    client, _, clock = make(driver, script, policy=policy, clock=FakeClock(fixed=0.5))
    assert driver.request(client, "GET", URL).status_code == 200
    assert clock.sleeps == pytest.approx([0.3, 0.1 + 0.5 * (3 * 0.3 - 0.1)])


def test_a_per_call_override_is_merged_once_and_the_merges_kept_are_bounded() -> None:
    from resilient_client._call._call import Call
    from resilient_client._call._pipeline import _MERGE_CACHE_LIMIT, Pipeline

    pipeline = Pipeline(policy=rc.Policy(), clock=FakeClock(fixed=0.0))
    override = rc.Policy(retry=rc.Retry(max_attempts=5))

    def policy_of(chosen: rc.Policy) -> rc.Policy:
        request = httpx.Request("GET", URL, extensions={"resilience": chosen})
        return Call(pipeline, request).policy

    first = policy_of(override)
    assert first.retry is not None and first.retry.max_attempts == 5
    assert policy_of(override) is first  # the same override: the same merge
    for _ in range(2 * _MERGE_CACHE_LIMIT):  # an override built anew for every call
        assert policy_of(rc.Policy(retry=rc.Retry(max_attempts=4))).retry is not None
    assert len(pipeline._merges) <= _MERGE_CACHE_LIMIT


def test_a_content_length_in_other_digits_is_left_unread_not_raised() -> None:
    # "²" is a digit to str.isdigit(), and int() refuses it: a ValueError (not an httpx
    # error) escaped the call when a transport let such a header through (h11 refuses it).
    clock = FakeClock(fixed=0.5)
    length = [(b"content-length", "²".encode())]  # raw bytes: httpx would not encode it
    odd = httpx.Response(503, headers=length, stream=httpx.ByteStream(b"x"))
    transport = ScriptedTransport([odd, 200], clock=clock)
    with (
        rc.ResilientClient(transport=transport, clock=clock) as client,
        client.stream("GET", URL) as response,
    ):
        assert response.status_code == 200
    assert len(transport.requests) == 2


def test_a_first_attempt_paced_by_the_rate_limit_gets_what_is_left_of_the_deadline(
    driver: Driver,
) -> None:
    policy = rc.Policy(
        timeouts=rc.Timeouts(connect=5.0, read=10.0, attempt=None, total=3.0),
        rate_limit=rc.RateLimit(per_second=1, max_wait=5.0),
    )
    client, transport, clock = make(driver, [200, 200], policy=policy)
    driver.request(client, "GET", URL)
    driver.request(client, "GET", URL)  # waits a second for its turn
    assert clock.sleeps == [1.0]
    # 2 s of the 3 s deadline are left when the paced attempt starts, not 3 s
    assert sent_timeouts(transport)[1] == dict.fromkeys(("connect", "read", "write", "pool"), 2.0)
