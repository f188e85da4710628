"""Incidents from a real upstream (the chaos server), driven on a fake clock:
healthy → partial failure → full outage → recovery, with alerts to real receivers."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import pytest
from drivers import Driver
from incident_receivers import Collect, receiver
from otel_support import Otel

import resilient_client as rc
from resilient_client.chaos import RunningServer
from resilient_client.incidents import (
    HealthRules,
    IncidentMonitor,
    IncidentStoreError,
    LogSink,
    PagerDutySink,
    SlackSink,
    WebhookSink,
)
from resilient_client.testing import FakeClock

CANARY = "canary-5f1e9c3a7d"
POLICY = rc.Policy(
    retry=rc.Retry(max_attempts=2),
    breaker=rc.Breaker(window="consecutive", failure_threshold=8, reset_timeout=30.0),
)


class Story:
    """Calls ``/outage/{name}`` once per fake second, evaluating once per window bucket."""

    def __init__(
        self,
        driver: Driver,
        upstream: RunningServer,
        monitor: IncidentMonitor,
        clock: FakeClock,
        name: str,
    ) -> None:
        self.driver, self.upstream, self.monitor, self.clock, self.name = (
            driver,
            upstream,
            monitor,
            clock,
            name,
        )
        self.client = driver.client(
            base_url=upstream.url, clock=clock, observers=[monitor], policy=POLICY
        )

    def phase(self, rate: float, seconds: int) -> float:
        """Run ``seconds`` at failure ``rate``; the longest call, in real seconds."""
        self.upstream.app.set_failure_plan(self.name, rate=rate, seed=7)
        slowest = 0.0
        for second in range(seconds):
            started = time.perf_counter()
            try:
                self.driver.request(
                    self.client,
                    "GET",
                    f"/outage/{self.name}?api_key={CANARY}",
                    headers={"Authorization": f"Bearer {CANARY}"},
                )
            except rc.CircuitOpenError:
                pass
            except Exception:
                pass
            slowest = max(slowest, time.perf_counter() - started)
            self.clock.advance(1.0)
            if second % 6 == 5:
                self.flush()
        self.flush()
        return slowest

    def flush(self) -> None:
        # Sinks that never answer keep flush() waiting for them: only evaluation is asked.
        assert self.monitor.flush(timeout=5.0 if self.strict else 0.05) or not self.strict

    strict = True

    def state(self) -> str:
        return next(iter(self.monitor.health().values())).state


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_an_outage_is_one_incident_from_first_failure_to_recovery(
    driver: Driver, upstream: RunningServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    collect = Collect()
    critical = [f"* 127.0.0.1:{upstream.port}"]
    # A window longer than the breaker's 30 s open period: recovery eases through degraded.
    rules = HealthRules(window=60.0)
    monitor = IncidentMonitor(clock=clock, sinks=[collect], critical=critical, rules=rules)
    story = Story(driver, upstream, monitor, clock, "story")
    caplog.set_level(logging.DEBUG, logger="resilient_client")
    try:
        story.phase(0.0, 30)
        assert story.state() == "healthy" and monitor.incidents() == []
        story.phase(0.4, 60)
        assert story.state() == "degraded"
        story.phase(1.0, 20)
        assert story.state() == "down"
        story.phase(0.0, 240)
        assert story.state() == "healthy"
    finally:
        monitor.close()
    [incident] = monitor.incidents()
    assert incident.state == "resolved"
    # One trigger, an update per severity change (escalating, then easing), one resolve.
    assert [(a.action, a.severity) for a in collect.alerts] == [
        ("trigger", "warning"),
        ("update", "critical"),
        ("update", "warning"),
        ("resolve", "warning"),
    ]
    assert {a.dedup_key for a in collect.alerts} == {incident.id}
    assert incident.provider == f"127.0.0.1:{upstream.port}"
    assert incident.failed_calls > 0 and set(incident.statuses) == {503}
    assert incident.client_actions.retries > 0
    assert 0 < incident.time_to_detect <= 60.0
    assert incident.time_to_recover is not None and incident.time_to_recover > 0
    texts = [what for _, what in incident.timeline]
    assert any("healthy → degraded" in t for t in texts)
    assert any("→ down" in t for t in texts) and texts[-1] == "resolved"
    assert 1 <= len(incident.samples) <= 20
    sample = incident.samples[0]
    assert sample.status == 503 and sample.attempts >= 1 and sample.correlation_id
    assert "api_key=REDACTED" in sample.url
    # The canary was in the request's query and Authorization header: found nowhere.
    stored = incident.to_json() + json.dumps([a.as_dict() for a in collect.alerts])
    assert CANARY not in stored
    assert CANARY not in caplog.text


def test_calls_are_not_slowed_by_sinks_that_hang_fail_or_refuse(
    driver: Driver, upstream: RunningServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with receiver(delay=30.0) as hanging, receiver(status=500) as failing:
        refused = "http://127.0.0.1:9"  # discard: nothing listens
        monitor = IncidentMonitor(
            clock=clock,
            sinks=[
                WebhookSink(hanging.url, secret=CANARY),
                PagerDutySink(CANARY, url=failing.url),
                SlackSink(refused + f"/services/{CANARY}"),
            ],
        )
        story = Story(driver, upstream, monitor, clock, "sinks")
        story.strict = False
        try:
            story.phase(0.0, 12)
            slowest = story.phase(1.0, 30)
            assert failing.wait_for(2, timeout=10.0)  # retried by its own thread
        finally:
            monitor.close(timeout=0.5)
    assert slowest < 1.0  # a call never waits for a sink (the hanging one waits 30 s)
    assert monitor.incidents()[0].state == "open"
    assert CANARY not in caplog.text


def _alerts_to_real_receivers(
    driver: Driver, upstream: RunningServer, clock: FakeClock, sink: Any
) -> IncidentMonitor:
    monitor = IncidentMonitor(clock=clock, sinks=[sink])
    story = Story(driver, upstream, monitor, clock, "receivers")
    try:
        story.phase(0.0, 12)
        story.phase(1.0, 30)
        story.phase(0.0, 200)
    finally:
        monitor.close()
    return monitor


def test_the_webhook_is_signed_with_hmac_sha256_of_the_raw_body(
    upstream: RunningServer, clock: FakeClock
) -> None:
    driver = Driver("sync")
    with receiver(status=204) as hook:
        monitor = _alerts_to_real_receivers(
            driver, upstream, clock, WebhookSink(hook.url + "/x", secret=CANARY)
        )
        posts = hook.wait_for(2)
    driver.close()
    actions = [p.json()["action"] for p in posts]
    assert actions[0] == "trigger" and actions[-1] == "resolve"  # updates may come between
    assert set(actions[1:-1]) <= {"update"}, actions
    for post in posts:
        expected = hmac.new(CANARY.encode(), post.body, hashlib.sha256).hexdigest()
        assert post.headers["x-resilient-signature"] == f"sha256={expected}"
        assert post.path == "/x" and CANARY not in post.body.decode()
        assert post.json()["schema"] == "resilient-client/alert/1"
    [incident] = monitor.incidents()
    assert posts[0].json()["dedup_key"] == incident.id
    assert posts[0].json()["incident"]["provider"] == incident.provider


def test_pagerduty_gets_events_api_v2_trigger_and_resolve(
    upstream: RunningServer, clock: FakeClock
) -> None:
    driver = Driver("sync")
    with receiver(status=202) as pd:
        monitor = _alerts_to_real_receivers(
            driver, upstream, clock, PagerDutySink("R" * 32, url=pd.url + "/v2/enqueue")
        )
        posts = pd.wait_for(2)
    driver.close()
    [incident] = monitor.incidents()
    trigger, *updates, resolve = (p.json() for p in posts)
    # An update is a new trigger with the same dedup_key, as PagerDuty documents.
    assert all(u["event_action"] == "trigger" and u["dedup_key"] == incident.id for u in updates)
    assert resolve == {"routing_key": "R" * 32, "dedup_key": incident.id, "event_action": "resolve"}
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == incident.id
    assert trigger["routing_key"] == "R" * 32
    payload = trigger["payload"]
    assert set(payload) == {
        "summary",
        "source",
        "severity",
        "timestamp",
        "component",
        "group",
        "class",
        "custom_details",
    }
    assert payload["source"] == incident.provider and payload["severity"] in ("warning", "error")
    assert len(payload["summary"]) <= 1024 and payload["timestamp"].endswith("+00:00")
    assert payload["custom_details"]["incident_id"] == incident.id


def test_slack_gets_an_incoming_webhook_message(upstream: RunningServer, clock: FakeClock) -> None:
    driver = Driver("sync")
    with receiver(status=200) as slack:
        _alerts_to_real_receivers(driver, upstream, clock, SlackSink(slack.url + "/services/T/B/x"))
        posts = slack.wait_for(2)
    driver.close()
    # One trigger and one resolve; a severity update between them is allowed (the monitor's
    # evaluation may see the endpoint degraded before it sees it down).
    texts = [post.json()["text"] for post in posts]
    assert texts[0].startswith(":rotating_light:") and "recovered" in texts[-1]
    assert all(text.startswith(":warning:") for text in texts[1:-1]), texts
    for post in posts:
        body = post.json()
        assert set(body) == {"text", "blocks"} and body["blocks"][0]["type"] == "header"


def test_a_real_sqlite_file_outlives_the_monitor(
    upstream: RunningServer, clock: FakeClock, tmp_path: Any
) -> None:
    driver = Driver("sync")
    url = f"sqlite:///{tmp_path / 'incidents.db'}"
    monitor = IncidentMonitor(clock=clock, store=url)
    story = Story(driver, upstream, monitor, clock, "sqlite")
    story.phase(0.0, 12)
    story.phase(1.0, 30)
    monitor.close()
    driver.close()
    again = IncidentMonitor(store=url)
    [incident] = again.incidents(open_only=True)
    assert incident.provider == f"127.0.0.1:{upstream.port}" and incident.failed_calls > 0
    assert again.incidents()[0] == incident
    again.close()


def test_a_corrupt_sqlite_file_is_a_clear_error_naming_it(tmp_path: Any) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(IncidentStoreError, match=r"broken\.db.*not a readable SQLite"):
        IncidentMonitor(store=f"sqlite:///{path}")
    assert path.read_bytes() == b"this is not a database" * 100


def test_suppress_mutes_alerts_but_keeps_evidence(
    upstream: RunningServer, clock: FakeClock
) -> None:
    driver = Driver("sync")
    collect = Collect()
    monitor = IncidentMonitor(clock=clock, sinks=[collect], rules=HealthRules(recover_after=30))
    monitor.suppress(f"127.0.0.1:{upstream.port}", until=300.0, reason="planned maintenance")
    story = Story(driver, upstream, monitor, clock, "muted")
    story.phase(0.0, 12)
    story.phase(1.0, 30)
    monitor.close()
    driver.close()
    assert collect.alerts == []
    [incident] = monitor.incidents()
    assert incident.failed_calls > 0 and incident.muted == "planned maintenance"


def test_the_log_sink_writes_one_line_per_alert(
    upstream: RunningServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="resilient_client.incidents")
    monitor = _alerts_to_real_receivers(Driver("sync"), upstream, clock, LogSink())
    lines = [r for r in caplog.records if r.name == "resilient_client.incidents"]
    actions = [r.action for r in lines]  # type: ignore[attr-defined]
    assert actions[0] == "trigger" and actions[-1] == "resolve"  # updates may come between
    assert set(actions[1:-1]) <= {"update"}
    assert lines[0].incident_id == monitor.incidents()[0].id  # type: ignore[attr-defined]


def test_a_transport_under_a_plain_client_feeds_the_monitor(
    driver: Driver, upstream: RunningServer, clock: FakeClock
) -> None:
    collect = Collect()
    rules = HealthRules(window=10.0, min_calls=5, recover_after=5.0)
    monitor = IncidentMonitor(clock=clock, sinks=[collect], rules=rules)
    inner = driver.lib.AsyncHTTPTransport() if driver.is_async else driver.lib.HTTPTransport()
    transport = driver.transport(inner, clock=clock, incidents=monitor, policy=POLICY)
    client = driver.plain_client(base_url=upstream.url, transport=transport)
    upstream.app.set_failure_plan("transport", rate=1.0, seed=1)
    try:
        for _ in range(12):
            with contextlib.suppress(Exception):
                driver.request(client, "GET", "/outage/transport")
            clock.advance(0.5)
        assert monitor.flush()
    finally:
        monitor.close()
    [incident] = monitor.incidents()
    assert incident.provider == f"127.0.0.1:{upstream.port}" and incident.failed_calls > 0
    assert set(incident.statuses) == {503} and incident.client_actions.fast_failures > 0
    assert [(a.action, a.dedup_key) for a in collect.alerts] == [("trigger", incident.id)]


def test_with_the_monitor_and_telemetry_on_the_canary_reaches_no_span_or_metric(
    driver: Driver, upstream: RunningServer, clock: FakeClock
) -> None:
    # The incident monitor and the OpenTelemetry observer watch the same failing calls;
    # the canary (query and Authorization header) must reach neither's output.
    otel = Otel()
    collect = Collect()
    monitor = IncidentMonitor(clock=clock, sinks=[collect])
    client = driver.client(
        base_url=upstream.url, clock=clock, observers=[monitor, otel.observer()], policy=POLICY
    )
    upstream.app.set_failure_plan("canary", rate=1.0, seed=7)
    try:
        for _ in range(40):
            with contextlib.suppress(Exception):
                driver.request(
                    client,
                    "GET",
                    f"/outage/canary?api_key={CANARY}",
                    headers={"Authorization": f"Bearer {CANARY}"},
                )
            clock.advance(1.0)
        assert monitor.flush(timeout=5.0)
        [incident] = monitor.incidents()
        assert [a.action for a in collect.alerts][:1] == ["trigger"]
    finally:
        monitor.close()
    spans = otel.spans()
    assert spans
    told = [(span.name, dict(span.attributes or {}), span.status.description) for span in spans] + [
        (event.name, dict(event.attributes or {})) for span in spans for event in span.events
    ]
    for name in ("http.client.request.duration", "resilient_client.failures"):
        told += [dict(point.attributes or {}) for point in otel.points(name)]
    assert otel.points("resilient_client.failures")
    assert "api_key=REDACTED" in repr(told)  # the URL was told, masked
    assert CANARY not in repr(told)
    assert CANARY not in incident.to_json()
    otel.shutdown()


def test_a_breaker_opening_marks_down_only_the_provider_whose_calls_tripped_it(
    driver: Driver, upstream: RunningServer, clock: FakeClock
) -> None:
    # One monitor watches two clients, one per provider (region), with the same endpoint
    # keys: the failing region's breaker opens; the healthy one must not be paged.
    collect = Collect()
    monitor = IncidentMonitor(clock=clock, sinks=[collect])
    endpoints = {"GET /outage/{name}": POLICY}
    failing = driver.client(base_url=upstream.url, clock=clock, observers=[monitor],
                            endpoints=endpoints)  # fmt: skip
    healthy = driver.client(base_url=f"http://localhost:{upstream.port}", clock=clock,
                            observers=[monitor], endpoints=endpoints)  # fmt: skip
    upstream.app.set_failure_plan("region-a", rate=1.0, seed=1)
    upstream.app.set_failure_plan("region-b", rate=0.0, seed=1)
    try:
        for second in range(40):
            with contextlib.suppress(Exception):
                driver.request(failing, "GET", "/outage/region-a")
            assert driver.request(healthy, "GET", "/outage/region-b").status_code == 200
            clock.advance(1.0)
            if second % 3 == 2:
                assert monitor.flush()
    finally:
        monitor.close()
    assert {a.incident.provider for a in collect.alerts} == {f"127.0.0.1:{upstream.port}"}
    assert monitor.health()["GET /outage/{name} (localhost:" + f"{upstream.port})"].state == (
        "healthy"
    )
