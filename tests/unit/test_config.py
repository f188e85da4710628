"""load_config: TOML, YAML and mappings into client keywords; errors name file, key, field."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import resilient_client as rc

TOML = """
base_url = "https://api.example.com"

[policy.retry]
max_attempts = 4
backoff = { initial = 0.2, max = 5.0 }

[endpoints."GET /v1/users/{id}".timeouts]
read = 2.0
"""


def test_toml_file_becomes_client_keywords(tmp_path: Path) -> None:
    path = tmp_path / "api.toml"
    path.write_text(TOML)
    kwargs = rc.load_config(path)
    assert kwargs["base_url"] == "https://api.example.com"
    policy = kwargs["policy"]
    assert policy.retry.max_attempts == 4
    assert policy.retry.backoff.initial == 0.2
    assert policy.retry.backoff.multiplier == 2.0  # not given: default kept
    client = rc.ResilientClient(**kwargs)
    endpoint = client.pipeline.endpoint_for(client.build_request("GET", "/v1/users/3"))
    assert endpoint.key == "GET /v1/users/{id}"
    assert endpoint.policy.timeouts.read == 2.0
    assert endpoint.policy.retry is not None and endpoint.policy.retry.max_attempts == 4  # merged
    client.close()


def test_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(
        "policy:\n  retry:\n    max_attempts: 2\nendpoints:\n  '* /v1/**':\n    retry: null\n"
    )
    kwargs = rc.load_config(path)
    assert kwargs["policy"].retry.max_attempts == 2
    assert kwargs["endpoints"]["* /v1/**"].retry is None


def test_mapping() -> None:
    kwargs = rc.load_config({"policy": {"timeouts": {"total": 3}}, "raise_for_error": True})
    assert kwargs["policy"].timeouts.total == 3.0
    assert kwargs["raise_for_error"] is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[policy.retry]\nmax_attempts = 0\n", "policy.retry.max_attempts"),
        ("[policy.retry.backoff]\njitter = 'fancy'\n", "policy.retry.backoff.jitter"),
        ('[endpoints."GET /a".timeouts]\nread = -1\n', "endpoints.'GET /a'.timeouts.read"),
        ('[endpoints."FETCH /a"]\n', "unknown method 'FETCH'"),
        ("retries = 3\n", "unknown key 'retries'"),
        ("[policy]\nretries = 3\n", "policy.retries"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_errors_name_the_file_key_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as raised:
        rc.load_config(path)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "api.ini"
    path.write_text("")
    with pytest.raises(ValueError, match="unknown configuration format"):
        rc.load_config(path)


def test_the_argument_goes_by_the_name_api_md_gives_it(tmp_path: Path) -> None:
    path = tmp_path / "api.toml"
    path.write_text(TOML)
    by_path = rc.load_config(path_or_mapping=path)
    by_mapping = rc.load_config(path_or_mapping={"policy": {"retry": {"max_attempts": 4}}})
    assert by_path["policy"].retry.max_attempts == by_mapping["policy"].retry.max_attempts == 4


def test_the_older_argument_name_still_works_and_one_source_is_required() -> None:
    assert rc.load_config(source={"policy": {"retry": None}})["policy"].retry is None
    with pytest.raises(TypeError, match="one configuration"):
        rc.load_config()
    with pytest.raises(TypeError, match="one configuration"):
        rc.load_config({}, source={})


@pytest.mark.parametrize(
    "keys",
    [
        ("GET /v1/users/{id}", "GET /v1/users/{user_id}"),
        ("GET /v1/users", "GET /v1/users/"),
        ("get /v1/users", "GET /v1/users"),
    ],
)
def test_keys_that_match_the_same_requests_are_an_error_naming_the_file(
    tmp_path: Path, keys: tuple[str, str]
) -> None:
    # The client refuses them at construction, without naming the file: the loader (and
    # so `resilient-client check`) must not call such a configuration valid.
    path = tmp_path / "api.toml"
    path.write_text("".join(f'[endpoints."{key}".retry]\nmax_attempts = 2\n' for key in keys))
    with pytest.raises(ValueError) as raised:
        rc.load_config(path)
    assert str(path) in str(raised.value)
    assert "match the same requests" in str(raised.value)
    assert all(repr(key) in str(raised.value) for key in keys)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("headers:\n\tAuthorization: Bearer sk-live-canary\n", 2),
        ('headers:\n  Authorization: "Bearer sk-live-canary\n', 3),
        ("headers:\n  Authorization: Bearer sk-live-canary: x\n", 2),
    ],
)
def test_malformed_yaml_is_one_line_naming_the_place_not_quoting_the_file(
    tmp_path: Path, text: str, line: int
) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as raised:
        rc.load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: not valid YAML: ") and f"line {line}" in message
    assert "\n" not in message
    assert "sk-live-canary" not in message  # PyYAML quotes the offending line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('raise_for_error = "false"\n', "raise_for_error: must be true or false, not str"),
        ('follow_redirects = "no"\n', "follow_redirects: must be true or false, not str"),
        ("http2 = 1\n", "http2: must be true or false, not int"),
        ("max_redirects = true\n", "max_redirects: must be a whole number, not bool"),
        ('timeout = "5s"\n', "timeout: must be a number of seconds, not str"),
        ('headers = "Authorization: Bearer sk-live-canary"\n', "headers: must be a table"),
        ("base_url = 443\n", "base_url: must be a string, not int"),
        ("correlation_header = 5\n", "correlation_header: must be a string or"),
    ],
)
def test_a_client_keyword_of_the_wrong_type_is_an_error_naming_it(
    tmp_path: Path, text: str, expected: str
) -> None:
    # Passed on as written, "false" made raise_for_error true (and follow_redirects
    # followed), and the others failed later, in the client, naming no file.
    path = tmp_path / "api.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as raised:
        rc.load_config(path)
    assert str(raised.value).startswith(f"{path}: ") and expected in str(raised.value)
    assert "sk-live-canary" not in str(raised.value)


def test_client_keywords_of_their_types_pass_as_written() -> None:
    data = {
        "base_url": "https://api.example.com", "headers": {"X-A": "1"}, "params": "a=1",
        "cookies": [("c", "1")], "timeout": 5, "follow_redirects": False, "max_redirects": 3,
        "http1": True, "verify": "ca.pem", "trust_env": False, "default_encoding": "utf-8",
        "raise_for_error": True, "correlation_header": "X-Request-ID",
    }  # fmt: skip
    assert dict(rc.load_config(data)) == data
    timeout = httpx.Timeout(3.0)  # a mapping may hold the client's own objects
    assert rc.load_config({"timeout": timeout})["timeout"] is timeout
