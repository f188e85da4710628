"""``retry_after_seconds``: Retry-After, retry-after-ms and the Date header."""

from __future__ import annotations

import calendar

import httpx
import pytest

from resilient_client.problems import retry_after_seconds

# Wed, 21 Oct 2026 07:28:00 GMT
T0 = float(calendar.timegm((2026, 10, 21, 7, 28, 0)))


def seconds(*pairs: tuple[str, str], now: float = T0) -> float | None:
    return retry_after_seconds(httpx.Headers(list(pairs)), now=now)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        (".25", 0.25),
        ("-5", 0.0),
        ("86400000", 86400000.0),
    ],
)
def test_delay_seconds(value: str, expected: float) -> None:
    assert seconds(("Retry-After", value)) == expected


def test_huge_delay_is_kept_not_capped() -> None:
    assert seconds(("Retry-After", "9" * 400)) == float("inf")


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2026 07:30:00 GMT",  # IMF-fixdate
        "Wednesday, 21-Oct-26 07:30:00 GMT",  # obsolete RFC 850
        "Wed Oct 21 07:30:00 2026",  # asctime, no zone: UTC
    ],
)
def test_http_date_in_all_three_forms(value: str) -> None:
    assert seconds(("Retry-After", value)) == 120.0


def test_past_date_is_zero() -> None:
    assert seconds(("Retry-After", "Wed, 21 Oct 2026 07:00:00 GMT")) == 0.0


@pytest.mark.parametrize(
    "value", ["soon", "", "nan", "inf", "1e3", "1_000", "0x10", "12 seconds", "Wed, 99 Foo"]
)
def test_garbage_is_no_hint(value: str) -> None:
    assert seconds(("Retry-After", value)) is None


def test_absent_is_no_hint() -> None:
    assert seconds(("content-type", "application/json")) is None


def test_retry_after_ms_is_checked_first() -> None:
    assert seconds(("Retry-After", "30"), ("retry-after-ms", "1500")) == 1.5


def test_retry_after_ms_fraction_and_negative() -> None:
    assert seconds(("retry-after-ms", "2.5")) == 0.0025
    assert seconds(("retry-after-ms", "-20")) == 0.0


def test_garbled_retry_after_ms_falls_through_to_retry_after() -> None:
    assert seconds(("retry-after-ms", "soon"), ("Retry-After", "4")) == 4.0


def test_date_header_is_used_as_now() -> None:
    # Our clock is an hour ahead of the server's: the server's own Date keeps the delay.
    headers = (
        ("Date", "Wed, 21 Oct 2026 07:28:00 GMT"),
        ("Retry-After", "Wed, 21 Oct 2026 07:28:45 GMT"),
    )

    assert seconds(*headers, now=T0 + 3600) == 45.0


def test_unparseable_date_header_falls_back_to_now() -> None:
    headers = (("Date", "yesterday"), ("Retry-After", "Wed, 21 Oct 2026 07:28:10 GMT"))

    assert seconds(*headers, now=T0) == 10.0


def test_first_of_several_retry_after_fields_counts() -> None:
    assert seconds(("Retry-After", "3"), ("Retry-After", "9")) == 3.0


def test_first_of_several_date_fields_counts() -> None:
    headers = (
        ("Date", "Wed, 21 Oct 2026 07:28:00 GMT"),
        ("Date", "Wed, 21 Oct 2026 07:28:30 GMT"),
        ("Retry-After", "Wed, 21 Oct 2026 07:28:45 GMT"),
    )

    assert seconds(*headers, now=T0 + 3600) == 45.0


def test_a_mapping_of_first_values_reads_like_the_headers() -> None:
    fields = {
        "date": "Wed, 21 Oct 2026 07:28:00 GMT",
        "retry-after": "Wed, 21 Oct 2026 07:28:45 GMT",
    }

    assert retry_after_seconds(fields, now=T0 + 3600) == 45.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({}) is None
