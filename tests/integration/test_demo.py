"""The README's first command runs the demo: it must keep working and keep its promises,
as a subprocess, without a terminal (CI): plain lines, under 20 s of its own time."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resilient_client._demo import SECRET

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, float]:
    out = tmp_path_factory.mktemp("demo")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "resilient_client", "demo", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, out, time.monotonic() - started


def test_the_demo_tells_the_four_acts(demo: tuple[str, Path, float]) -> None:
    out, _, _ = demo
    acts = re.findall(r"^Act \d, ([a-z ]+):", out, flags=re.MULTILINE)
    assert acts == ["healthy", "partial failure", "outage", "recovery"]


def test_the_demo_explains_why_calls_stopped(demo: tuple[str, Path, float]) -> None:
    out, _, _ = demo
    assert "the retries saved the call" in out
    assert "stopped because every allowed attempt was used" in out
    assert "failed fast with CircuitOpenError: the breaker is open" in out


def test_the_demo_prints_the_alerts_and_a_table_without_a_terminal(
    demo: tuple[str, Path, float],
) -> None:
    out, _, _ = demo
    assert re.search(r"^  ALERT trigger \(warning\): 127\.0\.0\.1:\d+ degraded", out, re.M)
    assert re.search(r"^  ALERT resolve ", out, re.M)
    rows = re.findall(r"^  \[\s*[\d.]+s\] (GET /catalog|GET /search|POST /checkout) +(\w+)", out,
                      re.M)  # fmt: skip
    assert {state for key, state in rows if key == "POST /checkout"} >= {"healthy", "down"}
    assert "\x1b[" not in out  # no colour without a terminal


def test_the_demo_writes_reports_without_the_secret_it_sent(
    demo: tuple[str, Path, float],
) -> None:
    out, directory, _ = demo
    html = Path(re.search(r"HTML: +(\S+)", out).group(1))  # type: ignore[union-attr]
    markdown = Path(re.search(r"Markdown: +(\S+)", out).group(1))  # type: ignore[union-attr]
    assert html.parent == markdown.parent == directory
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert markdown.read_text(encoding="utf-8").startswith("# Incident")
    for path in (html, markdown):
        assert SECRET not in path.read_text(encoding="utf-8")
    assert SECRET not in out


def test_the_demo_fits_in_20_seconds(demo: tuple[str, Path, float]) -> None:
    out, _, wall = demo
    own = float(re.search(r"Done in ([\d.]+) s\.", out).group(1))  # type: ignore[union-attr]
    assert own < 20.0
    assert wall < own + 15.0  # the interpreter and the imports, on a busy machine
