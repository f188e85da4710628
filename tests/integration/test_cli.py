"""The command line, end to end: each command as a subprocess, as a user runs it."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_report_upstream import CANARY, record_incident

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.cli import parser

pytestmark = pytest.mark.integration


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("RESILIENT_CLIENT_INCIDENTS", None)
    return subprocess.run(
        [sys.executable, "-m", "resilient_client", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, env=env,
    )  # fmt: skip


def test_version_names_the_package_and_its_environment() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"resilient-client {rc.__version__} (Python 3.")


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_command_and_option_has_help() -> None:
    found = list(_parsers(parser()))
    assert len(found) > 10  # every command and action was reached
    for each in found:
        for action in each._actions:
            assert action.help, f"{each.prog}: {action.dest} has no help"
    top = cli("--help")
    assert top.returncode == 0
    for command in ("demo", "chaos", "check", "probe", "incidents", "report", "outbox"):
        assert f"    {command}" in top.stdout


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


CONFIG = """
base_url = "https://api.example.com/v1"
[policy.timeouts]
total = 10.0
[endpoints."GET /users/{id}".timeouts]
attempt = 15.0
[endpoints."GET /v1/orders"]
[endpoints."GET /search?q=x"]
"""


def test_check_prints_effective_policies_matches_and_warnings(tmp_path: Path) -> None:
    config = write(tmp_path, "api.toml", CONFIG)
    result = cli("check", str(config), "https://api.example.com/v1/users/42", "POST /payments")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "endpoint 'GET /users/{id}':" in out and "attempt=15*" in out
    assert "GET https://api.example.com/v1/users/42 -> GET /users/{id}" in out
    assert "POST https://api.example.com/v1/payments -> * api.example.com" in out
    assert "repeats base_url's path '/v1'" in out
    assert "has a query string" in out
    assert "endpoint 'GET /users/{id}': timeouts.attempt = 15 s exceeds timeouts.total" in out
    assert result.stderr == ""  # every warning once, on stdout, none as a Python warning
    assert cli("check", "--strict", str(config)).returncode == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [('x = 1\n', "unknown key 'x'"), ("[policy.retry]\nmax_attempts = 0\n", "max_attempts"),
     ("not toml [", "not valid TOML")],
)  # fmt: skip
def test_check_exits_1_on_an_invalid_config(tmp_path: Path, text: str, message: str) -> None:
    result = cli("check", str(write(tmp_path, "bad.toml", text)))
    assert result.returncode == 1 and message in result.stderr


@pytest.mark.parametrize(("command", "status"), [("check", 1), ("probe", 3)])
def test_a_malformed_yaml_config_is_one_line_and_the_invalid_status(
    tmp_path: Path, command: str, status: int
) -> None:
    config = write(tmp_path, "bad.yaml", "policy:\n  retry: [\n")
    result = cli(command, str(config), "--once" if command == "probe" else "--strict")
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert f"resilient-client {command}: {config}: not valid YAML" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [('base_url = "http://[::1"\n', "Invalid port"),
     ("headers = { X-Team = 5 }\n", "Header value must be str"),
     ('verify = "no-such-ca.pem"\n', "No such file")],
)  # fmt: skip
@pytest.mark.parametrize(("command", "status"), [("check", 1), ("probe", 3)])
def test_a_config_the_client_refuses_is_invalid(
    tmp_path: Path, text: str, message: str, command: str, status: int
) -> None:
    # Each loads, but the client cannot be built from it: check called it valid, and
    # probe died with a traceback and exit status 1 ("some probes failed").
    config = write(tmp_path, "api.toml", text + '[[probes]]\nname = "p"\nurl = "/ok/x"\n')
    result = cli(command, str(config), "--once" if command == "probe" else "--strict")
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"resilient-client {command}: {config}: ")
    assert message in result.stderr


def probes(url: str, *paths: str) -> str:
    tables = "".join(f'[[probes]]\nname = "p{i}"\nurl = "{path}"\n' for i, path in enumerate(paths))
    head = f'base_url = "{url}"\n[policy.retry]\nmax_attempts = 2\n[policy.retry.backoff]\n'
    return head + "initial = 0.01\n" + tables


@pytest.mark.parametrize(
    ("paths", "status"),
    [
        (("/ok/a", "/flaky/b?fail=1"), 0),
        (("/ok/c", f"/status/d/503?api_key={CANARY}"), 1),
        (("/status/e/503", "/status/f/500"), 2),
    ],
)
def test_probe_exits_0_1_2_for_all_some_none_passed(
    upstream: RunningServer, tmp_path: Path, paths: tuple[str, ...], status: int
) -> None:
    result = cli("probe", str(write(tmp_path, "p.toml", probes(upstream.url, *paths))), "--once")
    assert result.returncode == status, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line[:4] in ("PASS", "FAIL") for line in lines)
    assert CANARY not in result.stdout


def test_probe_expect_lists_the_statuses_that_pass(upstream: RunningServer, tmp_path: Path) -> None:
    text = probes(upstream.url, "/status/g/418") + "expect = [418]\n"
    result = cli("probe", str(write(tmp_path, "p.toml", text)), "--once")
    assert result.returncode == 0 and result.stdout.startswith("PASS  p0  GET /status/g/418 -> 418")


@pytest.mark.parametrize("text", ["[policy]\nretri = 1\n", "", '[[probes]]\nname = "x"\n'])
def test_probe_exits_3_on_an_invalid_config(tmp_path: Path, text: str) -> None:
    assert cli("probe", str(write(tmp_path, "p.toml", text)), "--once").returncode == 3


@pytest.fixture(scope="module")
def store(upstream_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cli") / "incidents.db"
    url = f"sqlite:///{path}"
    record_incident(upstream_server, url, name="cli-pay")
    return url


def test_incidents_list_and_show(store: str) -> None:
    listing = cli("incidents", "list", "--store", store)
    assert listing.returncode == 0
    head, row = listing.stdout.splitlines()
    assert head.split()[:4] == ["id", "provider", "state", "severity"]
    incident_id = row.split()[0]
    assert "resolved" in row.split()
    shown = cli("incidents", "show", incident_id, "--store", store)
    assert shown.returncode == 0
    assert f"incident        {incident_id}" in shown.stdout and "timeline (UTC)" in shown.stdout
    assert CANARY not in listing.stdout + shown.stdout
    assert cli("incidents", "show", "nope", "--store", store).returncode == 1


def test_incidents_on_a_missing_store_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    result = cli("incidents", "list", "--store", f"sqlite:///{tmp_path / 'none.db'}")
    assert result.returncode == 2 and "no incident store" in result.stderr
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(("name", "marker"), [("r.html", "<!DOCTYPE html>"), ("r.json", "{"),
                                              ("r.md", "# Incident")])  # fmt: skip
def test_report_writes_the_format_its_file_name_says(
    store: str, tmp_path: Path, name: str, marker: str
) -> None:
    incident_id = cli("incidents", "list", "--store", store).stdout.splitlines()[1].split()[0]
    result = cli("report", incident_id, "--store", store, "-o", str(tmp_path / name))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / name).read_text(encoding="utf-8")
    assert text.startswith(marker) and CANARY not in text
    piped = cli("report", incident_id, "--store", store, "--format", "json")
    assert json.loads(piped.stdout)["incident"]["id"] == incident_id


def test_report_to_a_folder_that_is_not_there_is_one_line_and_its_status(
    store: str, tmp_path: Path
) -> None:
    incident_id = cli("incidents", "list", "--store", store).stdout.splitlines()[1].split()[0]
    target = tmp_path / "no-such-folder" / "r.md"
    result = cli("report", incident_id, "--store", store, "-o", str(target))
    assert result.returncode == 3
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert str(target) in result.stderr and not target.exists()


def test_outbox_commands_are_wired(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    rc.Outbox(url).close()
    assert cli("outbox", "list", "--store", url).stdout.strip() == "no entries"
    assert cli("outbox", "show", "nope", "--store", url).returncode == 1


def test_chaos_serves_logs_each_request_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "resilient_client", "chaos", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "(Ctrl-C to stop)" in first
        url = first.split()[4]
        assert url.startswith("http://127.0.0.1:")
        process.stdout.readline()  # the curl hint
        assert httpx.get(f"{url}/flaky/x?fail=1&api_key={CANARY}").status_code == 503
        line = process.stdout.readline()
        assert "GET    /flaky/x?fail=1&api_key=REDACTED  -> 503" in line
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0 and "stopped" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
