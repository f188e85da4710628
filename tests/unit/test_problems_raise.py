"""``raise_for_error``: the class per status and a one-line, log-safe message."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from resilient_client._exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)
from resilient_client.problems import Problem, araise_for_error, parse_problem, raise_for_error

SECRET = "sk-live-DO-NOT-LEAK"
URL = "https://api.example.test/v1/charges?api_key=" + SECRET


def respond(status: int, body: Any = b"", **headers: str) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers.setdefault("content-type", "application/json")
    request = httpx.Request("POST", URL, headers={"Authorization": f"Bearer {SECRET}"})
    return httpx.Response(status, headers=headers, content=raw, request=request)


def raised(response: httpx.Response) -> ApiError:
    with pytest.raises(ApiError) as caught:
        raise_for_error(response)
    return caught.value


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304, 399])
def test_below_400_returns_the_response(status: int) -> None:
    response = respond(status)

    assert raise_for_error(response) is response


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (422, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (410, NotFoundError),
        (409, ConflictError),
        (412, ConflictError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServiceUnavailableError),
        (529, ServerError),
        (402, ApiError),
        (418, ApiError),
        (599, ServerError),
        # Not 5xx: LinkedIn's 999 "Request denied" to a client it takes for a bot.
        (600, ApiError),
        (999, ApiError),
    ],
)
def test_each_status_raises_its_class(status: int, error_class: type[ApiError]) -> None:
    error = raised(respond(status))

    assert type(error) is error_class
    assert isinstance(error, httpx.HTTPStatusError)
    assert error.problem.status == status
    assert error.response.status_code == status


def test_the_error_carries_the_parsed_problem() -> None:
    body = {"error": {"type": "rate_limit_error", "message": "Slow down"}}

    error = raised(respond(429, body, **{"retry-after": "4"}))

    assert isinstance(error.problem, Problem)
    assert error.problem.code == "rate_limit_error"
    assert error.problem.retry_after == 4.0


def test_message_has_status_code_detail_and_request_id_on_one_line() -> None:
    body = {
        "error": {
            "code": "card_declined",
            "type": "card_error",
            "message": "Your card\nwas   declined.",
            "doc_url": "https://d.test",
        }
    }

    error = raised(respond(402, body, **{"request-id": "req_42"}))

    assert str(error) == (
        "402 Payment Required [card_declined]: Your card was declined. (request id req_42)"
    )


def test_message_never_holds_the_url_or_another_header_value() -> None:
    body = {"title": "Nope", "detail": "denied", "status": 403}
    response = respond(
        403,
        body,
        **{
            "content-type": "application/problem+json",
            "x-api-key": SECRET,
            "set-cookie": f"s={SECRET}",
            "x-request-id": "rid-1",
        },
    )

    message = str(raised(response))

    assert SECRET not in message
    assert "example.test" not in message
    assert message == "403 Forbidden: denied (request id rid-1)"


def test_message_holds_no_body_beyond_detail() -> None:
    body = {"error": {"type": "api_error", "message": "boom", "secret_field": SECRET}}

    message = str(raised(respond(500, body)))

    assert message == "500 Internal Server Error [api_error]: boom"


def test_long_detail_is_cut_and_control_characters_dropped() -> None:
    body = {"detail": "\x1b[31m" + "word " * 200, "title": "t"}

    message = str(raised(respond(400, body, **{"content-type": "application/problem+json"})))

    assert "\x1b" not in message
    assert message.endswith("…")
    assert len(message) < 260


def test_unsafe_request_id_header_is_not_trusted() -> None:
    message = str(raised(respond(500, **{"x-request-id": "a b\tc", "request-id": "good-1"})))

    assert message == "500 Internal Server Error (request id good-1)"


def test_a_signed_url_quoted_in_the_detail_is_redacted_in_the_message() -> None:
    signed = (
        f"https://bucket.s3.test/report.csv?X-Amz-Credential=AKIA{SECRET}"
        f"&X-Amz-Signature={SECRET}&token={SECRET}&versionId=7"
    )
    body = {
        "title": "Gone",
        "detail": f"The link {signed} expired; see https://admin:{SECRET}@ops.test/runbook",
    }

    error = raised(respond(410, body, **{"content-type": "application/problem+json"}))

    message = str(error)
    assert SECRET not in message
    assert message == (
        "410 Gone: The link https://bucket.s3.test/report.csv?X-Amz-Credential=REDACTED"
        "&X-Amz-Signature=REDACTED&token=REDACTED&versionId=7 expired; see "
        "https://REDACTED:REDACTED@ops.test/runbook"
    )
    assert error.problem.detail == body["detail"]  # the data itself is the server's


@pytest.mark.parametrize(("spaces", "words"), [(0, 150), (0, 175), (0, 185), (640, 145)])
def test_a_signed_url_cut_at_the_end_of_the_message_leaks_nothing(spaces: int, words: int) -> None:
    # A long detail is cut (at 200 characters shown, 800 read): the URL must be redacted
    # before the cut, or a cut inside its "user:password@" or "sig=" part would leave the
    # secret's first letters.
    detail = " " * spaces + "x" * words + f" https://u:{SECRET}@h.test/?sig={SECRET}"

    message = str(raised(respond(500, {"detail": detail, "title": "t"})))

    assert message.startswith("500 Internal Server Error: xxx")
    assert SECRET[:3] not in message


def test_code_and_title_are_redacted_too() -> None:
    body = {"error": {"code": f"https://h.test/?token={SECRET}", "message": ""}}

    message = str(raised(respond(400, body)))

    assert SECRET not in message
    assert "token=REDACTED" in message


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        # An ad-hoc API's message in "error" (read as the code, OAuth-style).
        ({"error": "User jane.doe@example.test not found"}, "[User [email] not found]"),
        ({"error": "card 4242 4242 4242 4242 was declined"}, "[card [card] was declined]"),
        ({"code": "key sk_live_abcdefghijklmnop revoked"}, "[key [token] revoked]"),
        ({"error": {"code": "no user jane.doe@example.test", "message": "m"}}, "[no user [email]]"),
    ],
)
def test_server_text_shown_as_the_code_is_masked_too(body: dict[str, Any], shown: str) -> None:
    error = raised(respond(404, body))

    assert shown in str(error)
    assert "@" not in str(error)
    assert error.problem.code is not None
    assert "[" not in error.problem.code  # the data itself is the server's


def test_a_problem_parsed_already_is_raised_as_it_is() -> None:
    # The pipeline parses with its own clock: an HTTP-date Retry-After without a Date
    # header is measured from that clock, and must not be parsed again from the system's.
    response = respond(
        503, {"error": {"message": "later"}}, **{"retry-after": "Wed, 21 Oct 2026 07:28:45 GMT"}
    )
    problem = parse_problem(response, now=1_792_567_680.0)  # 07:28:00 on that day

    with pytest.raises(ServiceUnavailableError) as caught:
        raise_for_error(response, problem=problem)

    assert caught.value.problem is problem
    assert caught.value.problem.retry_after == 45.0
    assert str(caught.value) == problem.summary()


def test_a_problem_given_for_a_success_is_ignored() -> None:
    response = respond(200)

    assert raise_for_error(response, problem=Problem(status=500)) is response


async def test_async_variant_raises_a_problem_parsed_already_without_reading() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        raise AssertionError("the body was read again")
        yield b""  # pragma: no cover - makes this an async generator

    response = httpx.Response(502, content=chunks(), request=httpx.Request("GET", URL))
    problem = Problem(status=502, detail="upstream gone", code="bad_gateway")

    with pytest.raises(ServerError) as caught:
        await araise_for_error(response, problem=problem)

    assert caught.value.problem is problem
    assert str(caught.value) == "502 Bad Gateway [bad_gateway]: upstream gone"


def test_html_body_from_a_proxy_gives_just_the_status() -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1>" + SECRET.encode() + b"</body></html>"

    message = str(raised(respond(502, page, **{"content-type": "text/html"})))

    assert message == "502 Bad Gateway"


def test_reused_idempotency_key_is_said_in_so_many_words() -> None:
    body = {
        "type": "https://api.example.test/problems/idempotency-key-reused",
        "title": "Idempotency key already used",
        "detail": "This key was used with a different request body.",
    }
    response = respond(422, body, **{"content-type": "application/problem+json"})

    message = str(raised(response))

    assert "idempotency key reused with a different payload" in message
    assert "\n" not in message


def test_stripe_idempotency_error_is_said_too() -> None:
    body = {"error": {"type": "idempotency_error", "message": "Keys must match parameters."}}

    message = str(raised(respond(400, body, **{"stripe-should-retry": "false"})))

    assert "idempotency key reused with a different payload" in message


def test_stripe_409_key_in_flight_is_not_called_a_reuse() -> None:
    body = {
        "error": {
            "type": "idempotency_error",
            "code": "idempotency_key_in_use",
            "message": "Another request with this key is in progress.",
        }
    }

    message = str(raised(respond(409, body, **{"stripe-should-retry": "true"})))

    assert "reused" not in message


def test_blank_detail_adds_nothing_to_the_message() -> None:
    body = {"title": "x", "detail": " \n\t "}

    message = str(raised(respond(500, body, **{"content-type": "application/problem+json"})))

    assert message == "500 Internal Server Error"


def test_an_ordinary_422_says_nothing_about_idempotency() -> None:
    body = {"title": "Invalid", "detail": "name is required"}

    message = str(raised(respond(422, body, **{"content-type": "application/problem+json"})))

    assert "idempotency" not in message


async def test_async_variant_reads_an_unread_stream() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"error": {"type": "overloaded_error", "message": "busy"}}'

    request = httpx.Request("GET", URL)
    response = httpx.Response(529, content=chunks(), request=request)

    with pytest.raises(ServerError) as caught:
        await araise_for_error(response)

    assert caught.value.problem.code == "overloaded_error"
