"""Reading the body: bounded, never raising, whatever arrives."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilient_client.problems import (
    ErrorCategory,
    Problem,
    aparse_problem,
    parse_problem,
    retry_after_seconds,
)

FIFTY_MB = 50 * 1024 * 1024
CHUNK = 16 * 1024


class Counter:
    """A body of ``total`` bytes, produced on demand, counting what was pulled."""

    def __init__(self, total: int, head: bytes = b"") -> None:
        self.total = total
        self.head = head
        self.pulled = 0

    def chunks(self) -> Iterator[bytes]:
        filler = b" " * CHUNK
        if self.head:
            self.pulled += len(self.head)
            yield self.head
        while self.pulled < self.total:
            piece = filler[: min(CHUNK, self.total - self.pulled)]
            self.pulled += len(piece)
            yield piece

    async def achunks(self) -> AsyncIterator[bytes]:
        for piece in self.chunks():
            yield piece


HEAD = json.dumps({"error": {"type": "overloaded_error", "message": "busy"}}).encode()


def test_a_50_mb_streaming_body_costs_only_the_bound() -> None:
    body = Counter(FIFTY_MB, HEAD)
    response = httpx.Response(
        529, headers={"content-type": "application/json"}, content=body.chunks()
    )

    problem = parse_problem(response, max_body_bytes=65_536)

    assert body.pulled <= 65_536 + CHUNK
    assert response.is_closed
    # The prefix ends inside 64 KiB of padding: the JSON object itself is whole.
    assert problem.code == "overloaded_error"


async def test_a_50_mb_async_streaming_body_costs_only_the_bound() -> None:
    body = Counter(FIFTY_MB)
    response = httpx.Response(503, content=body.achunks())

    problem = await aparse_problem(response, max_body_bytes=65_536)

    assert body.pulled <= 65_536 + CHUNK
    assert response.is_closed
    assert problem.status == 503


def test_sync_parse_leaves_an_unread_async_stream_alone() -> None:
    body = Counter(1024)
    response = httpx.Response(503, content=body.achunks(), headers={"retry-after": "2"})

    problem = parse_problem(response)

    assert body.pulled == 0
    assert not response.is_closed
    assert (problem.status, problem.retry_after, problem.format) == (503, 2.0, "unstructured")


def test_a_read_response_stays_readable() -> None:
    response = httpx.Response(500, content=HEAD + b" " * 100)

    parse_problem(response, max_body_bytes=10)

    assert response.content == HEAD + b" " * 100


def test_a_small_streaming_body_is_read_whole_then_the_response_is_closed() -> None:
    response = httpx.Response(529, content=iter([HEAD[:10], HEAD[10:]]))

    problem = parse_problem(response)

    assert problem.code == "overloaded_error"
    assert response.is_closed
    with pytest.raises(httpx.StreamConsumed):
        response.read()


def test_a_stream_broken_mid_body_keeps_what_arrived() -> None:
    def broken() -> Iterator[bytes]:
        yield HEAD
        raise httpx.ReadError("connection reset")

    problem = parse_problem(httpx.Response(529, content=broken()))

    assert problem.code == "overloaded_error"


def test_an_already_consumed_stream_gives_a_status_only_problem() -> None:
    response = httpx.Response(502, content=iter([b"abc"]))
    for _ in response.iter_raw():
        pass

    problem = parse_problem(response)

    assert (problem.status, problem.format, problem.detail) == (502, "unstructured", None)


def test_the_body_is_cut_at_the_bound() -> None:
    text = b"x" * 5000
    response = httpx.Response(500, headers={"content-type": "text/plain"}, content=text)

    problem = parse_problem(response, max_body_bytes=100)

    # The detail of a text body is capped further down; the bound cut it first.
    assert problem.detail == "x" * 100


@pytest.mark.parametrize("bound", [0, -5])
def test_a_zero_or_negative_bound_reads_nothing(bound: int) -> None:
    body = Counter(1024)
    streaming = httpx.Response(500, content=body.chunks())
    read = httpx.Response(500, headers={"content-type": "text/plain"}, content=b"abc")

    assert parse_problem(streaming, max_body_bytes=bound).status == 500
    assert parse_problem(read, max_body_bytes=bound).detail is None
    assert body.pulled == 0


@pytest.mark.parametrize(
    ("raw", "content_type", "detail"),
    [
        ("Accès refusé".encode("latin-1"), "text/plain; charset=ISO-8859-1", "Accès refusé"),
        ("Accès".encode(), 'text/plain; charset="utf-8"', "Accès"),
        (b"caf\xe9", "text/plain", "caf\ufffd"),
        (b"abc", "text/plain; charset=no-such-charset", "abc"),
        (b"abc", "text/plain; charset=hex", "abc"),
        (b"abc", "text/plain; charset=undefined", "abc"),
    ],
)
def test_charset_is_respected_and_bad_bytes_are_replaced(
    raw: bytes, content_type: str, detail: str
) -> None:
    response = httpx.Response(400, headers={"content-type": content_type}, content=raw)

    assert parse_problem(response).detail == detail


def test_a_utf8_bom_is_skipped() -> None:
    raw = "\ufeff".encode() + json.dumps({"title": "Gone", "status": 410}).encode()
    response = httpx.Response(
        410, headers={"content-type": "application/problem+json"}, content=raw
    )

    assert parse_problem(response).title == "Gone"


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b'{"error":' * 50_000,
        b'{"title": "x", "status": 1' + b"0" * 5000 + b"}",
        b"\xff\xfe\x00garbage",
        b"{" + b'"a":1,' * 1000,
    ],
)
def test_hostile_bodies_give_an_unstructured_problem(raw: bytes) -> None:
    response = httpx.Response(
        500, headers={"content-type": "application/problem+json"}, content=raw
    )

    problem = parse_problem(response, max_body_bytes=len(raw))

    assert (problem.status, problem.format) == (500, "unstructured")


def _nested(depth: int) -> tuple[Any, httpx.Response]:
    """A value ``depth`` lists deep, and a 500 problem carrying it as ``deep``."""
    deep: Any = "bottom"
    for _ in range(depth):
        deep = [deep]
    raw = json.dumps({"title": "Deep", "deep": deep}).encode()
    headers = {"content-type": "application/problem+json"}
    return deep, httpx.Response(500, headers=headers, content=raw)


def test_deep_but_legal_nesting_is_kept() -> None:
    deep, response = _nested(20)

    problem = parse_problem(response)

    assert problem.extensions["deep"] == deep
    assert problem.summary() == "500 Internal Server Error: Deep"


def test_nesting_past_32_levels_is_cut_so_the_problem_always_serialises() -> None:
    _, response = _nested(400)

    problem = parse_problem(response)

    kept = problem.extensions["deep"]
    depth = 0
    while isinstance(kept, list):
        kept, depth = kept[0], depth + 1
    assert kept is None and depth < 32  # cut, not kept 400 deep
    assert problem.model_dump_json()


def test_a_lone_surrogate_is_replaced_so_the_problem_always_serialises() -> None:
    # A server that cuts a message between the halves of a surrogate pair (JavaScript's
    # substring) escapes the half it kept: legal JSON, but not text UTF-8 can encode.
    raw = (
        b'{"title": "Declined \\ud83d", "detail": "\\ud83d\\ude00 paid", "code": "x\\udc00",'
        b' "cut": {"\\ud800": ["\\udfff"]}}'
    )
    response = httpx.Response(
        402, headers={"content-type": "application/problem+json"}, content=raw
    )

    problem = parse_problem(response)

    assert (problem.title, problem.code) == ("Declined \ufffd", "x\ufffd")
    assert problem.detail == "\U0001f600 paid"  # a whole pair is kept
    assert problem.extensions["cut"] == {"\ufffd": ["\ufffd"]}
    assert Problem.model_validate_json(problem.model_dump_json()) == problem


def test_a_charset_decoding_to_lone_surrogates_still_serialises() -> None:
    response = httpx.Response(
        503, headers={"content-type": "text/plain; charset=utf-7"}, content=b"down +2AA-"
    )

    problem = parse_problem(response)

    assert problem.detail == "down \ufffd"
    assert problem.model_dump_json()


# -- properties --------------------------------------------------------------------------

MEDIA_TYPES = st.sampled_from(
    [
        "application/problem+json",
        "application/json",
        "application/json; charset=utf-16",
        "text/html",
        "text/plain; charset=latin-1",
        "application/vnd.api+json",
        "application/graphql-response+json",
        None,
    ]
)
KNOWN_KEYS = st.sampled_from(
    [
        *("error", "errors", "type", "title", "status", "detail", "instance", "code"),
        *("message", "details", "@type", "innererror", "innerError", "target", "source"),
        *("pointer", "parameter", "path", "locations", "extensions", "param", "request_id"),
        *("requestId", "retryDelay", "violations", "fieldViolations", "field", "description"),
        *("reason", "links", "url", "metadata", "quotaId", "decline_code", "doc_url", "loc"),
        *("msg", "invalid-params", "name", "id", "about", "href", "request-id"),
    ]
)
GOOGLE_TYPES = st.sampled_from(
    [
        f"type.googleapis.com/google.rpc.{name}"
        for name in (
            *("ErrorInfo", "RetryInfo", "QuotaFailure", "BadRequest", "Help", "DebugInfo"),
            *("LocalizedMessage", "RequestInfo", "PreconditionFailure", "ResourceInfo", "Other"),
        )
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | GOOGLE_TYPES
    | st.sampled_from(["error", "1.5s", "-3s", "UNAVAILABLE", "PerDay", "card_error"])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KNOWN_KEYS | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=40,
)
OBJECTS = st.dictionaries(KNOWN_KEYS | st.text(max_size=6), JSON_VALUES, max_size=6)


def with_member(name: str, value: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Arbitrary objects that do carry ``name``, so every envelope parser gets explored."""
    return st.builds(lambda rest, member: {**rest, name: member}, OBJECTS, value)


