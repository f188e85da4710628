"""``parse_problem``: read at most a bounded prefix of the body, decode it, hand it to the
envelope parsers, then add what the headers say and the classifier's verdict.

The decision part, :func:`problem_from_parts`, is pure (status, headers, bytes, now); the
two readers only pull bytes, one for sync and one for async streams.

Reading the body:

- A response that was already read: the first ``max_body_bytes`` of ``response.content``;
  the response is untouched.
- An unread sync stream (``client.stream(...)``, or a transport's response): raw bytes
  are pulled and decoded here (``_bounded.py``) until ``max_body_bytes`` decoded bytes are
  in hand, then the response is **closed**. The
  body cannot be read again afterwards; call ``response.read()`` first to keep it.
  :func:`parse_problem` never reads an async stream (it would have to block): it returns a
  status-and-headers problem; use :func:`aparse_problem` there.
- A failure while reading (the connection dropped mid-body, a decoding error) keeps what
  arrived before it.

The bound is on decoded bytes, and holds while decoding too: a 983-byte body of
``Content-Encoding: gzip, gzip`` that inflates to gigabytes costs 64 KiB here (httpx's
own decoding inflates each network chunk whole).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncGenerator, Generator
from typing import cast

import httpx

from . import _unstructured
from ._bounded import BoundedDecoder
from ._classify import classify
from ._detect import draft_for_json
from ._headers import first_values, response_request_id, server_retry_hint
from ._model import Draft, Problem
from ._retry_after import retry_after_seconds

__all__ = ["DEFAULT_MAX_BODY_BYTES", "aparse_problem", "parse_problem", "problem_from_parts"]

DEFAULT_MAX_BODY_BYTES = 65_536


def parse_problem(
    response: httpx.Response,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    now: float | None = None,
) -> Problem:
    """Normalize an error response into a :class:`Problem`. Never raises.

    ``max_body_bytes`` bounds how much of the body is read (bytes, default 64 KiB); see
    the module docstring for what happens to an unread streaming response. ``now`` is the
    wall-clock time (seconds since the epoch) an HTTP-date ``Retry-After`` is measured from
    when the response has no ``Date`` header; None = the system clock.
    """
    return problem_from_parts(
        response.status_code, response.headers, _read_prefix(response, max_body_bytes), now=now
    )


async def aparse_problem(
    response: httpx.Response,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    now: float | None = None,
) -> Problem:
    """:func:`parse_problem` for async streams (an unread one is read up to the bound,
    then closed). Never raises."""
    return problem_from_parts(
        response.status_code,
        response.headers,
        await _aread_prefix(response, max_body_bytes),
        now=now,
    )


def problem_from_parts(
    status: int, headers: httpx.Headers, body: bytes, *, now: float | None = None
) -> Problem:
    """The pure core of :func:`parse_problem`, from an already bounded ``body``."""
    fields = first_values(headers)
    media_type, charset = _content_type(fields.get("content-type"))
    text = _decode(body, charset)
    value = _load_json(text)
    draft = (
        _unstructured.from_text(status, media_type, text)
        if value is _NOT_JSON
        else draft_for_json(status, media_type, value, fields)
    )
    return _finish(status, headers, fields, draft, now)


def _finish(
    status: int, headers: httpx.Headers, fields: dict[str, str], draft: Draft, now: float | None
) -> Problem:
    retry_after = retry_after_seconds(fields, now=now)
    if retry_after is None:
        retry_after = draft.retry_after
    category, retryable = classify(
        status,
        signals=draft.signals,
        hard_quota=draft.hard_quota,
        body_retry_hint=draft.retry_after is not None,
        server_hint=server_retry_hint(fields),
        retry_after=retry_after is not None,
    )
    return Problem(
        status=status,
        type=draft.type,
        title=draft.title,
        detail=draft.detail,
        instance=draft.instance,
        code=draft.code,
        # From the Headers, not ``fields`` (a repeated field's later copies count): the
        # lookup ResilienceInfo and telemetry make.
        request_id=draft.request_id or response_request_id(headers),
        retry_after=retry_after,
        retryable=retryable,
        category=category,
        field_errors=draft.field_errors,
        format=draft.format,
        extensions=draft.extensions,
    )


def _content_type(value: str | None) -> tuple[str, str | None]:
    """(media type in lower case, charset or None) from a Content-Type value."""
    if not value:
        return "", None
    media_type, _, parameters = value.partition(";")
    charset = None
    for parameter in parameters.split(";"):
        name, _, raw = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = raw.strip().strip('"') or None
    return media_type.strip().lower(), charset


# A surrogate code point, never a whole character: UTF-8 cannot encode it, so a problem
# holding one would not serialise (model_dump_json raises), nor go to a log, a span or a
# store. Replaced with U+FFFD wherever a server's text can bring one in.
_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON escape that may decode to one (json.loads keeps a lone half of a pair as it is).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _decode(body: bytes, charset: str | None) -> str:
    text = None
    if charset is not None:
        # An unknown charset, or a codec that is not a text encoding ("hex", "rot13").
        with contextlib.suppress(LookupError, ValueError):
            # Some codecs ("utf-7", "unicode_escape") decode to lone surrogates.
            text = _SURROGATE.sub("\ufffd", body.decode(charset, errors="replace"))
    if text is None:
        text = body.decode("utf-8", errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


class _NotJson:
    pass


_NOT_JSON = _NotJson()


# How deep a body's JSON may nest before the deeper part is cut off (replaced with None):
# a problem must always serialise, and pydantic's serialiser gives up a few hundred
# levels down (a 300-deep extension made ``model_dump_json()`` raise). No error envelope
# nests more than a handful of levels.
MAX_JSON_DEPTH = 32


def _load_json(text: str) -> object:
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return _NOT_JSON
    try:
        value = json.loads(stripped)
        # Every object or array opens with a bracket, so a text with no more than
        # MAX_JSON_DEPTH of them (brackets inside strings included) cannot nest too deep:
        # counting them runs in C, the walk is a frame per value (6 of the 51 frames a
        # bare problem+json cost).
        if stripped.count("{") + stripped.count("[") > MAX_JSON_DEPTH:
            value = _within_depth(value, MAX_JSON_DEPTH)
        # Walked only when an escape may have made a lone surrogate (a server that cut a
        # string between the halves of a pair), and no deeper than the cut above.
        if _SURROGATE_ESCAPE.search(stripped) is not None:
            value = _well_formed(value)
    # RecursionError: "[[[[..." a few thousand deep; ValueError includes numbers past
    # Python's int digit limit.
    except (ValueError, RecursionError):
        return _NOT_JSON
    return value


def _within_depth(value: object, depth: int) -> object:
    """``value`` with every object or array nested ``depth`` levels down replaced by None."""
    if isinstance(value, dict):
        if depth <= 0:
            return None
        return {key: _within_depth(item, depth - 1) for key, item in value.items()}
    if isinstance(value, list):
        if depth <= 0:
            return None
        return [_within_depth(item, depth - 1) for item in value]
    return value


def _well_formed(value: object) -> object:
    """``value`` with every surrogate in its strings (keys included) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_SURROGATE.sub("\ufffd", key): _well_formed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_well_formed(item) for item in value]
    return value


