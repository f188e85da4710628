"""Drop-in, checked by httpx's own test suite (issue 18).

``tests/conformance/rc_conformance.py`` runs the installed httpx's suite (its sdist's) three ways -
plain httpx, ``httpx.Client``/``AsyncClient`` being ours, and every transport wrapped in
ours - and compares the outcomes per test. A test that passes on plain httpx must pass on
ours too, unless ``tests/conformance/allowlist.toml`` lists it as a difference the README
documents. The run takes one to two minutes on two idle cores (more the first time on a
machine: pip fetches the sdist, about 50 s, and the suite's test dependencies).
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
README = Path(__file__).resolve().parents[2] / "README.md"
sys.path.insert(0, str(CONFORMANCE))
import rc_conformance as conformance  # noqa: E402 - beside its plugin, not in a package


@pytest.fixture(scope="module")
def comparison() -> conformance.Comparison:
    return conformance.run()


def _listing(tests: list[str], outcomes: dict[str, str]) -> str:
    return "\n".join(f"  {test} [{outcomes.get(test, 'missing')}]" for test in tests)


def test_the_baseline_runs_httpxs_whole_suite(comparison: conformance.Comparison) -> None:
    plain = comparison.results["plain"]
    assert plain.count("passed") > 1000, conformance.summary(comparison)
    assert comparison.version == importlib.metadata.version("httpx")


@pytest.mark.parametrize("mode", conformance.RESILIENT_MODES)
def test_every_test_passing_on_plain_httpx_passes_on_ours(
    comparison: conformance.Comparison, mode: str
) -> None:
    regressions = comparison.regressions[mode]
    outcomes = comparison.results[mode].outcomes
    assert not regressions, (
        f"{len(regressions)} of httpx's tests pass on plain httpx but not in {mode} mode, "
        f"and allowlist.toml does not list them:\n{_listing(regressions, outcomes)}"
    )


def test_every_allowlisted_difference_still_shows(comparison: conformance.Comparison) -> None:
    # Also what fails if a mode silently stopped swapping in our classes.
    assert not comparison.stale, "\n".join(
        f"{test} passes in {mode} mode: drop it from allowlist.toml"
        for mode, test in comparison.stale
    )


def test_the_run_reached_nothing_but_loopback(comparison: conformance.Comparison) -> None:
    assert not comparison.refused, comparison.refused


def test_every_allowlisted_difference_is_in_the_readmes_differences_section() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"^## Differences from plain httpx\n(.*?)(?=^## )", text, re.M | re.S)
    assert found, "README.md has no '## Differences from plain httpx' section"
    section = found.group(1)
    allowlist = conformance.load_allowlist()
    missing = [d.readme for d in allowlist if d.readme not in section]
    assert not missing, f"allowlist.toml cites README lines that are not there: {missing}"
    # ... and the section lists nothing that is not allowlisted.
    cited = {d.readme for d in allowlist}
    bullets = [line for line in section.splitlines() if line.startswith("- ")]
    uncited = [line for line in bullets if not any(line.startswith(c) for c in cited)]
    assert not uncited, f"README differences that allowlist.toml does not cite: {uncited}"


def test_the_socket_guard_refuses_anything_but_loopback() -> None:
    probe = textwrap.dedent(
        """
        import socket, rc_conformance_plugin as plugin
        raw = socket.socket()
        raw.settimeout(1)
        for what in (lambda: raw.connect(("192.0.2.1", 80)),
                     lambda: socket.create_connection(("example.com", 80), timeout=1)):
            try:
                what()
            except ConnectionRefusedError:
                pass
            else:
                raise SystemExit("not refused")
        server = socket.create_server(("127.0.0.1", 0))
        socket.create_connection(server.getsockname(), timeout=1).close()
        print(sorted(plugin._refused["<collection>"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(CONFORMANCE), "RC_CONFORMANCE_MODE": "plain"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['connect to 192.0.2.1', \"lookup of 'example.com'\"]"
    # (192.0.2.1 is TEST-NET-1: even unguarded, it leads nowhere.)


def test_httpx2s_sdist_still_ships_no_tests_to_run() -> None:
    # httpx2 publishes no tests/ in its sdist, so there is no suite to run against
    # rc2's classes; the day it ships one, this fails and the run should take it in.
    version = importlib.metadata.version("httpx2")
    archive = conformance.sdist("httpx2", version, conformance.cache_dir())
    assert conformance.sdist_test_files(archive) == []
