"""Category and retry verdict: the decision table in ``problems._classify``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from resilient_client.problems import (
    ErrorCategory,
    Problem,
    classify,
    parse_problem,
    server_retry_hint,
)
from resilient_client.problems._classify import status_category

C = ErrorCategory


def parse(status: int, body: Any = b"", **headers: str) -> Problem:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers.setdefault("content-type", "application/json")
    return parse_problem(httpx.Response(status, headers=headers, content=raw))


@pytest.mark.parametrize(
    ("status", "category", "retryable"),
    [
        (408, C.TRANSIENT, True),
        (421, C.TRANSIENT, True),
        (425, C.TRANSIENT, True),
        (429, C.THROTTLED, True),
        (500, C.TRANSIENT, True),
        (502, C.TRANSIENT, True),
        (503, C.TRANSIENT, True),
        (504, C.TRANSIENT, True),
        (529, C.TRANSIENT, True),
        (599, C.TRANSIENT, True),
        (400, C.INVALID_REQUEST, False),
        (422, C.INVALID_REQUEST, False),
        (401, C.UNAUTHENTICATED, False),
        (403, C.FORBIDDEN, False),
        (404, C.NOT_FOUND, False),
        (410, C.NOT_FOUND, False),
        (409, C.CONFLICT, False),
        (412, C.CONFLICT, False),
        (402, C.PERSISTENT, False),
        (413, C.PERSISTENT, False),
        (418, C.PERSISTENT, False),
        (501, C.PERSISTENT, False),
        (505, C.PERSISTENT, False),
        (200, C.PERSISTENT, False),
    ],
)
def test_status_table(status: int, category: ErrorCategory, retryable: bool) -> None:
    assert status_category(status) == (category, retryable)
    problem = parse(status)
    assert (problem.category, problem.retryable) == (category, retryable)


def test_413_with_retry_after_is_temporary() -> None:
    problem = parse(413, **{"retry-after": "30"})

    assert (problem.category, problem.retryable) == (C.TRANSIENT, True)


def google(status: int, code: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": "m", "status": code}}


@pytest.mark.parametrize(
    ("status", "code", "category", "retryable"),
    [
        (503, "UNAVAILABLE", C.TRANSIENT, True),
        (504, "DEADLINE_EXCEEDED", C.TRANSIENT, True),
        (429, "RESOURCE_EXHAUSTED", C.THROTTLED, True),
        (409, "ABORTED", C.CONFLICT, True),
        (500, "INTERNAL", C.TRANSIENT, True),
        (500, "UNKNOWN", C.TRANSIENT, True),
        (500, "DATA_LOSS", C.PERSISTENT, False),
        (499, "CANCELLED", C.PERSISTENT, False),
        (400, "INVALID_ARGUMENT", C.INVALID_REQUEST, False),
        (400, "FAILED_PRECONDITION", C.INVALID_REQUEST, False),
        (400, "OUT_OF_RANGE", C.INVALID_REQUEST, False),
        (401, "UNAUTHENTICATED", C.UNAUTHENTICATED, False),
        (403, "PERMISSION_DENIED", C.FORBIDDEN, False),
        (404, "NOT_FOUND", C.NOT_FOUND, False),
        (409, "ALREADY_EXISTS", C.CONFLICT, False),
        (501, "UNIMPLEMENTED", C.PERSISTENT, False),
    ],
)
def test_google_codes(status: int, code: str, category: ErrorCategory, retryable: bool) -> None:
    problem = parse(status, google(status, code))

    assert (problem.category, problem.retryable) == (category, retryable)


def test_a_500_whose_body_says_permanent_is_not_retryable() -> None:
    problem = parse(500, google(500, "INVALID_ARGUMENT"))

    assert (problem.category, problem.retryable) == (C.INVALID_REQUEST, False)


def test_a_400_whose_body_says_unavailable_is_retryable() -> None:
    problem = parse(400, google(400, "UNAVAILABLE"))

    assert (problem.category, problem.retryable) == (C.TRANSIENT, True)


@pytest.mark.parametrize(
    ("status", "kind", "code", "category", "retryable"),
    [
        (429, "rate_limit_error", None, C.THROTTLED, True),
        (529, "overloaded_error", None, C.TRANSIENT, True),
        (500, "api_error", None, C.TRANSIENT, True),
        (400, "invalid_request_error", None, C.INVALID_REQUEST, False),
        (401, "authentication_error", None, C.UNAUTHENTICATED, False),
        (403, "permission_error", None, C.FORBIDDEN, False),
        (404, "not_found_error", None, C.NOT_FOUND, False),
        (400, "billing_error", None, C.PERSISTENT, False),
        (429, "insufficient_quota", "insufficient_quota", C.THROTTLED, False),
        (429, "requests", "rate_limit_exceeded", C.THROTTLED, True),
        # a weak catch-all keeps the status' category when both agree on not retrying
        (404, "invalid_request_error", "model_not_found", C.NOT_FOUND, False),
        # ... and replaces it when the status alone would have retried
        (500, "invalid_request_error", None, C.INVALID_REQUEST, False),
    ],
)
def test_openai_and_anthropic_types(
    status: int, kind: str, code: str | None, category: ErrorCategory, retryable: bool
) -> None:
    body = {"error": {"message": "m", "type": kind, "param": None, "code": code}}

    problem = parse(status, body)

    assert (problem.category, problem.retryable) == (category, retryable)


@pytest.mark.parametrize(
    ("status", "kind", "code", "category", "retryable"),
    [
        (402, "card_error", "card_declined", C.PERSISTENT, False),
        (400, "invalid_request_error", "rate_limit", C.THROTTLED, True),
        (409, "invalid_request_error", "lock_timeout", C.CONFLICT, True),
        (409, "idempotency_error", "idempotency_key_in_use", C.CONFLICT, True),
        (400, "idempotency_error", None, C.INVALID_REQUEST, False),
        (500, "api_error", None, C.TRANSIENT, True),
    ],
)
def test_stripe_types_and_codes(
    status: int, kind: str, code: str | None, category: ErrorCategory, retryable: bool
) -> None:
    body = {"error": {"type": kind, "code": code, "message": "m", "doc_url": "https://d.test"}}

    problem = parse(status, body)

    assert problem.format == "stripe"
    assert (problem.category, problem.retryable) == (category, retryable)


def test_microsoft_innermost_code_is_looked_at_first() -> None:
    body = {"error": {"code": "BadRequest", "message": "m", "innererror": {"code": "ServerBusy"}}}

    problem = parse(400, body)

    assert (problem.category, problem.retryable) == (C.THROTTLED, True)


def test_rfc9457_registered_quota_type_is_throttled() -> None:
    body = {
        "type": "https://iana.org/assignments/http-problem-types#quota-exceeded",
        "title": "Quota exceeded",
    }

    problem = parse(403, body, **{"content-type": "application/problem+json"})

    assert (problem.category, problem.retryable) == (C.THROTTLED, True)


def test_rfc9457_code_extension_is_classified() -> None:
    body = {"title": "Busy", "code": "UNAVAILABLE"}

    problem = parse(500, body, **{"content-type": "application/problem+json"})

    assert (problem.category, problem.retryable) == (C.TRANSIENT, True)


@pytest.mark.parametrize("header", ["x-should-retry", "stripe-should-retry"])
def test_server_hint_true_makes_a_400_retryable(header: str) -> None:
    problem = parse(
        400, {"error": {"type": "invalid_request_error", "message": "m"}}, **{header: "true"}
    )

    assert problem.retryable is True
    assert problem.category is C.INVALID_REQUEST


@pytest.mark.parametrize("header", ["x-should-retry", "stripe-should-retry"])
def test_server_hint_false_makes_a_503_final(header: str) -> None:
    problem = parse(503, google(503, "UNAVAILABLE"), **{header: "false"})

    assert problem.retryable is False


def test_server_hint_beats_a_hard_quota() -> None:
    problem = parse(
        429,
        {"error": {"type": "insufficient_quota", "code": "insufficient_quota", "message": "m"}},
        **{"x-should-retry": "true"},
    )

    assert problem.retryable is True


@pytest.mark.parametrize("value", ["True", "yes", "1", ""])
def test_server_hint_must_be_exactly_true_or_false(value: str) -> None:
    problem = parse(400, **{"x-should-retry": value})

    assert problem.retryable is False


@pytest.mark.parametrize("value", ["true", "false"])
def test_server_hint_reads_the_first_copy_of_a_repeated_header(value: str) -> None:
    # Headers.get would join the copies into "false, false", which is neither.
    headers = httpx.Headers([("x-should-retry", value), ("x-should-retry", "maybe")])

    assert server_retry_hint(headers) is (value == "true")
    assert server_retry_hint({"x-should-retry": value}) is (value == "true")
    assert parse_problem(httpx.Response(503, headers=headers)).retryable is (value == "true")


def test_body_retry_hint_makes_retryable() -> None:
    body = {
        "error": {
            "code": 409,
            "status": "ALREADY_EXISTS",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}],
        }
    }

    assert parse(409, body).retryable is True


def test_classify_skips_empty_and_unknown_signals() -> None:
    assert classify(503, signals=(None, "", "no_such_code", "invalid_argument")) == (
        C.INVALID_REQUEST,
        False,
    )


def test_classify_is_case_insensitive_on_codes() -> None:
    assert classify(500, signals=("Unavailable",)) == (C.TRANSIENT, True)
