"""The error model through the client, against the upstream answering in each vendor format,
and the retry decision following the classification, one test per category."""

from __future__ import annotations

import logging

import pytest
from drivers import Driver, Responses

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

FORMATS = [
    ("rfc9457", 400, "rfc9457", rc.ErrorCategory.INVALID_REQUEST),
    ("google", 503, "google", rc.ErrorCategory.TRANSIENT),
    ("google", 400, "google", rc.ErrorCategory.INVALID_REQUEST),
    ("microsoft", 404, "microsoft", rc.ErrorCategory.NOT_FOUND),
    ("jsonapi", 422, "jsonapi", rc.ErrorCategory.INVALID_REQUEST),
    ("openai", 429, "openai", rc.ErrorCategory.THROTTLED),
    ("anthropic", 529, "openai", rc.ErrorCategory.TRANSIENT),
    ("stripe", 402, "stripe", rc.ErrorCategory.PERSISTENT),
    ("graphql", 400, "graphql", rc.ErrorCategory.INVALID_REQUEST),
    ("html", 502, "unstructured", rc.ErrorCategory.TRANSIENT),
    ("text", 403, "unstructured", rc.ErrorCategory.FORBIDDEN),
    ("empty", 401, "unstructured", rc.ErrorCategory.UNAUTHENTICATED),
]


@pytest.mark.parametrize(("fmt", "status", "parsed_as", "category"), FORMATS)
def test_each_vendor_format_parses_through_the_client(
    driver: Driver,
    upstream: RunningServer,
    fmt: str,
    status: int,
    parsed_as: str,
    category: rc.ErrorCategory,
) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock(), policy=rc.Policy(retry=None))
    response = driver.request(client, "GET", f"/problem/p/{fmt}?status={status}")
    problem = rc.parse_problem(response)
    assert (problem.status, problem.format, problem.category) == (status, parsed_as, category)
    if parsed_as != "unstructured":
        assert problem.detail
    if fmt in ("stripe", "anthropic"):
        assert problem.request_id


def test_field_errors_and_retry_hints_are_mapped(driver: Driver, upstream: RunningServer) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock(), policy=rc.Policy(retry=None))
    problem = rc.parse_problem(driver.request(client, "GET", "/problem/fe/google?status=400"))
    assert problem.field_errors and problem.field_errors[0].field
    problem = rc.parse_problem(driver.request(client, "GET", "/problem/fe/jsonapi?status=422"))
    assert problem.field_errors and problem.field_errors[0].field.startswith("/")
    problem = rc.parse_problem(driver.request(client, "GET", "/problem/ra/google?status=503"))
    assert problem.retry_after is not None and problem.retryable


@pytest.mark.parametrize(
    ("path", "attempts", "category"),
    [
        ("/flaky/c-transient?fail=1&status=503&format=google", 2, rc.ErrorCategory.TRANSIENT),
        ("/flaky/c-throttled?fail=1&status=429&format=openai", 2, rc.ErrorCategory.THROTTLED),
        ("/status/c-invalid/400?format=rfc9457", 1, rc.ErrorCategory.INVALID_REQUEST),
        ("/status/c-unauth/401?format=openai", 1, rc.ErrorCategory.UNAUTHENTICATED),
        ("/status/c-forbidden/403?format=microsoft", 1, rc.ErrorCategory.FORBIDDEN),
        ("/status/c-notfound/404?format=stripe", 1, rc.ErrorCategory.NOT_FOUND),
        ("/status/c-conflict/409?format=rfc9457", 1, rc.ErrorCategory.CONFLICT),
        ("/status/c-persistent/501?format=google", 1, rc.ErrorCategory.PERSISTENT),
    ],
)
def test_the_retry_decision_follows_the_category(
    driver: Driver, upstream: RunningServer, path: str, attempts: int, category: rc.ErrorCategory
) -> None:
    responses = Responses()
    client = driver.client(base_url=upstream.url, clock=FakeClock(), observers=[responses])
    response = driver.request(client, "GET", path)
    name = path.split("/")[2].split("?")[0]
    assert upstream.app.scenario(name).attempts == attempts
    if response.status_code >= 400:
        assert rc.parse_problem(response).category == category
    # The category of the first failed attempt, on every row: the /flaky rows end in 200.
    assert len(responses.seen) == attempts
    first = responses.seen[0]
    assert first is not None and first.status_code >= 400
    assert rc.parse_problem(first).category == category


