"""Configuration mistakes are named: keys that can never match are warned about, a
misspelt key at any depth gets a "did you mean", and every error names file, table, field."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import resilient_client as rc
from resilient_client._config import ConfigWarning, endpoint_key_warnings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "api.toml"
    path.write_text(text)
    return path


def test_a_key_repeating_the_base_url_path_is_warned_about(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'base_url = "https://api.test/v1"\n[endpoints."GET /v1/users/{id}".timeouts]\nread = 2\n',
    )
    with pytest.warns(ConfigWarning) as caught:
        config = rc.load_config(path)
    (message,) = [str(w.message) for w in caught]
    assert message.startswith(f"{path}: endpoint key 'GET /v1/users/{{id}}' repeats")
    assert "did you mean 'GET /users/{id}'?" in message
    assert config.warnings == (message,)


def test_the_warned_key_indeed_never_matches_what_it_names(tmp_path: Path) -> None:
    # The warning is true: the request the key seems to name gets the host's default.
    with pytest.warns(ConfigWarning):
        kwargs = rc.load_config(
            {"base_url": "https://api.test/v1", "endpoints": {"GET /v1/users": {"retry": None}}}
        )
    with rc.ResilientClient(**kwargs) as client:
        endpoint = client.pipeline.endpoint_for(client.build_request("GET", "/users"))
    assert endpoint.key == "* api.test"


@pytest.mark.parametrize(
    ("key", "meant"),
    [("GET /users?active=1", "GET /users"), ("GET /a#frag", "GET /a"), ("* /?q=1", "* /")],
)
def test_a_key_with_a_query_string_is_warned_about(key: str, meant: str) -> None:
    with pytest.warns(ConfigWarning, match="query string") as caught:
        rc.load_config({"endpoints": {key: {}}})
    assert f"did you mean {meant!r}?" in str(caught[0].message)


def test_keys_that_can_match_raise_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc.load_config(
            {
                "base_url": "https://api.test/v1",
                "endpoints": {"GET /users/{id}": {}, "* /v10/**": {}, "GET /v1x": {}},
            }
        )
        rc.load_config({"endpoints": {"GET /v1/users": {}}})  # no base path to repeat


def test_the_warning_points_at_the_caller() -> None:
    with pytest.warns(ConfigWarning) as caught:
        rc.load_config({"endpoints": {"GET /a?b=1": {}}})
    assert caught[0].filename == __file__


def test_endpoint_key_warnings_is_usable_without_a_file() -> None:
    assert endpoint_key_warnings(["GET /v1", "GET /x"], "https://h/v1/") == [
        "endpoint key 'GET /v1' repeats base_url's path '/v1', but keys match relative "
        "to it, so it matches only /v1/v1: did you mean 'GET /'?"
    ]


@pytest.mark.parametrize(
    ("text", "where", "meant"),
    [
        ("[policy.retyr]\nmax_attempts = 2\n", "policy.retyr", "retry"),
        ("[policy.retry]\nmax_attemps = 2\n", "policy.retry.max_attemps", "max_attempts"),
        (
            '[endpoints."GET /a".retry.backoff]\nintial = 1\n',
            "endpoints.'GET /a'.retry.backoff.intial",
            "initial",
        ),
        ("[policy.breaker]\nfailure_treshold = 3\n", "policy.breaker.failure_treshold", None),
        ("base_ulr = 'https://h'\n", "base_ulr", "base_url"),
        ("retry = false\n", "retry", "policy.retry"),
    ],
)
def test_a_misspelt_key_gets_a_did_you_mean(
    tmp_path: Path, text: str, where: str, meant: str | None
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match="unknown") as raised:
        rc.load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {where}: ")
    assert f"did you mean {meant or 'failure_threshold'!r}?" in message


def test_a_far_off_key_lists_the_known_ones_without_guessing() -> None:
    with pytest.raises(ValueError, match=r"unknown field 'zzz' \(known: backoff, ") as raised:
        rc.load_config({"policy": {"retry": {"zzz": 1}}})
    assert "did you mean" not in str(raised.value)
