"""The retry room's and the deadline room's pure rules, as tables (after urllib3's
test_retry.py): which outcomes are retried, how long the wait is, when a call stops, what an
attempt may spend. No client, no clock: values in, decision out."""

from __future__ import annotations

import math

import httpx
import pytest

import resilient_client as rc
from resilient_client._deadline import attempt_limit, clip, phase_table
from resilient_client._retry import (
    Failure,
    Verdict,
    backoff_delay,
    classify_exception,
    judge_failure,
    judge_status,
    next_wait,
    stop_reason,
)
from resilient_client.problems import ErrorCategory, Problem

RETRY = rc.Retry()
REQUEST = httpx.Request("GET", "https://api.test/x")


# -- which statuses are retried ----------------------------------------------------------

# (status, method, keyed, replayable, hint, problem retryable?) -> verdict
STATUS_TABLE = [
    (200, "GET", False, True, None, None, Verdict(False, "success")),
    (503, "GET", False, True, None, None, Verdict(True, "status_503")),
    (529, "GET", False, True, None, None, Verdict(True, "status_529")),  # overloaded
    (429, "GET", False, True, None, None, Verdict(True, "status_429")),
    (500, "PUT", False, True, None, None, Verdict(True, "status_500")),
    (503, "POST", False, True, None, None, Verdict(False, "method_not_retryable")),
    (503, "POST", True, True, None, None, Verdict(True, "status_503")),
    (503, "PATCH", True, True, None, None, Verdict(True, "status_503")),
    (421, "POST", False, True, None, None, Verdict(True, "status_421")),  # not processed
    (425, "POST", False, True, None, None, Verdict(True, "status_425")),
    (409, "POST", True, True, None, None, Verdict(True, "status_409")),  # still in progress
    (409, "GET", False, True, None, None, Verdict(False, "status_not_retryable")),
    (400, "GET", False, True, None, None, Verdict(False, "status_not_retryable")),
    (404, "GET", False, True, None, None, Verdict(False, "status_not_retryable")),
    (422, "POST", True, True, None, None, Verdict(False, "status_not_retryable")),
    (501, "GET", False, True, None, None, Verdict(False, "status_not_retryable")),
    (503, "GET", False, False, None, None, Verdict(False, "body_not_replayable")),
    (503, "GET", False, True, False, None, Verdict(False, "server_said_no")),  # x-should-retry
    (400, "GET", False, True, True, None, Verdict(True, "status_400")),  # the server's word
    (400, "POST", False, True, True, None, Verdict(False, "method_not_retryable")),
    (500, "GET", False, True, None, False, Verdict(False, "problem_not_retryable")),
    (500, "GET", False, True, None, True, Verdict(True, "status_500")),
    (409, "POST", True, True, None, False, Verdict(True, "status_409")),  # the key rules
    (500, "GET", False, True, True, False, Verdict(True, "status_500")),  # hint beats body
]


def _problem(retryable: bool | None) -> Problem | None:
    if retryable is None:
        return None
    category = ErrorCategory.TRANSIENT if retryable else ErrorCategory.INVALID_REQUEST
    return Problem(status=500, retryable=retryable, category=category, format="unstructured")


@pytest.mark.parametrize(
    ("status", "method", "keyed", "replayable", "hint", "problem", "expected"), STATUS_TABLE
)
def test_status_verdicts(
    status: int,
    method: str,
    keyed: bool,
    replayable: bool,
    hint: bool | None,
    problem: bool | None,
    expected: Verdict,
) -> None:
    verdict = judge_status(status, method, keyed, replayable, RETRY, hint, _problem(problem))
    assert verdict == expected


def test_a_status_off_the_list_is_not_retried_and_one_added_is() -> None:
    custom = rc.Retry(retry_on_status=frozenset({418}))
    assert judge_status(503, "GET", False, True, custom, None, None).retry is False
    assert judge_status(418, "GET", False, True, custom, None, None).retry is True


# -- which exceptions are retried --------------------------------------------------------

EXCEPTION_TABLE = [
    (httpx.ConnectError("x"), Failure.NOT_SENT),
    (httpx.ConnectTimeout("x"), Failure.NOT_SENT),
    (httpx.PoolTimeout("x"), Failure.NOT_SENT),
    (httpx.ReadTimeout("x"), Failure.TIMEOUT),
    (httpx.WriteTimeout("x"), Failure.TIMEOUT),
    (rc.AttemptTimeout(1.0), Failure.TIMEOUT),
    (httpx.ReadError("x"), Failure.BROKEN),
    (httpx.RemoteProtocolError("x"), Failure.BROKEN),
    (httpx.UnsupportedProtocol("x"), Failure.FATAL),
    (httpx.DecodingError("x"), Failure.FATAL),
    (rc.CircuitOpenError("GET /x", 0.0), Failure.FATAL),
    (rc.BulkheadFull("GET /x"), Failure.FATAL),
    (rc.LoadShedError("GET /x"), Failure.FATAL),
    (rc.DeadlineExceeded("GET /x", 1, 1.0), Failure.FATAL),
    (ValueError("a bug"), Failure.FATAL),
]


