"""Redaction: credentials and sensitive query values never reach telemetry or logs; headers
only from an allow-list, never the sensitive ones."""

from __future__ import annotations

import time

import httpx
import pydantic
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from resilient_client._redact import (
    ALWAYS_SENSITIVE_HEADERS,
    DEFAULT_SENSITIVE_QUERY_PARAMETERS,
    SEMCONV_SENSITIVE_QUERY_PARAMETERS,
)
from resilient_client.telemetry import Redaction, redact_text, redact_url


def test_credentials_in_the_url_become_redacted_placeholders() -> None:
    assert redact_url("https://alice:s3cret@api.test/v1") == "https://REDACTED:REDACTED@api.test/v1"
    assert redact_url("https://token@api.test:8443/") == "https://REDACTED:REDACTED@api.test:8443/"


def test_an_httpx_url_is_redacted_like_its_text() -> None:
    url = httpx.URL("https://u:p@api.test/a?sig=abc&q=1")
    assert redact_url(url) == "https://REDACTED:REDACTED@api.test/a?sig=REDACTED&q=1"


def test_a_url_without_secrets_is_returned_unchanged() -> None:
    url = "https://api.test/v1/users/7?page=2&sort=name#top"
    assert redact_url(url) == url


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://api.test/v1/users/jane.doe@example.com/orders", "https://api.test/v1/users/[email]/orders"),
        ("https://api.test/v1/users/jane%40example.com", "https://api.test/v1/users/[email]"),
        ("https://u:p@api.test/c/a+b@mail.example.org?sig=1", "https://REDACTED:REDACTED@api.test/c/[email]?sig=REDACTED"),
        ("/v1/users/bob@example.org", "/v1/users/[email]"),  # a path alone (the chaos server's log)
        ("https://api.test/v1/handles/@jane", "https://api.test/v1/handles/@jane"),  # no address
        ("https://api.test/v1/a%40b", "https://api.test/v1/a%40b"),
    ],
)  # fmt: skip
def test_an_email_address_in_the_path_is_masked(url: str, redacted: str) -> None:
    # Personal data: a span's url.full, a log line and an incident's evidence would show it.
    assert redact_url(url) == redacted


@pytest.mark.parametrize("name", sorted(SEMCONV_SENSITIVE_QUERY_PARAMETERS))
def test_every_semconv_query_parameter_is_redacted_keeping_its_key(name: str) -> None:
    assert (
        redact_url(f"https://h/p?color=blue&{name}=xyz")
        == f"https://h/p?color=blue&{name}=REDACTED"
    )


@pytest.mark.parametrize("name", ["api_key", "token", "access_token", "signature", "key"])
def test_common_credential_parameters_are_redacted_too(name: str) -> None:
    assert redact_url(f"https://h/p?{name}=xyz") == f"https://h/p?{name}=REDACTED"


def test_parameter_names_match_case_insensitively_and_percent_decoded() -> None:
    assert redact_url("https://h/?API_KEY=1&Sig=2&api%5Fkey=3") == (
        "https://h/?API_KEY=REDACTED&Sig=REDACTED&api%5Fkey=REDACTED"
    )


def test_repeated_and_empty_parameters_keep_their_shape() -> None:
    assert redact_url("https://h/?token=a&token=b&token=&flag") == (
        "https://h/?token=REDACTED&token=REDACTED&token=&flag"
    )


def test_a_token_in_the_fragment_is_redacted() -> None:
    assert redact_url("https://h/cb#access_token=abc&state=x") == (
        "https://h/cb#access_token=REDACTED&state=x"
    )


def test_the_parameter_list_is_a_full_replacement() -> None:
    custom = Redaction(query_parameters=frozenset({"session"}))
    assert custom.url("https://h/?session=1&key=2") == "https://h/?session=REDACTED&key=2"
    extended = Redaction(query_parameters=DEFAULT_SENSITIVE_QUERY_PARAMETERS | {"session"})
    assert extended.url("https://h/?session=1&key=2") == "https://h/?session=REDACTED&key=REDACTED"


def test_urls_inside_free_text_are_redacted() -> None:
    text = "Server error for url 'https://u:p@api.test/x?api_key=abc' (and http://h/?q=1)"
    assert redact_text(text) == (
        "Server error for url 'https://REDACTED:REDACTED@api.test/x?api_key=REDACTED' "
        "(and http://h/?q=1)"
    )
    assert redact_text("no url here") == "no url here"