def _read_prefix(response: httpx.Response, limit: int) -> bytes:
    limit = max(0, limit)
    try:
        return response.content[:limit]
    except Exception:  # ResponseNotRead, of httpx or httpx2: read the stream below
        pass
    # Duck-typed, so httpx2's streams qualify too.
    if limit == 0 or not hasattr(response.stream, "__iter__"):
        return b""
    decoder = BoundedDecoder(response.headers.get("content-encoding"), limit)
    # iter_raw is a generator function, annotated as a plain Iterator. Raw bytes: httpx's
    # decoding would inflate each chunk whole.
    pieces = cast(Generator[bytes, None, None], response.iter_raw())
    try:
        for chunk in pieces:
            if decoder.feed(chunk):
                break
    # Whatever a broken stream raises (httpx errors, a custom stream's own), what arrived
    # before it is the body we have: parse_problem must not fail on the error path.
    except Exception:
        pass
    finally:
        with contextlib.suppress(Exception):
            pieces.close()
            response.close()
    return decoder.body


async def _aread_prefix(response: httpx.Response, limit: int) -> bytes:
    limit = max(0, limit)
    try:
        return response.content[:limit]
    except Exception:  # ResponseNotRead, of httpx or httpx2: read the stream below
        pass
    if limit == 0 or not hasattr(response.stream, "__aiter__"):
        return _read_prefix(response, limit)
    decoder = BoundedDecoder(response.headers.get("content-encoding"), limit)
    pieces = cast(AsyncGenerator[bytes, None], response.aiter_raw())
    try:
        async for chunk in pieces:
            if decoder.feed(chunk):
                break
    except Exception:  # see _read_prefix
        pass
    finally:
        with contextlib.suppress(Exception):
            await pieces.aclose()
            await response.aclose()
    return decoder.body