GOOGLE_DETAILS = st.lists(with_member("@type", GOOGLE_TYPES), max_size=4)
ERROR_OBJECTS = (
    OBJECTS | with_member("details", GOOGLE_DETAILS) | with_member("innererror", OBJECTS)
)
BODIES = (
    JSON_VALUES
    | OBJECTS
    | with_member("error", ERROR_OBJECTS)
    | with_member("errors", st.lists(OBJECTS | with_member("source", OBJECTS), max_size=3))
    | st.builds(lambda body: {**body, "type": "error"}, with_member("error", OBJECTS))
)
STATUSES = st.integers(min_value=100, max_value=599)
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "retry-after",
            "retry-after-ms",
            "date",
            "x-should-retry",
            "stripe-should-retry",
            "x-request-id",
            "request-id",
            "x-ms-error-code",
        ]
    ),
    HEADER_TEXT | st.sampled_from(["true", "false", "3", "Wed, 21 Oct 2026 07:28:00 GMT"]),
    max_size=4,
)


def check(problem: Problem, status: int) -> None:
    assert problem.status == status
    assert isinstance(problem.category, ErrorCategory)
    assert problem.retry_after is None or problem.retry_after >= 0
    # Every field has the declared type: the model validates what was built unvalidated.
    Problem.model_validate(problem.model_dump())
    summary = problem.summary()
    assert "\n" not in summary
    assert len(summary) < 600


@settings(max_examples=300, deadline=None)
@given(status=STATUSES, media_type=MEDIA_TYPES, value=BODIES, headers=HEADERS)
def test_any_json_value_gives_a_valid_problem(
    status: int, media_type: str | None, value: Any, headers: dict[str, str]
) -> None:
    if media_type is not None:
        headers["content-type"] = media_type
    raw = json.dumps(value).encode()

    check(parse_problem(httpx.Response(status, headers=headers, content=raw), now=0.0), status)


@settings(max_examples=200, deadline=None)
@given(status=STATUSES, media_type=MEDIA_TYPES, raw=st.binary(max_size=512))
def test_any_bytes_give_a_valid_problem(status: int, media_type: str | None, raw: bytes) -> None:
    headers = {} if media_type is None else {"content-type": media_type}

    check(parse_problem(httpx.Response(status, headers=headers, content=raw)), status)


@settings(max_examples=200, deadline=None)
@given(headers=HEADERS, now=st.floats(min_value=0, max_value=4e9))
def test_retry_after_never_raises_and_is_never_negative(
    headers: dict[str, str], now: float
) -> None:
    delay = retry_after_seconds(httpx.Headers(headers), now=now)

    assert delay is None or delay >= 0
