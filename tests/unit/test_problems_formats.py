"""Each envelope read from a payload shaped like its vendor's documented examples."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from resilient_client.problems import ErrorCategory, FieldError, Problem, parse_problem


def respond(
    status: int, body: Any, content_type: str | None = "application/json", **headers: str
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if content_type is not None:
        headers["content-type"] = content_type
    return httpx.Response(status, headers=headers, content=raw)


def parse(
    status: int, body: Any, content_type: str | None = "application/json", **headers: str
) -> Problem:
    return parse_problem(respond(status, body, content_type, **headers))


# -- RFC 9457 ---------------------------------------------------------------------------

VALIDATION_PROBLEM = {
    "type": "https://shop.example.test/problems/invalid-order",
    "title": "The order is not valid",
    "status": 422,
    "detail": "Two fields failed validation",
    "instance": "urn:uuid:0b7c1f5e-2d1e-4c55-9e0a-7d6f4c3b2a19",
    "code": "order_invalid",
    "errors": [
        {"pointer": "#/lines/0/quantity", "detail": "must be at least 1"},
        {"pointer": "#/currency", "detail": "unknown currency"},
    ],
    "balance": 30,
}


def test_rfc9457_maps_standard_members_and_keeps_extensions() -> None:
    problem = parse(422, VALIDATION_PROBLEM, "application/problem+json; charset=utf-8")

    assert problem.format == "rfc9457"
    assert problem.type == "https://shop.example.test/problems/invalid-order"
    assert problem.title == "The order is not valid"
    assert problem.detail == "Two fields failed validation"
    assert problem.instance == "urn:uuid:0b7c1f5e-2d1e-4c55-9e0a-7d6f4c3b2a19"
    assert problem.code == "order_invalid"
    assert problem.extensions == {"errors": VALIDATION_PROBLEM["errors"], "balance": 30}
    assert problem.field_errors == [
        FieldError(field="#/lines/0/quantity", message="must be at least 1"),
        FieldError(field="#/currency", message="unknown currency"),
    ]
    assert problem.category is ErrorCategory.INVALID_REQUEST
    assert problem.retryable is False


def test_rfc9457_ignores_members_of_the_wrong_type() -> None:
    body = {"type": 7, "title": ["x"], "status": "503", "detail": {"a": 1}, "instance": 3}

    problem = parse(503, body, "application/problem+json")

    assert problem.type == "about:blank"
    assert problem.title == "Service Unavailable"
    assert (problem.detail, problem.instance, problem.code) == (None, None, None)
    assert problem.extensions == {}


def test_rfc9457_about_blank_title_defaults_to_the_reason_phrase() -> None:
    problem = parse(404, {"detail": "no such order"}, "application/problem+json")

    assert problem.type == "about:blank"
    assert problem.title == "Not Found"
    assert problem.category is ErrorCategory.NOT_FOUND


def test_rfc9457_explicit_title_wins_over_the_reason_phrase() -> None:
    problem = parse(404, {"title": "Nicht gefunden"}, "application/problem+json")

    assert problem.title == "Nicht gefunden"


def test_rfc9457_body_status_differing_from_the_wire_is_kept_apart() -> None:
    problem = parse(502, {"title": "Upstream failed", "status": 500}, "application/problem+json")

    assert problem.status == 502
    assert problem.extensions == {"status": 500}


def test_rfc9457_relative_type_is_kept_as_sent() -> None:
    problem = parse(400, {"type": "/problems/out-of-stock"}, "application/problem+json")

    assert problem.type == "/problems/out-of-stock"


def test_rfc9457_legacy_invalid_params_become_field_errors() -> None:
    body = {"title": "Bad input", "invalid-params": [{"name": "age", "reason": "too young"}]}

    problem = parse(400, body, "application/problem+json")

    assert problem.field_errors == [FieldError(field="age", message="too young")]


def test_rfc9457_request_id_extension_becomes_request_id() -> None:
    problem = parse(500, {"title": "Oops", "request_id": "r-77"}, "application/problem+json")

    assert problem.request_id == "r-77"
    assert "request_id" not in problem.extensions


def test_problem_json_sent_as_application_json_is_recognized_by_shape() -> None:
    problem = parse(409, {"type": "https://x.test/p/locked", "title": "Locked", "status": 409})

    assert problem.format == "rfc9457"
    assert problem.title == "Locked"


def test_problem_json_whose_body_is_an_array_falls_back_to_unstructured() -> None:
    problem = parse(500, [{"title": "x"}], "application/problem+json")

    assert problem.format == "unstructured"
    assert problem.title == "Internal Server Error"


# -- Google --------------------------------------------------------------------------------

GOOGLE_QUOTA = {
    "error": {
        "code": 429,
        "message": "Quota exceeded for 'reads per minute' on project 'demo-42'.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "storage.example.googleapis.com",
                "metadata": {"quotaMetric": "reads", "consumer": "projects/demo-42"},
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.500s"},
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [{"description": "Quotas", "url": "https://docs.example.test/quotas"}],
            },
            {"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": "g-123"},
            {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": "stack: secret"},
        ],
    }
}


def test_google_status_maps_code_detail_and_error_info() -> None:
    problem = parse(429, GOOGLE_QUOTA)

    assert problem.format == "google"
    assert problem.code == "RESOURCE_EXHAUSTED"
    assert problem.detail == "Quota exceeded for 'reads per minute' on project 'demo-42'."
    assert problem.extensions["reason"] == "RATE_LIMIT_EXCEEDED"
    assert problem.extensions["domain"] == "storage.example.googleapis.com"
    assert problem.extensions["metadata"] == {
        "quotaMetric": "reads",
        "consumer": "projects/demo-42",
    }
    assert problem.extensions["help_links"] == [
        {"description": "Quotas", "url": "https://docs.example.test/quotas"}
    ]
    assert problem.request_id == "g-123"


def test_google_debug_info_is_never_kept() -> None:
    problem = parse(429, GOOGLE_QUOTA)

    assert "secret" not in json.dumps(problem.model_dump())


def test_google_retry_info_becomes_retry_after_and_makes_it_retryable() -> None:
    problem = parse(429, GOOGLE_QUOTA)

    assert problem.retry_after == 2.5
    assert problem.category is ErrorCategory.THROTTLED
    assert problem.retryable is True


def test_google_retry_after_header_wins_over_retry_info() -> None:
    problem = parse(429, GOOGLE_QUOTA, **{"retry-after": "7"})

    assert problem.retry_after == 7.0


def test_google_bad_request_field_violations_become_field_errors() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "Invalid book",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": "book.title", "description": "required", "reason": "EMPTY"},
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "field_violations": [{"field": "book.isbn", "description": "bad checksum"}],
                },
            ],
        }
    }

    problem = parse(400, body)

    assert problem.field_errors == [
        FieldError(field="book.title", message="required", code="EMPTY"),
        FieldError(field="book.isbn", message="bad checksum"),
    ]
    assert problem.category is ErrorCategory.INVALID_REQUEST


def test_google_localized_message_and_unknown_details_are_kept() -> None:
    other = {"@type": "type.googleapis.com/acme.Custom", "x": 1}
    body = {
        "error": {
            "code": 403,
            "message": "denied",
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "fr",
                    "message": "Accès refusé",
                },
                other,
            ],
        }
    }

    problem = parse(403, body)

    assert problem.extensions["localized_message"] == "Accès refusé"
    assert problem.extensions["details"] == [other]
    assert problem.category is ErrorCategory.FORBIDDEN


def test_google_daily_quota_failure_is_a_hard_quota() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "Daily limit reached",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {"subject": "project:demo-42", "quotaId": "ReadRequestsPerDayPerProject"}
                    ],
                }
            ],
        }
    }

    problem = parse(429, body)

    assert problem.category is ErrorCategory.THROTTLED
    assert problem.retryable is False
    assert problem.extensions["quota_violations"] == [
        {"subject": "project:demo-42", "quotaId": "ReadRequestsPerDayPerProject"}
    ]


def test_google_per_minute_quota_failure_stays_retryable() -> None:
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"description": "Reads per minute exceeded"}],
                }
            ],
        }
    }

    assert parse(429, body).retryable is True


def test_google_bare_status_translates_the_grpc_number() -> None:
    problem = parse(500, {"error": {"code": 14, "message": "backend down"}})

    assert problem.format == "google"
    assert problem.code == "UNAVAILABLE"


# -- Microsoft -----------------------------------------------------------------------------

AZURE_ERROR = {
    "error": {
        "code": "QuotaExceeded",
        "message": "The subscription may hold at most 20 vaults.",
        "target": "vaults",
        "details": [{"code": "LimitReached", "message": "20 of 20 in use", "target": "count"}],
        "innererror": {"code": "VaultCountLimit", "innererror": {"code": "RegionalVaultLimit"}},
        "maximumVaults": 20,
    }
}


def test_microsoft_maps_code_innermost_code_and_details() -> None:
    problem = parse(409, AZURE_ERROR, **{"x-ms-request-id": "ms-1"})

    assert problem.format == "microsoft"
    assert problem.code == "QuotaExceeded"
    assert problem.detail == "The subscription may hold at most 20 vaults."
    assert problem.extensions["innererror_code"] == "RegionalVaultLimit"
    assert problem.extensions["target"] == "vaults"
    assert problem.extensions["maximumVaults"] == 20
    assert problem.field_errors == [
        FieldError(field="count", message="20 of 20 in use", code="LimitReached")
    ]
    assert problem.request_id == "ms-1"


def test_microsoft_graph_inner_error_request_id_and_camel_case_code() -> None:
    body = {
        "error": {
            "code": "tooManyRequests",
            "message": "Slow down",
            "innerError": {"request-id": "graph-9", "date": "2026-11-22T10:00:00"},
        }
    }

    problem = parse(429, body)

    assert problem.format == "microsoft"
    assert problem.request_id == "graph-9"
    assert problem.category is ErrorCategory.THROTTLED


def test_microsoft_minimal_code_and_message_is_recognized() -> None:
    problem = parse(400, {"error": {"code": "InvalidArgument", "message": "bad"}})

    assert problem.format == "microsoft"
    assert problem.code == "InvalidArgument"


# -- JSON:API ------------------------------------------------------------------------------

JSONAPI_ERRORS = {
    "errors": [
        {
            "id": "e-17",
            "status": "422",
            "code": "too_short",
            "title": "Invalid attribute",
            "detail": "Name needs at least 3 characters.",
            "source": {"pointer": "/data/attributes/name"},
            "links": {
                "about": "https://api.example.test/errors/e-17",
                "type": {"href": "https://api.example.test/docs/too_short"},
            },
            "meta": {"min": 3},
        },
        {"status": "422", "detail": "Bad filter", "source": {"parameter": "filter[age]"}},
    ],
    "jsonapi": {"version": "1.1"},
}


def test_jsonapi_maps_the_first_error_and_every_source() -> None:
    problem = parse(422, JSONAPI_ERRORS, "application/vnd.api+json")

    assert problem.format == "jsonapi"
    assert problem.code == "too_short"
    assert problem.title == "Invalid attribute"
    assert problem.detail == "Name needs at least 3 characters."
    assert problem.type == "https://api.example.test/docs/too_short"
    assert problem.instance == "https://api.example.test/errors/e-17"
    assert problem.field_errors == [
        FieldError(
            field="/data/attributes/name",
            message="Name needs at least 3 characters.",
            code="too_short",
        ),
        FieldError(field="filter[age]", message="Bad filter"),
    ]
    assert problem.extensions["meta"] == {"min": 3}
    assert problem.extensions["jsonapi"] == {"version": "1.1"}
    assert len(problem.extensions["errors"]) == 2


def test_jsonapi_is_recognized_by_shape_without_its_media_type() -> None:
    body = {"errors": [{"status": "404", "title": "Not here", "id": "x1"}]}

    problem = parse(404, body)

    assert problem.format == "jsonapi"
    assert problem.instance == "x1"


# -- OpenAI and Anthropic --------------------------------------------------------------------


def test_openai_error_maps_message_type_code_and_param() -> None:
    body = {
        "error": {
            "message": "Unknown parameter: 'temprature'.",
            "type": "invalid_request_error",
            "param": "temprature",
            "code": "unknown_parameter",
        }
    }

    problem = parse(400, body, **{"x-request-id": "req_abc"})

    assert problem.format == "openai"
    assert problem.type == "invalid_request_error"
    assert problem.code == "unknown_parameter"
    assert problem.detail == "Unknown parameter: 'temprature'."
    assert problem.field_errors == [
        FieldError(
            field="temprature",
            message="Unknown parameter: 'temprature'.",
            code="unknown_parameter",
        )
    ]
    assert problem.request_id == "req_abc"


def test_openai_code_falls_back_to_type() -> None:
    body = {
        "error": {"message": "Slow down", "type": "rate_limit_error", "param": None, "code": None}
    }

    problem = parse(429, body)

    assert problem.code == "rate_limit_error"
    assert problem.field_errors == []


def test_anthropic_error_reads_as_openai_with_body_request_id() -> None:
    body = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": "req_011example",
    }

    problem = parse(529, body, **{"request-id": "req_from_header"})

    assert problem.format == "openai"
    assert problem.code == "overloaded_error"
    assert problem.detail == "Overloaded"
    assert problem.request_id == "req_011example"
    assert problem.category is ErrorCategory.TRANSIENT
    assert problem.retryable is True


def test_openai_compatible_numeric_code_is_not_mistaken_for_google() -> None:
    body = {"error": {"message": "bad", "type": "BadRequestError", "param": None, "code": 400}}

    problem = parse(400, body)

    assert problem.format == "openai"
    assert problem.code == "400"


# -- Stripe --------------------------------------------------------------------------------

STRIPE_CARD_ERROR = {
    "error": {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "The card has insufficient funds.",
        "param": "payment_method",
        "doc_url": "https://stripe.example.test/docs/error-codes/card-declined",
        "request_log_url": "https://dashboard.example.test/logs/req_x",
    }
}


def test_stripe_error_maps_type_code_param_and_keeps_the_rest() -> None:
    problem = parse(402, STRIPE_CARD_ERROR, **{"request-id": "req_stripe"})

    assert problem.format == "stripe"
    assert problem.type == "card_error"
    assert problem.code == "card_declined"
    assert problem.detail == "The card has insufficient funds."
    assert problem.field_errors == [
        FieldError(
            field="payment_method",
            message="The card has insufficient funds.",
            code="card_declined",
        )
    ]
    assert problem.extensions == {
        "decline_code": "insufficient_funds",
        "doc_url": "https://stripe.example.test/docs/error-codes/card-declined",
        "request_log_url": "https://dashboard.example.test/logs/req_x",
    }
    assert problem.request_id == "req_stripe"
    assert problem.category is ErrorCategory.PERSISTENT
    assert problem.retryable is False


def test_stripe_lookalike_of_openai_is_told_apart_by_its_header() -> None:
    body = {"error": {"type": "invalid_request_error", "message": "No such customer"}}

    problem = parse(404, body, **{"stripe-should-retry": "false"})

    assert problem.format == "stripe"
    assert problem.code is None
    assert problem.category is ErrorCategory.NOT_FOUND


# -- GraphQL -------------------------------------------------------------------------------

GRAPHQL_ERRORS = {
    "data": {"order": None},
    "errors": [
        {
            "message": "Not allowed to read totals",
            "locations": [{"line": 3, "column": 5}],
            "path": ["order", 0, "total"],
            "extensions": {"code": "FORBIDDEN", "policy": "finance"},
        },
        {"message": "Second problem"},
    ],
}


def test_graphql_maps_message_code_path_and_locations() -> None:
    problem = parse(200, GRAPHQL_ERRORS, "application/graphql-response+json")

    assert problem.format == "graphql"
    assert problem.detail == "Not allowed to read totals"
    assert problem.code == "FORBIDDEN"
    assert problem.field_errors == [
        FieldError(field="order.0.total", message="Not allowed to read totals", code="FORBIDDEN")
    ]
    assert problem.extensions["path"] == ["order", 0, "total"]
    assert problem.extensions["locations"] == [{"line": 3, "column": 5}]
    assert problem.extensions["policy"] == "finance"
    assert "data" not in problem.extensions
    assert problem.category is ErrorCategory.FORBIDDEN


def test_graphql_is_recognized_by_shape_as_legacy_json() -> None:
    problem = parse(200, {"errors": [{"message": "Syntax error", "locations": []}]})

    assert problem.format == "graphql"


# -- unstructured ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "text/html",
        ),
        (b"", None),
        (b"{not json", "application/json"),
        (b"42", "application/json"),
        (b'"just a string"', "application/json"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
    ],
)
def test_bodies_of_no_known_shape_are_unstructured(body: bytes, content_type: str | None) -> None:
    problem = parse(502, body, content_type)

    assert problem.format == "unstructured"
    assert problem.title == "Bad Gateway"
    assert problem.detail is None
    assert problem.category is ErrorCategory.TRANSIENT


def test_plain_text_body_becomes_the_detail_on_one_line() -> None:
    problem = parse(503, b"upstream connect error\n  or disconnect/reset\n", "text/plain")

    assert problem.detail == "upstream connect error or disconnect/reset"


def test_plain_text_detail_drops_control_characters_and_marks_its_cut() -> None:
    problem = parse(503, b"\x1b[31mdown\x1b[0m\x00 " + b"y" * 2000, "text/plain")

    assert problem.detail is not None
    assert problem.detail.startswith("[31mdown[0m yyy")
    assert len(problem.detail) == 1024
    assert problem.detail.endswith("y…")


def test_generic_json_reads_common_members() -> None:
    problem = parse(401, {"error": "invalid_token", "error_description": "expired", "n": 1})

    assert problem.format == "unstructured"
    assert problem.code == "invalid_token"
    assert problem.detail == "expired"
    assert problem.extensions == {"n": 1}


def test_fastapi_validation_errors_become_field_errors() -> None:
    body = {
        "detail": [{"loc": ["body", "items", 0, "qty"], "msg": "too small", "type": "greater_than"}]
    }

    problem = parse(422, body)

    assert problem.field_errors == [
        FieldError(field="body.items.0.qty", message="too small", code="greater_than")
    ]


# -- the model -------------------------------------------------------------------------------


def test_problem_is_frozen() -> None:
    problem = parse(404, {"detail": "x"}, "application/problem+json")

    with pytest.raises(ValueError, match="frozen"):
        problem.detail = "y"  # type: ignore[misc]


def test_every_parsed_problem_validates_as_its_own_model() -> None:
    for status, body, content_type in [
        (422, VALIDATION_PROBLEM, "application/problem+json"),
        (429, GOOGLE_QUOTA, "application/json"),
        (409, AZURE_ERROR, "application/json"),
        (422, JSONAPI_ERRORS, "application/vnd.api+json"),
        (402, STRIPE_CARD_ERROR, "application/json"),
        (200, GRAPHQL_ERRORS, "application/json"),
    ]:
        problem = parse(status, body, content_type)

        assert Problem.model_validate(problem.model_dump()) == problem


def test_network_problem_is_retryable_and_categorized_as_network() -> None:
    problem = Problem.for_network_error("ConnectError")

    assert problem.status == 0
    assert problem.category is ErrorCategory.NETWORK
    assert problem.retryable is True
    assert problem.summary() == "network error: ConnectError"
