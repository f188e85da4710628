"""Escalation reports of a real incident (the chaos upstream, a fake clock): what support
needs is in every format, no secret is in any, and the HTML looks right in Chromium."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.incidents import IncidentMonitor, PagerDutySink, WebhookSink
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

CANARY = "canary-7c41d0e9b2"
POLICY = rc.Policy(
    retry=rc.Retry(max_attempts=2, backoff=rc.Backoff(initial=0.01)),
    breaker=rc.Breaker(failure_threshold=10, reset_timeout=3.0),
)
RULES = rc.HealthRules(window=10.0, min_calls=5, recover_after=5.0)


def record_incident(upstream: RunningServer, store: str, name: str = "pay") -> rc.Incident:
    """Healthy, then a full outage, then recovery, one GET and one POST per fake second,
    each carrying the canary in a header and a query parameter; sinks hold it as their
    credentials (they cannot deliver: nothing listens on port 9)."""
    clock = FakeClock()
    sinks = [
        WebhookSink(f"http://127.0.0.1:9/hooks/{CANARY}", secret=CANARY),
        PagerDutySink(routing_key=CANARY, url="http://127.0.0.1:9/v2/enqueue"),
    ]
    monitor = IncidentMonitor(rules=RULES, sinks=sinks, store=store, clock=clock)
    client = rc.ResilientClient(
        base_url=upstream.url,
        clock=clock,
        incidents=monitor,
        policy=POLICY,
        headers={"Authorization": f"Bearer {CANARY}", "X-Api-Key": CANARY},
    )
    try:
        for rate, seconds in ((0.0, 10), (1.0, 15), (0.0, 25)):
            upstream.app.set_failure_plan(name, rate=rate)
            for _ in range(seconds):
                for method, query in (("GET", "api_key"), ("POST", "token")):
                    with contextlib.suppress(httpx.HTTPError):  # breaker open: failed fast
                        client.request(
                            method,
                            f"/outage/{name}?{query}={CANARY}&request_id=rq-1",
                            json={"amount": 1} if method == "POST" else None,
                        )
                clock.advance(1.0)
                monitor.evaluate()
        [incident] = monitor.incidents()
    finally:
        client.close()
        monitor.close(timeout=0.2)
    return incident


@pytest.fixture(scope="module")
def incident(
    upstream_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> rc.Incident:
    store = tmp_path_factory.mktemp("report") / "incidents.db"
    return record_incident(upstream_server, f"sqlite:///{store}", name="report-pay")


def test_no_secret_appears_in_any_format(incident: rc.Incident) -> None:
    for format in ("markdown", "json", "html"):
        text = incident.report(format)
        assert CANARY not in text, format
        assert "REDACTED" in text, format  # the query parameters are there, their values not


def test_the_json_report_holds_what_support_needs(incident: rc.Incident) -> None:
    data = json.loads(incident.report("json"))
    assert data["schema"] == "resilient-client/incident/1"
    assert data["incident"]["state"] == "resolved"
    assert data["window"]["started_at"].endswith("Z")
    assert data["window"]["time_to_recover_seconds"] > 0
    assert data["impact"]["failed_calls"] > 0
    assert {row["key"] for row in data["breakdown"]["statuses"]} == {503}
    assert any(s["request_id"] == "rq-1" for s in data["samples"])
    assert all(s["correlation_id"] for s in data["samples"])
    writes = {s["idempotency_key"] for s in data["samples"] if s["method"] == "POST"}
    assert writes and None not in writes
    assert {k["idempotency_key"] for k in data["idempotency_keys"]} == writes
    assert data["client_actions"]["retries"] > 0
    assert data["environment"]["resilient-client"]
    assert any("alert: trigger" in t["what"] for t in data["timeline"])


def test_the_markdown_report_reads_as_a_ticket(incident: rc.Incident) -> None:
    text = incident.report("markdown")
    assert text.startswith(f"# Incident `{incident.id}`")
    for heading in ("## Impact by endpoint", "## Sample failed requests",
                    "## Idempotency keys of affected writes", "## What the client did",
                    "## Timeline (UTC)", "## Environment"):  # fmt: skip
        assert heading in text
    assert "`rq-1`" in text


def test_the_html_report_is_one_self_contained_file(incident: rc.Incident) -> None:
    html = incident.report("html")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    for external in ("<script", "<link", "src=", "@import", "url("):
        assert external not in html
    assert "default-src 'none'" in html  # a browser loads nothing else, by policy


def _blank(png: Path) -> bool:
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return colours is None or len(colours) < 10


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_the_html_report_renders_in_chromium(incident: rc.Incident, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(incident.report("html"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    profile = tempfile.mkdtemp(dir=tmp_path)
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", f"--screenshot={shot}",
         "--window-size=1280,1600", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert shot.stat().st_size > 10_000
    assert not _blank(shot)
