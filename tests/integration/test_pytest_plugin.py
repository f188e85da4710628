"""The pytest plugin as an integrator meets it: a separate test project in a temporary
folder, run by ``pytest`` in a subprocess, with no ``-p`` and no conftest - the
``pytest11`` entry point registers the fixtures. Each test here checks one of that
project's tests (sync, asyncio and trio; httpx and httpx2; the real chaos upstream)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PROJECT_TESTS = """
import httpx
import httpx2
import pytest

import resilient_client as rc
from resilient_client import httpx2 as rc2
from resilient_client.testing import FakeClock, ScriptedTransport


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


def busy():
    return httpx.Response(503, headers={"Retry-After": "1"})


def test_rc_clock_is_the_clock_of_every_client_built_in_the_test(rc_clock, rc_scripted):
    client = rc.ResilientClient(transport=rc_scripted([busy(), busy(), 200]))
    assert client.get("http://api.test/a").status_code == 200
    assert rc_clock.sleeps == [1.0, 1.0] and rc_clock.monotonic() == 1002.0


def test_rc_clock_times_the_breaker(rc_clock, rc_scripted):
    policy = rc.Policy(retry=None, breaker=rc.Breaker(failure_threshold=2, reset_timeout=30.0))
    client = rc.ResilientClient(transport=rc_scripted([503, 503, 200]), policy=policy)
    client.get("http://api.test/a"), client.get("http://api.test/a")
    with pytest.raises(rc.CircuitOpenError):
        client.get("http://api.test/a")
    rc_clock.advance(30.0)
    assert client.get("http://api.test/a").status_code == 200  # the half-open probe


@pytest.mark.anyio
async def test_rc_clock_under_an_event_loop(rc_clock, rc_scripted):
    async with rc.AsyncResilientClient(transport=rc_scripted([busy(), 200])) as client:
        assert (await client.get("http://api.test/a")).status_code == 200
    assert rc_clock.sleeps == [1.0]


def test_rc_no_waits_skips_the_system_clock_s_waits(rc_no_waits, rc_scripted):
    client = rc.ResilientClient(transport=rc_scripted([busy(), busy(), 200]))
    assert client.get("http://api.test/a").status_code == 200
    assert rc_no_waits.delays == [1.0, 1.0]


@pytest.mark.anyio
async def test_rc_no_waits_under_an_event_loop(rc_no_waits, rc_scripted):
    async with rc.AsyncResilientClient(transport=rc_scripted([busy(), 200])) as client:
        assert (await client.get("http://api.test/a")).status_code == 200
    assert rc_no_waits.delays == [1.0]


def test_rc_scripted_builds_httpx2_transports(rc_scripted, rc_no_waits):
    transport = rc_scripted([503, httpx2.Response(201)], library="httpx2")
    client = rc2.ResilientClient(transport=transport)
    assert client.post("http://api.test/a", json={}).status_code == 201
    idempotency_keys = {r.headers["Idempotency-Key"] for r in transport.requests}
    assert len(transport.requests) == 2 and len(idempotency_keys) == 1


def test_rc_chaos_is_a_real_upstream_with_per_key_stats(rc_chaos, rc_no_waits):
    client = rc.ResilientClient(base_url=rc_chaos.url)
    assert client.get(f"/flaky/{rc_chaos.key}?fail=2").status_code == 200
    assert rc_chaos.stats(rc_chaos.key).attempts == 3 and len(rc_no_waits.delays) == 2
    assert rc_chaos.stats("elsewhere").attempts == 0


def test_rc_chaos_is_reset_for_each_test(rc_chaos):
    assert rc_chaos.stats("test_rc_chaos_is_a_real_upstream_with_per_key_stats").attempts == 0


def test_rc_no_waits_leaves_the_upstream_s_stalls_real(rc_chaos, rc_no_waits):
    policy = rc.Policy(timeouts=rc.Timeouts(attempt=0.2))
    client = rc.ResilientClient(base_url=rc_chaos.url, policy=policy)
    response = client.get(f"/stall/{rc_chaos.key}?seconds=5&times=1")
    # The stall held the first attempt past its timeout; only the backoff was skipped.
    assert response.extensions["resilience"].attempts == 2 and rc_chaos.stats().attempts == 2
    assert len(rc_no_waits.delays) == 1 and rc_no_waits.delays[0] < 5.0


