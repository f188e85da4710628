"""The outbox against the chaos upstream's payments endpoint, which records one effect per
idempotency key: replay after an outage makes exactly one effect per parked write.

Tests marked ``needs_wiring`` park through the client (``Policy(outbox=True)``) and wait
for the pipeline to call the outbox; the others park with ``outbox.park()`` directly.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from breaker_support import free_port
from drivers import Driver
from outbox_support import EP, park_writes
from waiting import wait_until

import resilient_client as rc
from resilient_client.chaos import ChaosApp, RunningServer, serve
from resilient_client.outbox import Outbox, ReplayResult
from resilient_client.testing import FakeClock

pytestmark = pytest.mark.integration

_names = itertools.count()


@pytest.fixture
def name() -> str:
    return f"outbox-{next(_names)}"


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'outbox.db'}"


def replay(driver: Driver, outbox: Outbox, client: Any) -> ReplayResult:
    if driver.is_async:
        result: ReplayResult = driver.run(outbox.areplay(client))
        return result
    return outbox.replay(client)


def test_n_parked_writes_replayed_after_recovery_make_exactly_n_effects(
    driver: Driver, upstream: RunningServer, name: str, store: str
) -> None:
    outbox = Outbox(store)
    parked = park_writes(outbox, f"{upstream.url}/payments/{name}", 5)
    client = driver.client(headers={"Authorization": "Bearer replayer-own-token"})
    result = replay(driver, outbox, client)
    assert sorted(e.id for e in result.delivered) == sorted(e.id for e in parked)
    assert (result.dead, result.pending) == ([], [])
    assert upstream.app.effects(name) == 5
    assert outbox.entries() == []  # delivered entries leave the store
    seen = upstream.app.scenario(name).requests
    assert sorted(r.headers["idempotency-key"] for r in seen) == [f"k-{i}" for i in range(5)]
    assert {r.headers["authorization"] for r in seen} == {"Bearer replayer-own-token"}
    # A second replay finds nothing: no entry is sent twice.
    assert len(replay(driver, outbox, client)) == 0
    assert upstream.app.effects(name) == 5 and len(upstream.app.scenario(name).requests) == 5


def test_a_write_whose_answer_was_lost_is_answered_from_the_record_not_repeated(
    driver: Driver, upstream: RunningServer, name: str, store: str
) -> None:
    url = f"{upstream.url}/payments/{name}"
    with pytest.raises(httpx.TransportError):  # the effect commits, the answer is lost
        httpx.post(f"{url}?lose=1", json={"amount": 0}, headers={"Idempotency-Key": "k-0"})
    assert upstream.app.effects(name) == 1
    answers: list[httpx.Response] = []
    outbox = Outbox(store, on_delivered=lambda entry, response: answers.append(response))
    park_writes(outbox, url, 1)
    result = replay(driver, outbox, driver.client())
    assert len(result.delivered) == 1
    assert upstream.app.effects(name) == 1
    assert answers[0].headers["idempotent-replayed"] == "true"


def test_a_header_sent_as_non_ascii_bytes_is_replayed_byte_for_byte(
    driver: Driver, upstream: RunningServer, name: str, store: str
) -> None:
    # httpx sends header bytes as given; the outbox keeps "the other request headers, as
    # sent", so the replay must send the same bytes (not fail on every replay after).
    outbox = Outbox(store)
    customer = "Zoë Müller".encode()
    request = httpx.Request(
        "POST",
        f"{upstream.url}/payments/{name}",
        json={"amount": 1},
        headers=[(b"Idempotency-Key", b"k-0"), (b"X-Customer", customer)],
    )
    entry = outbox.park(request, endpoint=EP, idempotency_key="k-0")
    result = replay(driver, outbox, driver.client())
    assert [e.id for e in result.delivered] == [entry.id]
    assert upstream.app.effects(name) == 1
    (seen,) = upstream.app.scenario(name).requests
    assert seen.headers["x-customer"].encode("latin-1") == customer


def test_an_entry_past_max_age_dies_without_being_sent(
    driver: Driver, upstream: RunningServer, name: str, store: str
) -> None:
    clock = FakeClock(start_wall=time.time())
    reasons: list[str] = []
    outbox = Outbox(store, clock=clock, on_dead=lambda entry, reason: reasons.append(reason))
    (entry,) = park_writes(outbox, f"{upstream.url}/payments/{name}", 1)
    clock.advance(86400.0 + 1.0)
    result = replay(driver, outbox, driver.client())
    assert [e.id for e in result.dead] == [entry.id]
    assert upstream.app.scenario(name).attempts == 0
    assert reasons == ["older than max_age (86400 s); not sent"]
    assert [e.state for e in outbox.entries()] == ["dead"]


def test_a_422_on_replay_kills_the_entry_and_keeps_its_problem(
    driver: Driver, upstream: RunningServer, name: str, store: str
) -> None:
    url = f"{upstream.url}/payments/{name}"
    httpx.post(url, json={"amount": "other"}, headers={"Idempotency-Key": "k-0"})
    outbox = Outbox(store)
    (entry,) = park_writes(outbox, url, 1)
    result = replay(driver, outbox, driver.client())
    (dead,) = result.dead
    assert dead.id == entry.id and dead.reason == "status 422 is not retryable"
    assert dead.problem is not None and dead.problem.status == 422
    assert dead.problem.type is not None and "idempotency-key-reused" in dead.problem.type
    (kept,) = outbox.entries()
    assert kept.state == "dead" and kept.problem == dead.problem
    assert upstream.app.effects(name) == 1  # only the first request's


def test_a_provider_still_failing_keeps_entries_pending_and_is_probed_once(
    driver: Driver, upstream: RunningServer, name: str, store: str
) -> None:
    clock = FakeClock(start_wall=time.time())
    outbox = Outbox(store, clock=clock)
    park_writes(outbox, f"{upstream.url}/status/{name}/503", 4)
    client = driver.client(policy=rc.Policy(retry=None))
    result = replay(driver, outbox, client)
    assert (len(result.pending), result.delivered, result.dead) == (4, [], [])
    assert upstream.app.scenario(name).attempts == 1  # the rest waited for the next replay
    (sent,) = [e for e in result.pending if e.replays == 1]
    assert sent.last_error == "status 503" and sent.due >= clock.wall() + 2.5
    assert len(replay(driver, outbox, client)) == 3  # the held ones are due; one probe again
    assert upstream.app.scenario(name).attempts == 2


def test_background_replay_delivers_parked_writes(
    driver: Driver, upstream: RunningServer, name: str, store: str
) -> None:
    outbox = Outbox(store)
    park_writes(outbox, f"{upstream.url}/payments/{name}", 3)
    client = driver.client()
    if driver.is_async:

        async def run() -> None:
            async with outbox.start(client, interval=0.05):
                for _ in range(500):
                    if upstream.app.effects(name) == 3:
                        break
                    await asyncio.sleep(0.01)

        driver.run(run())
    else:
        with outbox.start(client, interval=0.05):
            wait_until(lambda: upstream.app.effects(name) == 3)
    assert upstream.app.effects(name) == 3 and outbox.entries() == []


# -- parking through the client: waits for the pipeline wiring -------------------------------


class PaymentsOutage(ChaosApp):
    """The chaos upstream, with ``/payments`` answering 503 while ``down``."""

    down = True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.down and scope["type"] == "http" and scope["path"].startswith("/payments/"):
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await super().__call__(scope, receive, send)


@pytest.fixture
def outage() -> Iterator[RunningServer]:
    with serve(PaymentsOutage()) as server:
        yield server


def _parking_client(driver: Driver, base_url: str, outbox: Outbox) -> Any:
    # A breaker that opens on 5 failures in a row, for 30 s: a count the tests can state.
    breaker = rc.Breaker(window="consecutive", failure_threshold=5, reset_timeout=30.0)
    return driver.client(
        base_url=base_url,
        outbox=outbox,
        clock=FakeClock(),  # the retries' backoff passes at once
        endpoints={EP: rc.Policy(outbox=True, retry=rc.Retry(max_attempts=2), breaker=breaker)},  # type: ignore[call-arg]
    )


def test_an_outage_parks_n_keyed_posts_and_replay_makes_exactly_n_effects(
    driver: Driver, outage: RunningServer, name: str, store: str
) -> None:
    outbox = Outbox(store)
    client = _parking_client(driver, outage.url, outbox)
    parked = []
    for i in range(4):
        with pytest.raises(driver.ns.WriteParked) as caught:
            driver.request(client, "POST", f"/payments/{name}", json={"amount": i})
        parked.append(caught.value.entry)
    # Two calls of two attempts, then the breaker (5 failures in a row) opens on
    # the third call's first attempt, and refuses the fourth call outright: all parked.
    assert [e.attempts for e in parked] == [2, 2, 1, 0]
    assert [e.last_error for e in parked] == ["status 503"] * 3 + ["CircuitOpenError"]
    assert outage.app.effects(name) == 0
    assert sorted(e.id for e in outbox.entries()) == sorted(e.id for e in parked)
    outage.app.down = False  # type: ignore[attr-defined]
    client.pipeline.clock.advance(31.0)  # past the breaker's open period: it lets a probe by
    result = replay(driver, outbox, client)
    assert len(result.delivered) == 4 and outage.app.effects(name) == 4
    keys = {r.headers["idempotency-key"] for r in outage.app.scenario(name).requests}
    assert keys == {e.idempotency_key for e in parked}


def test_a_refused_connection_parks_the_write(driver: Driver, store: str) -> None:
    outbox = Outbox(store)
    client = _parking_client(driver, f"http://127.0.0.1:{free_port()}", outbox)
    with pytest.raises(driver.ns.WriteParked) as caught:
        driver.request(client, "POST", "/payments/x", json={"amount": 1})
    assert caught.value.entry.last_error == "ConnectError"
    assert len(outbox.entries()) == 1


def test_a_4xx_is_never_parked(
    driver: Driver, upstream: RunningServer, name: str, store: str
) -> None:
    outbox = Outbox(store)
    client = _parking_client(driver, upstream.url, outbox)
    url = f"/payments/{name}"
    headers = {"Idempotency-Key": "same"}
    driver.request(client, "POST", url, json={"amount": 1}, headers=headers)
    response = driver.request(client, "POST", url, json={"amount": 2}, headers=headers)
    assert response.status_code == 422
    assert outbox.entries() == []


def test_a_replayed_write_is_never_parked_again(
    driver: Driver, outage: RunningServer, name: str, store: str
) -> None:
    outbox = Outbox(store)
    client = _parking_client(driver, outage.url, outbox)
    with pytest.raises(driver.ns.WriteParked):
        driver.request(client, "POST", f"/payments/{name}", json={"amount": 1})
    result = replay(driver, outbox, client)  # still down
    assert len(result.pending) == 1 and len(outbox.entries()) == 1


def test_a_replay_send_to_a_stalled_provider_ends_with_its_lease(
    driver: Driver, upstream: RunningServer, name: str, store: str
) -> None:
    # The default 30 s deadline would outlast the lease: by then another replayer may
    # have claimed the entry and be sending it too.
    outbox = Outbox(store, lease=0.5)
    (parked,) = park_writes(outbox, f"{upstream.url}/stall/{name}?seconds=10", 1)
    client = driver.client()
    started = time.monotonic()
    result = replay(driver, outbox, client)
    took = time.monotonic() - started
    assert 0.4 < took < 3.0  # the lease's end, with room for a busy machine; not 10 s
    (pending,) = result.pending
    assert pending.id == parked.id and pending.last_error == "DeadlineExceeded"
    assert len(upstream.app.scenario(name).requests) == 1  # one send, abandoned in time