@pytest.mark.parametrize(("exc", "expected"), EXCEPTION_TABLE)
def test_exception_classification(exc: BaseException, expected: Failure) -> None:
    assert classify_exception(exc) is expected


# (failure, method, keyed, replayable) -> verdict
FAILURE_TABLE = [
    (Failure.NOT_SENT, "POST", False, True, Verdict(True, "connect_error")),  # never sent
    (Failure.NOT_SENT, "GET", False, False, Verdict(False, "body_not_replayable")),
    (Failure.TIMEOUT, "GET", False, True, Verdict(True, "timeout")),
    (Failure.TIMEOUT, "POST", False, True, Verdict(False, "method_not_retryable")),
    (Failure.TIMEOUT, "POST", True, True, Verdict(True, "timeout")),
    (Failure.BROKEN, "DELETE", False, True, Verdict(True, "broken")),
    (Failure.BROKEN, "PATCH", False, True, Verdict(False, "method_not_retryable")),
    (Failure.FATAL, "GET", False, True, Verdict(False, "fatal_error")),
]


@pytest.mark.parametrize(("failure", "method", "keyed", "replayable", "expected"), FAILURE_TABLE)
def test_failure_verdicts(
    failure: Failure, method: str, keyed: bool, replayable: bool, expected: Verdict
) -> None:
    assert judge_failure(failure, method, keyed, replayable) == expected


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (rc.CircuitOpenError("GET /x", 0.0), "breaker"),
        (rc.DeadlineExceeded("GET /x", 1, 1.0), "deadline"),
        (rc.BulkheadFull("GET /x"), "bulkhead"),
        (rc.LoadShedError("GET /x"), "throttle"),
        (httpx.UnsupportedProtocol("x"), "fatal_error"),
    ],
)
def test_a_refusal_names_who_refused(exc: BaseException, reason: str) -> None:
    assert judge_failure(Failure.FATAL, "GET", False, True, exc) == Verdict(False, reason)


# -- how long the wait is -----------------------------------------------------------------

# (backoff, retry_num, previous, rnd) -> delay
BACKOFF_TABLE = [
    (rc.Backoff(jitter="none"), 1, 0.0, 0.5, 0.25),
    (rc.Backoff(jitter="none"), 2, 0.0, 0.5, 0.5),
    (rc.Backoff(jitter="none"), 3, 0.0, 0.5, 1.0),
    (rc.Backoff(jitter="none"), 10, 0.0, 0.5, 8.0),  # capped at max
    (rc.Backoff(jitter="none"), 10_000, 0.0, 0.5, 8.0),  # no overflow
    (rc.Backoff(jitter="full"), 3, 0.0, 0.0, 0.0),
    (rc.Backoff(jitter="full"), 3, 0.0, 0.5, 0.5),
    (rc.Backoff(jitter="equal"), 3, 0.0, 0.0, 0.5),
    (rc.Backoff(jitter="equal"), 3, 0.0, 0.5, 0.75),
    (rc.Backoff(jitter="decorrelated"), 1, 0.0, 0.0, 0.25),  # never below initial
    (rc.Backoff(jitter="decorrelated"), 2, 1.0, 0.5, 0.25 + 0.5 * (3.0 - 0.25)),
    (rc.Backoff(jitter="decorrelated"), 9, 8.0, 0.99, 8.0),  # capped at max
    (rc.Backoff(initial=1.0, multiplier=3.0, max=100.0, jitter="none"), 3, 0.0, 0.5, 9.0),
]


@pytest.mark.parametrize(("backoff", "retry_num", "previous", "rnd", "expected"), BACKOFF_TABLE)
def test_backoff_delays(
    backoff: rc.Backoff, retry_num: int, previous: float, rnd: float, expected: float
) -> None:
    assert backoff_delay(backoff, retry_num, previous, rnd) == pytest.approx(expected)