def test_a_500_whose_body_is_permanent_is_not_retried(
    driver: Driver, upstream: RunningServer
) -> None:
    """A Stripe-style 500 saying ``Stripe-Should-Retry: false`` (the result was stored)."""
    client = driver.client(base_url=upstream.url, clock=FakeClock())
    response = driver.request(
        client, "GET", "/status/c-perm500/500?should_retry=false&format=stripe"
    )
    assert response.status_code == 500
    assert upstream.app.scenario("c-perm500").attempts == 1
    assert rc.parse_problem(response).retryable is False


def test_a_400_with_an_explicit_retry_hint_is_retried(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock())
    response = driver.request(client, "GET", "/flaky/c-hint?fail=1&status=400&should_retry=true")
    assert response.status_code == 200
    assert upstream.app.scenario("c-hint").attempts == 2


def test_network_failures_classify_as_network_and_are_retried(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    client = driver.client(
        base_url="http://127.0.0.1:9", clock=clock, policy=rc.Policy(budget=None)
    )
    with (
        caplog.at_level(logging.DEBUG, logger="resilient_client"),
        pytest.raises(driver.lib.ConnectError) as raised,
    ):
        driver.request(client, "GET", "/nothing-listens-here")
    assert len(clock.sleeps) == 2  # three attempts
    assert (
        rc.Problem.for_network_error(type(raised.value).__name__).category
        is rc.ErrorCategory.NETWORK
    )
    # What the client itself concluded: the final failure's log record - at DEBUG, since
    # the caller is handed the failure as an exception (API.md §5), and nothing above it.
    final = [r for r in caplog.records if r.name == "resilient_client" and hasattr(r, "category")]
    assert len(final) == 1
    assert final[0].levelno == logging.DEBUG
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]
    record = final[0]
    assert (record.category, record.attempts, record.status, record.error) == (
        "network",
        3,
        None,
        type(raised.value).__name__,
    )


def test_raise_for_error_gives_typed_exceptions_with_one_line_messages(
    driver: Driver, upstream: RunningServer
) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock(), raise_for_error=True)
    cases = [
        (400, driver.ns.BadRequestError),
        (401, driver.ns.AuthenticationError),
        (403, driver.ns.PermissionDeniedError),
        (404, driver.ns.NotFoundError),
        (409, driver.ns.ConflictError),
        (429, driver.ns.RateLimitError),
        (500, driver.ns.ServerError),
        (503, driver.ns.ServiceUnavailableError),
    ]
    for status, cls in cases:
        with pytest.raises(cls) as raised:
            driver.request(
                client,
                "GET",
                f"/status/typed-{status}/{status}?format=google&request_id=req-{status}",
                headers={"Authorization": "Bearer sk-SECRET-CANARY"},
            )
        message = str(raised.value)
        assert "\n" not in message
        assert str(status) in message and f"req-{status}" in message
        assert "SECRET" not in message and upstream.url not in message
        assert raised.value.problem.status == status


def test_final_failures_are_logged_once_with_structured_fields(
    driver: Driver, upstream: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = driver.client(base_url=upstream.url, clock=FakeClock())
    with caplog.at_level(logging.DEBUG, logger="resilient_client"):
        driver.request(client, "GET", "/status/log-final/503?format=google&request_id=req-77")
        driver.request(client, "GET", "/flaky/log-recovered?fail=1")
    final = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(final) == 1
    record = final[0]
    assert (
        record.endpoint,
        record.status,
        record.category,
        record.code,
        record.request_id,
        record.attempts,
    ) == (f"* 127.0.0.1:{upstream.port}", 503, "transient", "UNAVAILABLE", "req-77", 3)
    assert record.correlation_id
    recovered = [
        r for r in caplog.records if r.levelno == logging.DEBUG and "recovered" in r.getMessage()
    ]
    assert len(recovered) == 1


def test_repeated_identical_failures_are_logged_once_per_interval(
    driver: Driver, upstream: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    client = driver.client(base_url=upstream.url, clock=clock, policy=rc.Policy(retry=None))
    with caplog.at_level(logging.WARNING, logger="resilient_client"):
        for _ in range(50):
            driver.request(client, "GET", "/status/log-storm/404")
        clock.advance(11.0)
        driver.request(client, "GET", "/status/log-storm/404")
    records = [
        r
        for r in caplog.records
        if "log-storm" not in r.getMessage() and r.name == "resilient_client"
    ]
    assert len(records) == 2
    assert records[1].suppressed == 49
    assert "49 identical failures suppressed" in records[1].getMessage()
