"""Issue 17's hardening, the pure parts: the bounded decoder, the host table's cap, the
backoff floor under a server hint, redaction and masking, and the drivers' context
managers."""

from __future__ import annotations

import gzip
import logging
import zlib

import brotli  # type: ignore[import-untyped]
import httpx
import pytest

import resilient_client as rc
from resilient_client._breaker import BreakerRegistry
from resilient_client._call._endpoints import EndpointTable
from resilient_client._logging import CallRecordFilter, RedactingFilter
from resilient_client._redact import redact_url
from resilient_client._retry import next_wait
from resilient_client.problems._bounded import BoundedDecoder, decodes_within
from resilient_client.problems._raise import request_secrets, without_secrets
from resilient_client.testing import FakeClock

# --- the bounded decoder --------------------------------------------------------------


def _gzip_twice(data: bytes) -> bytes:
    return gzip.compress(gzip.compress(data))


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip, gzip", _gzip_twice),
        ("deflate", zlib.compress),
        ("br", brotli.compress),
        ("identity", lambda data: data),
        ("", lambda data: data),
    ],
)
def test_a_body_decodes_to_its_first_bytes_only(encoding: str, encode: object) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    decoder = BoundedDecoder(encoding, 1000)

    decoder.feed(encode(body))  # type: ignore[operator]

    assert decoder.done
    assert decoder.body == body[:1000]


def test_raw_deflate_is_decoded_as_httpx_does() -> None:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = compressor.compress(b"problem" * 10) + compressor.flush()

    assert decodes_within(raw, "deflate", 70)
    assert not decodes_within(raw, "deflate", 69)


def test_a_corrupt_body_keeps_what_decoded_and_zstd_is_not_decoded() -> None:
    decoder = BoundedDecoder("gzip", 100)
    decoder.feed(b"not gzip at all")

    assert (decoder.body, BoundedDecoder("zstd", 100).supported) == (b"", False)
    assert not decodes_within(b"anything", "zstd", 100)


# --- the host table --------------------------------------------------------------------


def _table(max_hosts: int) -> EndpointTable:
    clock = FakeClock()
    return EndpointTable(
        rc.Policy(breaker=rc.Breaker(failure_threshold=1, minimum_calls=1)),
        None,
        base_path="",
        clock=clock,
        breakers=BreakerRegistry(clock=clock),
    )


def _on(host: str) -> httpx.Request:
    return httpx.Request("GET", f"http://{host}/")


def test_the_least_recently_used_host_is_evicted_past_the_cap() -> None:
    table = EndpointTable(
        rc.Policy(), None, base_path="", clock=FakeClock(), breakers=BreakerRegistry(), max_hosts=2
    )
    first = table.match(_on("a"))
    table.match(_on("b"))
    assert table.match(_on("a")) is first  # used again: now the most recent
    table.match(_on("c"))

    assert [endpoint.key for endpoint in table.all()] == ["* a", "* c"]


def test_a_host_whose_breaker_is_open_is_never_evicted() -> None:
    clock = FakeClock()
    breakers = BreakerRegistry(clock=clock)
    policy = rc.Policy(breaker=rc.Breaker(failure_threshold=1, minimum_calls=1))
    table = EndpointTable(policy, None, base_path="", clock=clock, breakers=breakers, max_hosts=1)
    tripped = table.match(_on("down"))
    for _ in range(5):
        permit = tripped.breaker.admit()  # type: ignore[union-attr]
        if isinstance(permit, rc.CircuitOpenError) or not hasattr(permit, "generation"):
            break
        tripped.breaker.record(permit, "failure", 0.0)  # type: ignore[union-attr]
    assert not tripped.breaker.is_closed()  # type: ignore[union-attr]

    table.match(_on("b"))
    table.match(_on("c"))

    keys = [endpoint.key for endpoint in table.all()]
    assert keys == ["* down", "* c"]
    assert table.match(_on("down")) is tripped


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_hosts"):
        EndpointTable(
            rc.Policy(),
            None,
            base_path="",
            clock=FakeClock(),
            breakers=BreakerRegistry(),
            max_hosts=0,
        )


# --- a server hint never shortens the backoff ----------------------------------------