NOW = 1_700_000_000.0
# (headers, problem's retry hint, retry policy) -> (delay, too_long); backoff "none": 0.5 s
WAIT_TABLE = [
    ({}, None, RETRY, (0.5, False)),  # no hint: the backoff
    ({"retry-after": "3"}, None, RETRY, (3.0, False)),
    ({"retry-after-ms": "1500"}, None, RETRY, (1.5, False)),
    ({"retry-after": "Tue, 14 Nov 2023 22:13:30 GMT"}, None, RETRY, (10.0, False)),  # a date
    ({}, 2.0, RETRY, (2.0, False)),  # the body's hint (Google RetryInfo)
    ({"retry-after": "120"}, None, RETRY, (120.0, True)),  # longer than max_retry_after
    ({"retry-after": "3"}, None, rc.Retry(respect_retry_after=False), (0.5, False)),
]


@pytest.mark.parametrize(("headers", "body_hint", "retry", "expected"), WAIT_TABLE)
def test_waits(
    headers: dict[str, str], body_hint: float | None, retry: rc.Retry, expected: tuple[float, bool]
) -> None:
    retry = retry.model_copy(update={"backoff": rc.Backoff(jitter="none")})
    problem = None
    if body_hint is not None:
        problem = Problem(
            status=503, retry_after=body_hint, category=ErrorCategory.TRANSIENT, format="google"
        )
    wait = next_wait(retry, httpx.Headers(headers), problem, 2, 0.0, 0.5, NOW)
    assert (wait.delay, wait.too_long) == pytest.approx(expected)


def test_after_a_transport_failure_the_wait_is_the_backoff() -> None:
    retry = rc.Retry(backoff=rc.Backoff(jitter="none"))
    assert next_wait(retry, None, None, 1, 0.0, 0.5, NOW).delay == 0.25


# -- when a call stops --------------------------------------------------------------------

# (attempts, max, too_long, now, delay, deadline, breaker_retry_at) -> reason
STOP_TABLE = [
    (1, 3, False, 0.0, 1.0, None, None, None),  # retry goes ahead
    (3, 3, False, 0.0, 1.0, None, None, "max_attempts"),
    (3, 3, True, 0.0, 1.0, None, None, "max_attempts"),  # attempts are checked first
    (1, 3, True, 0.0, 1.0, None, None, "retry_after_too_long"),
    (1, 3, False, 9.0, 1.0, 10.0, None, "deadline"),  # would wake at the deadline
    (1, 3, False, 8.0, 1.0, 10.0, None, None),
    (1, 3, False, 0.0, 1.0, None, 5.0, "breaker"),  # still open when the wait ends
    (1, 3, False, 0.0, 1.0, None, 1.0, None),  # a probe is allowed by then
    (1, 3, False, 9.5, 1.0, 10.0, 50.0, "deadline"),  # deadline before breaker
]


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "too_long", "now", "delay", "deadline", "retry_at", "expected"),
    STOP_TABLE,
)
def test_stop_rules(
    attempts: int,
    max_attempts: int,
    too_long: bool,
    now: float,
    delay: float,
    deadline: float | None,
    retry_at: float | None,
    expected: str | None,
) -> None:
    reason = stop_reason(
        attempts=attempts,
        max_attempts=max_attempts,
        too_long=too_long,
        now=now,
        delay=delay,
        deadline=deadline,
        breaker_retry_at=retry_at,
    )
    assert reason == expected


# -- what an attempt may spend (the deadline room) ----------------------------------------

# (cap, deadline, now) -> limit
LIMIT_TABLE = [
    (10.0, None, 0.0, 10.0),
    (None, None, 0.0, None),
    (10.0, 30.0, 0.0, 10.0),  # the cap
    (10.0, 30.0, 25.0, 5.0),  # what is left of the deadline
    (None, 30.0, 25.0, 5.0),
    (10.0, 30.0, 31.0, -1.0),  # past: the caller raises DeadlineExceeded
]


@pytest.mark.parametrize(("cap", "deadline", "now", "expected"), LIMIT_TABLE)
def test_attempt_limits(
    cap: float | None, deadline: float | None, now: float, expected: float | None
) -> None:
    assert attempt_limit(cap, deadline, now) == expected


def test_each_phase_is_clipped_to_the_limit() -> None:
    table = phase_table(rc.Timeouts(connect=5.0, read=10.0, write=10.0, pool=None))
    assert table[1] == math.inf  # an unlimited phase
    assert clip(table, 7.0) == {"connect": 5.0, "read": 7.0, "write": 7.0, "pool": 7.0}
    assert clip(table, None) is table[0]  # nothing to clip: the same table
    short = phase_table({"connect": 1.0, "read": 2.0, "write": 2.0, "pool": 1.0})
    assert clip(short, 5.0) is short[0]


def test_contradictory_timeouts_are_accepted_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="can never apply"):
        rc.Timeouts(attempt=30.0, total=5.0)
