"""What holds a replay back: the endpoint's retry budget (a replay is a retry of a call that
failed, so a provider just back is not flooded by the outbox), and, for the background
replayer, an incident monitor that does not yet judge the endpoint healthy."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

import resilient_client as rc
from resilient_client.outbox import Outbox
from resilient_client.testing import FakeClock

EP = "POST /payments/{name}"


def _parked(tmp_path: Path, clock: FakeClock, count: int) -> Outbox:
    outbox = Outbox(f"sqlite:///{tmp_path / 'outbox.db'}", clock=clock)
    for i in range(count):
        key = f"key-{i}"
        request = httpx.Request(
            "POST", "https://api.test/payments/a", json={"i": i}, headers={"Idempotency-Key": key}
        )
        outbox.park(request, endpoint=EP, idempotency_key=key, attempts=3, last_error="status 503")
    return outbox


def _client(clock: FakeClock, sent: list[httpx.Request], **policy: Any) -> rc.ResilientClient:
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={"ok": True})

    return rc.ResilientClient(
        transport=httpx.MockTransport(answer),
        clock=clock,
        endpoints={EP: rc.Policy(**policy)},
    )


def test_a_budget_that_grants_no_retry_holds_every_replay(tmp_path: Path) -> None:
    clock = FakeClock()
    outbox = _parked(tmp_path, clock, 3)
    sent: list[httpx.Request] = []
    stingy = rc.RetryBudget(ratio=0.0, min_per_second=0.0)
    result = outbox.replay(_client(clock, sent, budget=stingy))
    assert sent == [] and result.delivered == []
    assert [e.state for e in outbox.entries()] == ["pending"] * 3  # due again next round


def test_a_budget_with_room_lets_the_replays_through(tmp_path: Path) -> None:
    clock = FakeClock()
    outbox = _parked(tmp_path, clock, 3)
    sent: list[httpx.Request] = []
    result = outbox.replay(_client(clock, sent))
    assert len(sent) == 3 and len(result.delivered) == 3
    assert {r.headers["idempotency-key"] for r in sent} == {"key-0", "key-1", "key-2"}


def test_the_background_replayer_waits_while_the_monitor_judges_the_endpoint_unwell(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    outbox = _parked(tmp_path, clock, 1)
    states = {EP: SimpleNamespace(state="down")}
    monitor = SimpleNamespace(health=lambda: states, incidents=lambda open_only=False: [])
    client = rc.ResilientClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(201)),
        clock=clock,
        endpoints={EP: rc.Policy()},
        observers=[monitor],
    )
    assert EP in outbox._held(client)  # the background replayer's own rule
    states[EP] = SimpleNamespace(state="healthy")
    assert EP not in outbox._held(client)
