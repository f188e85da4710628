"""The provider's status page, end to end: a real upstream outage (the chaos server) and a
real Atlassian Statuspage-shaped server on 127.0.0.1 (``/api/v2/status.json``,
``/api/v2/incidents/unresolved.json``). What the provider says reaches the incident and
its reports; a page serving HTML, or none listening, changes nothing else."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from incident_receivers import Collect, Receiver, receiver
from waiting import wait_until

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.incidents import HealthRules, IncidentMonitor
from resilient_client.testing import FakeClock

RULES = HealthRules(window=10.0, min_calls=5, recover_after=5.0)
POLICY = rc.Policy(retry=rc.Retry(max_attempts=2), breaker=None)
THEIR_INCIDENT = "Elevated error rates on the Payments API"

STATUS = {
    "page": {"id": "p1", "name": "Provider", "url": "https://status.provider.test"},
    "status": {"indicator": "major", "description": "Partial System Outage"},
}
UNRESOLVED = {
    "page": STATUS["page"],
    "incidents": [
        {
            "id": "inc-1",
            "name": THEIR_INCIDENT,
            "status": "identified",
            "impact": "major",
            "created_at": "2026-12-07T05:00:00.000Z",
            "shortlink": "https://stspg.io/abc",
            "incident_updates": [{"body": "We are investigating."}],
        }
    ],
}
STATUSPAGE = {
    "/api/v2/status.json": (200, "application/json", json.dumps(STATUS).encode()),
    "/api/v2/incidents/unresolved.json": (200, "application/json", json.dumps(UNRESOLVED).encode()),
}
HTML = (200, "text/html", b"<!doctype html><html><body>Status</body></html>")
GARBAGE = {"/api/v2/status.json": HTML, "/api/v2/incidents/unresolved.json": HTML}


def nothing_listening() -> str:
    """A loopback URL whose port refuses connections."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def status_reads(page: Receiver) -> int:
    return sum(r.path == "/api/v2/status.json" for r in page.received)


def recorded(monitor: IncidentMonitor) -> bool:
    """Whether the open incident holds a reading of the page (evaluating again first)."""
    return monitor.flush() and monitor.incidents()[0].provider_status is not None


def outage(
    upstream: RunningServer,
    page_url: str | None,
    ready: Callable[[IncidentMonitor], object] = lambda monitor: True,
) -> tuple[IncidentMonitor, Collect]:
    """Healthy calls, then a hard outage, then (once ``ready``: the page is read on its own
    thread, only while an incident is open) a few more failing calls."""
    clock = FakeClock()
    collect = Collect()
    monitor = IncidentMonitor(clock=clock, rules=RULES, sinks=[collect], status_page=page_url)
    client = rc.ResilientClient(base_url=upstream.url, clock=clock, incidents=monitor,
                                policy=POLICY)  # fmt: skip
    name = f"status-{time.monotonic_ns()}"

    def run(rate: float, calls: int) -> None:
        upstream.app.set_failure_plan(name, rate=rate, seed=3)
        for _ in range(calls):
            with contextlib.suppress(httpx.HTTPError):
                client.get(f"/outage/{name}")
            clock.advance(0.5)
            assert monitor.flush()

    try:
        run(0.0, 20)
        run(1.0, 20)
        assert monitor.incidents(open_only=True), "the outage opened no incident"
        wait_until(lambda: ready(monitor))
        run(1.0, 4)
    finally:
        client.close()
        monitor.close()
    return monitor, collect


@pytest.fixture
def plain(upstream: RunningServer) -> tuple[IncidentMonitor, Collect]:
    return outage(upstream, None)


def test_the_incident_records_what_the_status_page_says(upstream: RunningServer) -> None:
    with receiver(pages=dict(STATUSPAGE)) as page:
        monitor, _ = outage(upstream, page.url, recorded)
    [incident] = monitor.incidents()
    said = incident.provider_status
    assert said is not None
    assert (said.indicator, said.description, said.acknowledged) == (
        "major",
        "Partial System Outage",
        True,
    )
    assert [(i.name, i.status, i.impact) for i in said.incidents] == [
        (THEIR_INCIDENT, "identified", "major")
    ]
    assert any(f"status page: major ({THEIR_INCIDENT})" in what for _, what in incident.timeline)
    # Read only while the incident is open, and not on every call.
    assert 1 <= status_reads(page) <= 3

    markdown = incident.report(format="markdown")
    assert "## Provider status page" in markdown
    assert THEIR_INCIDENT in markdown and "the provider acknowledged trouble" in markdown
    data = json.loads(incident.report(format="json"))
    status = data["provider_status"]
    assert (status["indicator"], status["acknowledged"]) == ("major", True)
    assert [i["name"] for i in status["incidents"]] == [THEIR_INCIDENT]
    html = incident.report(format="html")
    assert "Provider status page" in html and THEIR_INCIDENT in html
    assert "<th>Acknowledged</th><td>yes</td>" in html


def test_a_page_with_no_incident_listed_is_not_an_acknowledgement(
    upstream: RunningServer,
) -> None:
    calm = {
        "/api/v2/status.json": (
            200,
            "application/json",
            json.dumps(
                {"status": {"indicator": "none", "description": "All Systems Operational"}}
            ).encode(),
        ),
        "/api/v2/incidents/unresolved.json": (200, "application/json", b'{"incidents": []}'),
    }
    with receiver(pages=calm) as page:
        monitor, _ = outage(upstream, page.url, recorded)
    said = monitor.incidents()[0].provider_status
    assert said is not None and (said.indicator, said.acknowledged) == ("none", False)
    assert "no trouble acknowledged" in monitor.incidents()[0].report(format="markdown")


def _shape(monitor: IncidentMonitor, collect: Collect) -> tuple[Any, ...]:
    [incident] = monitor.incidents()
    return (
        [(a.action, a.severity) for a in collect.alerts],
        incident.state,
        incident.severity,
        incident.calls,
        incident.failed_calls,
        dict(incident.statuses),
        [what for _, what in incident.timeline],
    )


@pytest.mark.parametrize("kind", ["html", "unreachable"])
def test_a_garbage_or_unreachable_page_changes_nothing_else(
    upstream: RunningServer,
    plain: tuple[IncidentMonitor, Collect],
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="resilient_client.incidents")

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if "status page" in r.getMessage()]

    if kind == "html":
        with receiver(pages=dict(GARBAGE)) as page:
            monitor, collect = outage(upstream, page.url, lambda _: said())
        assert status_reads(page) >= 1  # it was asked, and answered HTML
    else:
        monitor, collect = outage(upstream, nothing_listening(), lambda _: said())
    assert monitor.incidents()[0].provider_status is None
    assert _shape(monitor, collect) == _shape(*plain)
    [line] = said()  # said once, by kind only
    assert "could not be read" in line and "127.0.0.1" in line
    for incident_format in ("markdown", "json", "html"):
        assert "Provider status page" not in monitor.incidents()[0].report(
            format=incident_format  # type: ignore[arg-type]
        ).replace('"provider_status": null', "")