@pytest.mark.parametrize("value", ["-5", "0", "Wed, 21 Oct 2015 07:28:00 GMT", "0.001"])
def test_a_short_or_past_hint_waits_the_backoff(value: str) -> None:
    retry = rc.Retry()
    headers = httpx.Headers({"Retry-After": value})

    wait = next_wait(retry, headers, None, 3, 0.0, 0.75, 2_000_000_000.0)

    assert wait == (pytest.approx(0.75 * 0.25 * 4), False)


def test_a_longer_hint_still_wins() -> None:
    wait = next_wait(rc.Retry(), httpx.Headers({"Retry-After": "7"}), None, 1, 0.0, 0.5, 0.0)

    assert wait == (7.0, False)


# --- secrets and logs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "api-key",
        "apikey",
        "api_key",
        "access_token",
        "x-api-key",
        "sig",
        "signature",
        "Signature",
        "X-Amz-Signature",
        "token",
        "client_secret",
    ],
)
def test_url_full_hides_every_common_spelling(name: str) -> None:
    url = f"https://u:pw@host/p?{name}=s3cr3t&q=1"

    assert redact_url(httpx.URL(url)) == f"https://REDACTED:REDACTED@host/p?{name}=REDACTED&q=1"


def test_the_redacting_filter_redacts_url_arguments_and_text() -> None:
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        'HTTP Request: %s %s "%s"',
        ("GET", httpx.URL("https://u:pw@h/?apikey=s3cr3t&q=1"), "HTTP/1.1 200 OK"),
        None,
    )

    assert RedactingFilter().filter(record)
    assert record.getMessage() == (
        'HTTP Request: GET https://REDACTED:REDACTED@h/?apikey=REDACTED&q=1 "HTTP/1.1 200 OK"'
    )


def test_the_requests_own_secrets_are_masked_even_where_the_message_is_cut() -> None:
    request = httpx.Request(
        "GET",
        "https://u:hunter22@h/?access_token=tok-123456&q=1",
        headers={"Authorization": "Bearer abcdef123456", "X-Api-Key": "key-98765"},
    )
    secrets = request_secrets(request)

    message = without_secrets("bad key-98765, tok-123456, abcdef123456, hunter22, x", secrets)
    cut = without_secrets("401 Unauthorized: the key was key-987…", secrets)

    assert message == "bad [token], [token], [token], [token], x"
    assert cut == "401 Unauthorized: the key was [token]…"


def test_log_fields_from_servers_lose_their_line_breaks_and_bidi_controls() -> None:
    record = logging.LogRecord("resilient_client", logging.WARNING, __file__, 1, "m", (), None)
    record.code = "E1\r\nFAKE LINE"
    record.correlation_id = "id\u202egnp.exe"

    CallRecordFilter().filter(record)

    assert "\r" not in record.code and "\n" not in record.code
    assert "\u202e" not in record.correlation_id


# --- the drivers enter and exit their inner transport, as httpx does --------------------


class _Recording(httpx.BaseTransport):
    def __init__(self) -> None:
        self.events: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    def close(self) -> None:
        self.events.append("transport.close")

    def __enter__(self) -> _Recording:
        super().__enter__()
        self.events.append("transport.__enter__")
        return self

    def __exit__(self, *args: object) -> None:
        super().__exit__(*args)  # type: ignore[arg-type]
        self.events.append("transport.__exit__")


class _AsyncRecording(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.events: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    async def aclose(self) -> None:
        self.events.append("transport.aclose")

    async def __aenter__(self) -> _AsyncRecording:
        await super().__aenter__()
        self.events.append("transport.__aenter__")
        return self

    async def __aexit__(self, *args: object) -> None:
        await super().__aexit__(*args)  # type: ignore[arg-type]
        self.events.append("transport.__aexit__")


def test_a_client_enters_and_exits_the_inner_transport_as_httpx_does() -> None:
    inner = _Recording()
    with httpx.Client(transport=rc.ResilientTransport(inner)):
        pass

    assert inner.events == ["transport.__enter__", "transport.close", "transport.__exit__"]


async def test_an_async_client_enters_and_exits_the_inner_transport_as_httpx_does() -> None:
    inner = _AsyncRecording()
    async with httpx.AsyncClient(transport=rc.AsyncResilientTransport(inner)):
        pass

    assert inner.events == ["transport.__aenter__", "transport.aclose", "transport.__aexit__"]