@given(
    name=st.sampled_from(sorted(DEFAULT_SENSITIVE_QUERY_PARAMETERS)),
    secret=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~", min_size=8, max_size=40),
    before=st.sampled_from(["", "a=1&", "x=y&z=&"]),
    after=st.sampled_from(["", "&b=2", "&c"]),
)
def test_no_sensitive_value_survives_redaction(
    name: str, secret: str, before: str, after: str
) -> None:
    # A "secret" that is part of the placeholder, or of the rest of the URL, would be
    # found there whatever redaction did.
    url_without = f"https://REDACTED:REDACTED@api.test/p?{before}{name}=REDACTED{after}"
    assume(secret not in url_without)
    url = httpx.URL(f"https://user:{secret}@api.test/p?{before}{name}={secret}{after}")
    assert secret not in redact_url(url)


@pytest.mark.parametrize("name", sorted(ALWAYS_SENSITIVE_HEADERS))
def test_the_always_sensitive_headers_stay_sensitive_whatever_is_configured(name: str) -> None:
    lax = Redaction(sensitive_headers=frozenset(), sensitive_header_pattern="")
    assert lax.is_sensitive_header(name)
    assert lax.is_sensitive_header(name.upper())


@pytest.mark.parametrize(
    "name", ["X-Auth-Token", "x-session-id", "X-Goog-Api-Key", "client-secret", "X-Signature"]
)
def test_header_names_that_look_secret_are_sensitive(name: str) -> None:
    assert Redaction().is_sensitive_header(name)


@pytest.mark.parametrize("name", ["X-Request-ID", "Content-Type", "X-Tenant", "Accept"])
def test_ordinary_headers_are_not_sensitive(name: str) -> None:
    assert not Redaction().is_sensitive_header(name)


def test_asking_to_record_a_sensitive_header_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="'Authorization' is sensitive"):
        Redaction().check_recorded_headers(["X-Tenant", "Authorization"])
    assert Redaction().check_recorded_headers(["X-Tenant", "x-tenant", "Accept"]) == (
        "x-tenant",
        "accept",
    )


@pytest.mark.parametrize(
    "name", [" Ocp-Apim-Subscription-Key", "Authorization ", " X-Api-Key\t", "\nCookie"]
)
def test_a_sensitive_header_padded_with_whitespace_is_still_refused(name: str) -> None:
    # "ocp-apim-subscription-key" is caught by the name list only, not the pattern.
    lax = Redaction(sensitive_header_pattern="")
    for redaction in (Redaction(), lax):
        assert redaction.is_sensitive_header(name)
        with pytest.raises(ValueError, match="is sensitive"):
            redaction.check_recorded_headers(["X-Tenant", name])


def test_configured_sensitive_headers_are_compared_stripped_and_lower_cased() -> None:
    redaction = Redaction(
        sensitive_headers=frozenset({" X-Tenant-Passcode "}), sensitive_header_pattern=""
    )

    assert redaction.is_sensitive_header("x-tenant-passcode")
    with pytest.raises(ValueError, match="is sensitive"):
        redaction.check_recorded_headers(["x-tenant-passcode"])
    assert redaction.check_recorded_headers([" X-Tenant "]) == ("x-tenant",)


def test_a_scheme_glued_to_other_characters_is_still_found() -> None:
    assert redact_text("see:1https://h/?token=x and x.y+z://u:p@h/") == (
        "see:1https://h/?token=REDACTED and x.y+z://REDACTED:REDACTED@h/"
    )


def test_text_redaction_takes_linear_time() -> None:
    # A server's 64 KiB error detail ends up here: a long run of scheme characters that
    # is not followed by "://" must not be retried from each of its letters.
    text = "a" * 60_000 + " ://x " + "ab1." * 15_000 + "x://h/?sig=s"

    started = time.perf_counter()
    redacted = redact_text(text)

    assert time.perf_counter() - started < 0.5
    assert redacted.endswith("x://h/?sig=REDACTED")


def test_invalid_configuration_names_the_field() -> None:
    with pytest.raises(pydantic.ValidationError, match="sensitive_header_pattern"):
        Redaction(sensitive_header_pattern="(")
    with pytest.raises(pydantic.ValidationError, match="query_parameters"):
        Redaction(query_parameters=frozenset({""}))
    with pytest.raises(pydantic.ValidationError, match="extra"):
        Redaction(unknown=1)  # type: ignore[call-arg]


def test_redaction_is_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        Redaction().sensitive_header_pattern = ""  # type: ignore[misc]
