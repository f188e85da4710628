"""``print(rc.load_config(...))`` shows the policy each endpoint actually gets: the default
merged under the endpoint's own table, not the tables as written."""

from __future__ import annotations

from pathlib import Path

import resilient_client as rc
from resilient_client._config import ClientConfig

TOML = """
base_url = "https://api.test"
headers = { Authorization = "Bearer sk-live-123" }

[policy.retry]
max_attempts = 4

[endpoints."GET /users/{id}".timeouts]
read = 2.0

[endpoints."POST /payments"]
retry = false
"""


def load(tmp_path: Path) -> ClientConfig:
    path = tmp_path / "api.toml"
    path.write_text(TOML)
    return rc.load_config(path)


def section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("  ")), None)
    return lines[start:end]


def line(lines: list[str], strategy: str) -> str:
    return next(item for item in lines if item.split()[0] == strategy)


def test_each_endpoint_shows_the_default_merged_under_its_table(tmp_path: Path) -> None:
    text = str(load(tmp_path))

    users = section(text, "endpoint 'GET /users/{id}':")
    assert "read=2*" in line(users, "timeouts")  # its own
    assert "connect=5," in line(users, "timeouts")  # the default's
    assert "max_attempts=4," in line(users, "retry")  # inherited from [policy.retry]
    payments = section(text, "endpoint 'POST /payments':")
    assert line(payments, "retry").split()[1:] == ["off*"]
    assert "read=10," in line(payments, "timeouts")
    default = section(text, "default policy:")
    assert "max_attempts=4*" in line(default, "retry")
    assert line(default, "bulkhead").split()[1:] == ["off"]


def test_the_view_is_what_the_client_applies(tmp_path: Path) -> None:
    config = load(tmp_path)
    with rc.ResilientClient(**config) as client:
        request = client.build_request("GET", "/users/7")
        applied = client.pipeline.endpoint_for(request).policy
    assert config.effective()["GET /users/{id}"] == applied


def test_repr_is_the_same_view_and_never_shows_header_values(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert repr(config) == str(config)
    assert "sk-live" not in repr(config)
    assert "headers = <given>" in repr(config)


def test_it_is_still_a_dict_of_client_keywords(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert isinstance(config, dict)
    assert set(config) == {"base_url", "headers", "policy", "endpoints"}
    assert dict(config)["policy"].retry.max_attempts == 4