@pytest.mark.anyio
async def test_rc_chaos_under_an_event_loop_with_httpx2(rc_chaos, rc_no_waits):
    async with rc2.AsyncResilientClient(base_url=rc_chaos.url) as client:
        response = await client.post(f"/payments/{rc_chaos.key}?lose=1", json={"amount": 5})
    assert response.status_code == 201
    assert rc_chaos.stats().attempts == 2 and rc_chaos.effects() == 1
"""


PROJECT_INI = """\
[pytest]
addopts = -p no:cacheprovider
asyncio_default_fixture_loop_scope = function
"""


def run_project(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    (folder / "test_integration.py").write_text(textwrap.dedent(PROJECT_TESTS))
    # Its own configuration, so nothing of this repository's is picked up.
    (folder / "pytest.ini").write_text(PROJECT_INI)
    report = folder / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", f"--junitxml={report}", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return process, report


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The separate project's tests, run once: their outcome by test id."""
    process, report = run_project(tmp_path_factory.mktemp("project"))
    assert report.exists(), process.stdout + process.stderr
    results: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        results[case.attrib["name"]] = "failed" if failed else "skipped" if skipped else "passed"
    results["__output__"] = process.stdout[-4000:]
    return results


def outcome(outcomes: dict[str, str], name: str) -> str:
    assert name in outcomes, outcomes["__output__"]
    return outcomes[name]


def test_rc_clock_is_the_clock_of_every_client_built_in_the_test(
    outcomes: dict[str, str],
) -> None:
    name = "test_rc_clock_is_the_clock_of_every_client_built_in_the_test"
    assert outcome(outcomes, name) == "passed", outcomes["__output__"]


def test_rc_clock_times_the_breaker(outcomes: dict[str, str]) -> None:
    assert outcome(outcomes, "test_rc_clock_times_the_breaker") == "passed"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_rc_clock_under_asyncio_and_trio(outcomes: dict[str, str], backend: str) -> None:
    assert outcome(outcomes, f"test_rc_clock_under_an_event_loop[{backend}]") == "passed"


def test_rc_no_waits_in_a_sync_test(outcomes: dict[str, str]) -> None:
    name = "test_rc_no_waits_skips_the_system_clock_s_waits"
    assert outcome(outcomes, name) == "passed", outcomes["__output__"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_rc_no_waits_under_asyncio_and_trio(outcomes: dict[str, str], backend: str) -> None:
    name = f"test_rc_no_waits_under_an_event_loop[{backend}]"
    assert outcome(outcomes, name) == "passed", outcomes["__output__"]


def test_rc_scripted_with_httpx2(outcomes: dict[str, str]) -> None:
    name = "test_rc_scripted_builds_httpx2_transports"
    assert outcome(outcomes, name) == "passed", outcomes["__output__"]


def test_rc_chaos_serves_and_counts_per_key(outcomes: dict[str, str]) -> None:
    name = "test_rc_chaos_is_a_real_upstream_with_per_key_stats"
    assert outcome(outcomes, name) == "passed", outcomes["__output__"]


def test_rc_chaos_forgets_the_previous_test(outcomes: dict[str, str]) -> None:
    name = "test_rc_chaos_is_reset_for_each_test"
    assert outcome(outcomes, name) == "passed", outcomes["__output__"]


def test_rc_no_waits_skips_the_pipeline_s_waits_not_the_upstream_s(
    outcomes: dict[str, str],
) -> None:
    name = "test_rc_no_waits_leaves_the_upstream_s_stalls_real"
    assert outcome(outcomes, name) == "passed", outcomes["__output__"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_rc_chaos_under_asyncio_and_trio_with_httpx2(
    outcomes: dict[str, str], backend: str
) -> None:
    name = f"test_rc_chaos_under_an_event_loop_with_httpx2[{backend}]"
    assert outcome(outcomes, name) == "passed", outcomes["__output__"]


def test_the_entry_point_is_what_registers_the_fixtures(tmp_path: Path) -> None:
    """Disabled by its entry-point name, the plugin's fixtures are gone."""
    process, report = run_project(tmp_path, "-p", "no:resilient_client", "-k", "no_waits")
    assert process.returncode == 1, process.stdout
    assert "fixture 'rc_no_waits' not found" in process.stdout
