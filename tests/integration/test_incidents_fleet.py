"""A fleet sharing one Redis incident store, and a provider's status page."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from incident_receivers import Collect, receiver
from redis_server import RedisServer, RedisServerUnavailable, redis_server

from resilient_client.chaos import RunningServer
from resilient_client.incidents import IncidentMonitor, RedisIncidentStore
from resilient_client.incidents._statuspage import StatusPage
from resilient_client.testing import FakeClock

WORKER = textwrap.dedent(
    """
    import sys, resilient_client as rc
    from resilient_client.incidents import IncidentMonitor, RedisIncidentStore, WebhookSink
    from resilient_client.testing import FakeClock
    redis_url, upstream, hook = sys.argv[1:4]
    clock = FakeClock()
    monitor = IncidentMonitor(clock=clock, store=RedisIncidentStore(redis_url, "fleet"),
                              sinks=[WebhookSink(hook)])
    client = rc.ResilientClient(base_url=upstream, clock=clock, observers=[monitor],
                                policy=rc.Policy(retry=rc.Retry(max_attempts=1), breaker=None))
    for second in range(30):
        client.get("/status/fleet/503")
        clock.advance(1.0)
        if second % 6 == 5:
            monitor.flush()
    assert monitor.flush()
    monitor.close()
    """
)


@pytest.fixture
def redis() -> object:
    try:
        with redis_server() as server:
            yield server
    except RedisServerUnavailable as exc:  # pragma: no cover - redis-server is installed
        pytest.skip(str(exc))


@pytest.fixture
def redis_url(redis: RedisServer) -> str:
    return redis.url


def test_three_processes_build_one_incident_and_send_one_trigger(
    redis_url: str, upstream: RunningServer
) -> None:
    with receiver(status=200) as hook:
        workers = [
            subprocess.Popen([sys.executable, "-c", WORKER, redis_url, upstream.url, hook.url])
            for _ in range(3)
        ]
        assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
        posts = hook.wait_for(1)
    assert [p.json()["action"] for p in posts] == ["trigger"]
    store = RedisIncidentStore(redis_url, "fleet")
    [incident] = store.incidents()
    assert incident.state == "open"
    assert incident.calls == 90 and incident.failed_calls == 90  # summed across the fleet
    assert incident.statuses == {503: 90}
    store.close()


def test_redis_down_keeps_incidents_in_process_with_one_warning(
    upstream: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    import resilient_client as rc

    clock = FakeClock()
    monitor = IncidentMonitor(clock=clock, store=RedisIncidentStore("redis://127.0.0.1:9/0", "x"))
    client = rc.ResilientClient(
        base_url=upstream.url,
        clock=clock,
        observers=[monitor],
        policy=rc.Policy(retry=rc.Retry(max_attempts=1), breaker=None),
    )
    for second in range(30):
        assert client.get("/status/down/503").status_code == 503  # never fails the call
        clock.advance(1.0)
        if second % 6 == 5:
            monitor.flush()
    monitor.close()
    assert monitor.incidents()[0].failed_calls == 30
    warnings = [r for r in caplog.records if "incident store" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize("stopped_at", [0, 20], ids=["before-the-trigger", "after-it"])
def test_every_trigger_sent_while_redis_was_down_is_resolved_under_its_dedup_key(
    redis: RedisServer, upstream: RunningServer, stopped_at: int
) -> None:
    import resilient_client as rc

    clock = FakeClock()
    collect = Collect()
    monitor = IncidentMonitor(
        clock=clock,
        sinks=[collect],
        store=RedisIncidentStore(redis.url, "restart"),
        rules=rc.HealthRules(recover_after=30.0),
    )
    client = rc.ResilientClient(
        base_url=upstream.url,
        clock=clock,
        observers=[monitor],
        policy=rc.Policy(retry=rc.Retry(max_attempts=1), breaker=None),
    )
    # Redis is stopped during the outage and comes back (empty, as a restart without
    # persistence leaves it) while the provider is still down; then the provider recovers.
    try:
        for second in range(200):
            if second == stopped_at:
                redis.stop()
            elif second == stopped_at + 15:
                redis.start()
            client.get("/status/restart/503" if second < 60 else "/status/restart/200")
            clock.advance(1.0)
            if second % 3 == 2:
                assert monitor.flush()
    finally:
        client.close()
        monitor.close()
    sent = [(alert.action, alert.dedup_key) for alert in collect.alerts]
    # One incident paged (not one per store it was kept in), and its page resolved.
    key = sent[0][1]
    assert [action for action, _ in sent if action != "update"] == ["trigger", "resolve"], sent
    assert {dedup_key for _, dedup_key in sent} == {key}, sent


STATUS = {"page": {"id": "x"}, "status": {"indicator": "major", "description": "Partial outage"}}
UNRESOLVED = {
    "incidents": [
        {
            "name": "Elevated API errors",
            "status": "investigating",
            "impact": "major",
            "created_at": "2026-01-01T00:00:00Z",
            "shortlink": "https://stspg.io/x",
        }
    ]
}


def test_the_status_page_is_read_into_the_reading() -> None:
    pages = {
        "/api/v2/status.json": (200, "application/json", json.dumps(STATUS).encode()),
        "/api/v2/incidents/unresolved.json": (
            200,
            "application/json",
            json.dumps(UNRESOLVED).encode(),
        ),
    }
    with receiver(pages=pages) as status:
        page = StatusPage({"*": status.url}, FakeClock())
        page.read_now()
        page.close()
    reading = page.latest("api.example.com")
    assert reading is not None and reading.acknowledged and reading.indicator == "major"
    assert [i.name for i in reading.incidents] == ["Elevated API errors"]


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b'{"status": 3}', b""])
def test_a_status_page_serving_garbage_changes_nothing(body: bytes) -> None:
    pages = {"/api/v2/status.json": (200, "text/html", body)}
    with receiver(pages=pages) as status:
        page = StatusPage({"*": status.url}, FakeClock())
        page.read_now()
        page.close()
    assert page.latest("api.example.com") is None


def test_an_unreachable_status_page_changes_nothing(tmp_path: Path) -> None:
    page = StatusPage({"*": "http://127.0.0.1:9"}, FakeClock())
    page.read_now()
    page.close()
    assert page.latest("x") is None
