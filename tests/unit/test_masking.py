"""A server's error text is masked before it reaches a message, a log record or a span:
e-mail addresses, Luhn-valid card numbers and tokens, control and bidi characters."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilient_client import ApiError, raise_for_error
from resilient_client._redact import DEFAULT_SENSITIVE_QUERY_PARAMETERS, neutralize
from resilient_client.problems import parse_problem
from resilient_client.telemetry import mask_text, redact_url

VISA = "4111111111111111"  # Luhn-valid test numbers
AMEX = "378282246310005"
NOT_LUHN = "4111111111111112"


def raised_message(body: dict[str, Any]) -> str:
    request = httpx.Request("POST", "https://pay.test/v1/charges")
    response = httpx.Response(402, json=body, request=request)
    with pytest.raises(ApiError) as caught:
        raise_for_error(response)
    return str(caught.value)


def test_the_issue_case_an_email_and_a_card_in_a_providers_detail() -> None:
    detail = f"Card {VISA} of jane.doe@example.com was declined"
    message = raised_message({"detail": detail, "code": "card_declined"})
    assert message == "402 Payment Required [card_declined]: Card [card] of [email] was declined"


def test_the_problem_keeps_the_servers_text_for_code_that_needs_it() -> None:
    request = httpx.Request("GET", "https://h.test/")
    body = {"detail": "mail jane@example.com"}
    response = httpx.Response(400, json=body, request=request)
    assert parse_problem(response).detail == "mail jane@example.com"


@pytest.mark.parametrize(
    "number",
    [VISA, AMEX, "4111 1111 1111 1111", "4111-1111-1111-1111", "3782 822463 10005"],
)
def test_card_numbers_are_masked_in_their_usual_spellings(number: str) -> None:
    assert mask_text(f"card {number}, expired") == "card [card], expired"


@pytest.mark.parametrize(
    "text",
    [
        f"order {NOT_LUHN} not found",  # fails the Luhn check
        "order 123456789012 not found",  # 12 digits
        "invoice 12345678901234567890123 is paid",  # 23 digits: no card is that long
        f"id ord_{VISA}",  # part of a word
        "at 2024-01-02 10:11:12 UTC",
    ],
)
def test_numbers_that_are_not_cards_stay(text: str) -> None:
    assert mask_text(text) == text


def test_a_card_beside_another_number_is_still_found() -> None:
    assert mask_text(f"order 1234567890123 {VISA}") == "order 1234567890123 [card]"


@pytest.mark.parametrize(
    "address", ["jane@example.com", "j.o+tag@mail.example.co.uk", "a_b-c%d@x-y.io"]
)
def test_email_addresses_are_masked(address: str) -> None:
    assert mask_text(f"user <{address}> unknown") == "user <[email]> unknown"


def test_an_email_at_the_end_of_a_long_path_is_masked_and_the_path_kept() -> None:
    text = "see /" + "segment/" * 20 + "jane@example.com"
    assert mask_text(text) == "see /" + "segment/" * 20 + "[email]"


@pytest.mark.parametrize(
    "text", ["user@localhost failed", "@mention here", "a @ b.com", "v1.2@beta"]
)
def test_at_signs_that_are_no_email_address_stay(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl", "Authorization: Bearer [token]"),
        ("basic dXNlcjpwYXNzd29yZA== rejected", "basic [token] rejected"),
        ("key sk-proj-Abcdef1234567890xyz is revoked", "key [token] is revoked"),
        ("sk_live_51H8abcdefghijklmnop", "[token]"),
        ("token ghp_0123456789abcdefghijABCDEFGHIJ", "token [token]"),
        ("AWS AKIAIOSFODNN7EXAMPLE denied", "AWS [token] denied"),
        ("bad api_key=abc123&page=2", "bad api_key=[token]&page=2"),
        ('{"password": "hunter2", "user": "x"}', '{"password": "[token]", "user": "x"}'),
        ("x-api-key: 0a1b2c3d", "x-api-key: [token]"),
        ("client_secret=s3cr3t; retry", "client_secret=[token]; retry"),
    ],
)
def test_bearer_tokens_and_api_keys_are_masked(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Bearer token required",
        "Invalid token: expired or revoked",
        "error code invalid_api_key",
        "rate_limit_exceeded",
        "UNAVAILABLE",
        "Idempotency-Key: 7f3a was reused",
    ],
)
def test_prose_and_error_codes_stay(text: str) -> None:
    assert mask_text(text) == text


def test_problem_codes_survive_the_message() -> None:
    body = {"detail": "no", "code": "invalid_api_key"}
    assert raised_message(body) == "402 Payment Required [invalid_api_key]: no"


def test_control_and_bidi_characters_cannot_forge_a_line_or_reorder_it() -> None:
    text = "denied\r\n2024-01-01 INFO payment ok\u202e\u2066gnp.exe\x1b[31m"
    masked = mask_text(text)
    assert masked == "denied  2024-01-01 INFO payment okgnp.exe[31m"
    message = raised_message({"detail": text})
    assert "\n" not in message and "\u202e" not in message and "\x1b" not in message


def test_urls_are_redacted_as_before() -> None:
    assert mask_text("see https://u:p@h.test/?sig=abc&q=1") == (
        "see https://REDACTED:REDACTED@h.test/?sig=REDACTED&q=1"
    )


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 65_536,
        "a@" * 32_768,
        "a" * 63 + "@" + "b." * 32_000,
        ("1 " * 32_768),
        ("1-" * 32_768),
        ("1234 " * 13_107),
        ("123-" * 16_384),
        ("4111 1111 1111 1111 " * 3_276),
        "4" * 65_536,
        "Bearer " * 9_362,
        'api_key="' * 7_281,
        '"token": "' + "x" * 65_000,
        "sk-" * 21_845,
        "x" * 63 + "@" + "a" * 65_000,
        "\u202e\r\n" * 21_845,
    ],
    ids=lambda text: repr(text[:12]),
)
def test_masking_takes_linear_time_on_hostile_input(hostile: str) -> None:
    started = time.perf_counter()
    mask_text(hostile)
    # Linear work on 64 KiB takes some milliseconds; a quadratic pattern takes minutes.
    assert time.perf_counter() - started < 1.0


@given(
    prefix=st.text(alphabet="abc 123.,;:-@", max_size=40),
    suffix=st.text(alphabet="abc 123.,;:-@", max_size=40),
)
def test_a_card_number_never_survives_whatever_surrounds_it(prefix: str, suffix: str) -> None:
    masked = mask_text(f"{prefix} {VISA} {suffix}")
    assert VISA not in masked


def test_a_long_detail_cut_in_the_middle_of_a_card_shows_no_part_of_it() -> None:
    spaced = "4111 1111 1111 1111"
    for padding in range(790, 812):
        detail = "w" * 150 + " " + "x" * (padding - 151) + " " + spaced + " end"
        message = raised_message({"detail": detail})
        assert "4111" not in message and "1111" not in message


@pytest.mark.parametrize(
    "name",
    [
        *("api-key", "apikey", "api_key", "access_token", "x-api-key", "sig", "signature"),
        *("token", "key", "password", "secret", "client_secret", "code"),
    ],
)
def test_common_credential_query_parameters_are_redacted_by_default(name: str) -> None:
    assert {name.lower() for name in DEFAULT_SENSITIVE_QUERY_PARAMETERS} >= {name}
    assert redact_url(f"https://h/cb?{name}=xyz&q=1") == f"https://h/cb?{name}=REDACTED&q=1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("req_123", "req_123"),
        ("abc\r\nINFO forged", "abc\\r\\nINFO forged"),
        ("id\u202eevil", "id\\u202eevil"),
        ("bell\x07", "bell\\x07"),
    ],
)
def test_identifiers_keep_their_text_with_unsafe_characters_escaped(
    value: str, expected: str
) -> None:
    assert neutralize(value) == expected


def test_a_huge_identifier_is_cut() -> None:
    assert neutralize("x" * 10_000) == "x" * 255 + "…"
