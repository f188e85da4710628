"""Endpoint keys: validation at construction, most-specific-wins matching, no per-URL growth."""

from __future__ import annotations

import re

import pytest

from resilient_client._call._routing import Router, parse_endpoint_key


def route(keys: list[str], method: str, path: str) -> str | None:
    found = Router((key, key) for key in keys).match(method, path)
    return None if found is None else found[1]


def test_literal_beats_param_beats_glob() -> None:
    keys = ["GET /v1/users/{id}", "GET /v1/users/me", "GET /v1/**"]
    assert route(keys, "GET", "/v1/users/me") == "GET /v1/users/me"
    assert route(keys, "GET", "/v1/users/42") == "GET /v1/users/{id}"
    assert route(keys, "GET", "/v1/users/42/photos") == "GET /v1/**"


def test_exact_method_beats_wildcard_method_on_equal_paths() -> None:
    keys = ["* /v1/reports/**", "GET /v1/reports/**"]
    assert route(keys, "GET", "/v1/reports/q3") == "GET /v1/reports/**"
    assert route(keys, "POST", "/v1/reports/q3") == "* /v1/reports/**"


def test_path_specificity_is_compared_before_method() -> None:
    keys = ["GET /v1/users/{id}", "* /v1/users/me"]
    assert route(keys, "GET", "/v1/users/me") == "* /v1/users/me"


def test_glob_matches_zero_or_more_segments_but_exact_path_wins() -> None:
    keys = ["* /v1/reports/**", "GET /v1/reports"]
    assert route(["* /v1/reports/**"], "GET", "/v1/reports") == "* /v1/reports/**"
    assert route(keys, "GET", "/v1/reports") == "GET /v1/reports"
    assert route(keys, "GET", "/v1/reports/a/b/c") == "* /v1/reports/**"


def test_param_backtracks_to_a_later_match() -> None:
    keys = ["GET /a/{x}/c", "GET /a/b/d"]
    assert route(keys, "GET", "/a/b/c") == "GET /a/{x}/c"
    assert route(keys, "GET", "/a/b/d") == "GET /a/b/d"


def test_no_match_returns_none() -> None:
    assert route(["GET /v1/users/{id}"], "GET", "/v2/users/1") is None
    assert route(["GET /v1/users/{id}"], "DELETE", "/v1/users/1") is None
    assert route([], "GET", "/") is None


def test_keys_are_normalized() -> None:
    assert parse_endpoint_key("get  /v1/users/").key == "GET /v1/users"
    assert parse_endpoint_key("* /").key == "* /"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("GET", "must look like 'METHOD /path'"),
        ("GET /a extra", "must look like 'METHOD /path'"),
        ("FETCH /a", "unknown method 'FETCH'"),
        ("GET a/b", "must start with '/'"),
        ("GET /a/**/b", "'**' may only be the last segment"),
        ("GET /a/{id", "not a parameter segment"),
        ("GET /a/{1x}", "not a parameter segment"),
        ("GET /a/*", "use '{name}' for one segment"),
        ("GET /a//b", "empty path segment"),
    ],
)
def test_malformed_keys_are_rejected_with_the_reason(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_endpoint_key(key)
    assert repr(key) in str(info.value)


def test_keys_that_match_the_same_requests_are_rejected() -> None:
    with pytest.raises(ValueError, match="match the same requests"):
        Router([("GET /u/{id}", 1), ("GET /u/{user_id}", 2)])


def test_many_keys_match_without_scanning_them() -> None:
    keys = [f"GET /v1/resource{i}/{{id}}" for i in range(5000)]
    router = Router((key, key) for key in keys)
    assert router.match("GET", "/v1/resource4321/7") == (
        router.keys["GET /v1/resource4321/{id}"],
        "GET /v1/resource4321/{id}",
    )
