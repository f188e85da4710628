"""The request copy the pipeline adds its headers to (``_headers.request_copy``)."""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
import pytest

from resilient_client._headers import request_copy

LIBRARIES = [pytest.param(httpx, id="httpx"), pytest.param(httpx2, id="httpx2")]


@pytest.mark.parametrize("lib", LIBRARIES)
def test_the_copy_has_the_requests_fields_and_headers_of_its_own(lib: Any) -> None:
    original = lib.Request(
        "POST", "https://api.test/v1/pay?x=1", headers={"A": "1"}, content=b"body"
    )
    copy = request_copy(original)

    assert type(copy) is type(original)
    assert (copy.method, copy.url, copy.content) == ("POST", original.url, b"body")
    assert copy.extensions is original.extensions
    assert copy.stream is original.stream
    assert copy.headers.raw == original.headers.raw

    copy.headers["Idempotency-Key"] = "k1"
    assert "idempotency-key" not in original.headers  # the caller's request as it was
    assert copy.headers["a"] == "1"


@pytest.mark.parametrize("lib", LIBRARIES)
def test_a_streamed_body_stays_unread_in_the_copy(lib: Any) -> None:
    def chunks() -> Any:
        yield b"part"

    original = lib.Request("PUT", "https://api.test/v1/file", content=chunks())
    copy = request_copy(original)

    with pytest.raises(lib.RequestNotRead):
        copy.content  # noqa: B018 - a one-shot stream: not replayable, in the copy too
    assert copy.stream is original.stream


def test_a_subclass_keeps_its_own_fields() -> None:
    class Tagged(httpx.Request):
        def __init__(self, *args: Any, tag: str, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.tag = tag

    original = Tagged("GET", "https://api.test/v1/users", tag="blue")
    copy = request_copy(original)

    assert type(copy) is Tagged
    assert copy.tag == "blue"
    assert copy.headers is not original.headers
    assert copy.headers.raw == original.headers.raw
