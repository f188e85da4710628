"""Hedging's rules (``_hedging.py``) as tables: which calls may hedge, the delay, when a
race ends; the policy's validation; and an async race's end when its caller is cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pydantic
import pytest

import resilient_client as rc
from resilient_client._hedging import HedgeState, LatencySketch, ends_race, may_hedge, next_wait
from resilient_client._retry import Verdict


@pytest.mark.parametrize(
    ("method", "keyed", "replayable", "hedges"),
    [
        ("GET", False, True, True),
        ("HEAD", False, True, True),
        ("PUT", False, True, True),
        ("DELETE", False, True, True),
        ("POST", False, True, False),  # may have been processed: never twice at once
        ("PATCH", False, True, False),
        ("POST", True, True, True),  # the key makes it safe to send again
        ("PATCH", True, True, True),
        ("GET", False, False, False),  # a one-shot body cannot be sent twice
        ("POST", True, False, False),
    ],
)
def test_which_calls_may_hedge(method: str, keyed: bool, replayable: bool, hedges: bool) -> None:
    assert may_hedge(method, keyed, replayable) is hedges


@pytest.mark.parametrize(
    ("hedges", "max_hedges", "wait"),
    [(0, 1, 0.2), (1, 1, None), (1, 3, 0.2), (3, 3, None)],
)
def test_the_wait_before_the_next_hedge(hedges: int, max_hedges: int, wait: float | None) -> None:
    assert next_wait(hedges, max_hedges, 0.2) == wait


def _verdicts(retry: bool) -> Any:
    return lambda outcome: Verdict(retry, "status_503" if retry else "success")


@pytest.mark.parametrize(
    ("retryable", "others", "ends"),
    [
        (False, 1, True),  # final (a success, a 404): it wins, the others are cancelled
        (False, 0, True),
        (True, 1, False),  # a retryable failure while another runs: that one goes on
        (True, 0, True),  # nothing else runs: the retry rules take it from here
    ],
)
def test_which_outcome_ends_the_race(retryable: bool, others: int, ends: bool) -> None:
    outcome = httpx.Response(503 if retryable else 200)
    assert ends_race(outcome, others, _verdicts(retryable)) is ends


def test_a_fixed_delay_is_the_delay() -> None:
    assert HedgeState(rc.Hedging(delay=0.25)).delay() == 0.25


def test_p95_waits_for_enough_samples_then_follows_them() -> None:
    state = HedgeState(rc.Hedging(delay="p95", initial_delay=0.4, min_samples=20))
    for _ in range(19):
        state.answered(0.01)
    assert state.delay() == 0.4  # not enough samples yet
    state.answered(0.01)
    for i in range(80):
        state.answered(0.1 if i % 20 == 0 else 0.02)  # 4 slow ones in 100
    assert state.delay() == pytest.approx(0.02)  # a 4 % tail stays above the p95
    for _ in range(16):
        state.answered(0.1)
    assert state.delay() == pytest.approx(0.1)  # 20 slow in the last 116: p95 is slow


def test_p95_never_goes_below_its_floor() -> None:
    state = HedgeState(rc.Hedging(delay="p95", min_delay=0.05, min_samples=1))
    for _ in range(32):
        state.answered(0.001)
    assert state.delay() == 0.05


def test_the_sketch_is_bounded_to_its_last_samples() -> None:
    sketch = LatencySketch()
    for _ in range(1000):
        sketch.add(5.0)
    for _ in range(256):
        sketch.add(0.01)
    assert len(sketch) == 256
    assert sketch.p95() == 0.01  # the old samples are gone


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"delay": 0}, "delay"),
        ({"delay": -1.0}, "delay"),
        ({"delay": float("inf")}, "delay"),
        ({"delay": "p99"}, "delay"),
        ({"max_hedges": 0}, "max_hedges"),
        ({"max_hedges": 5}, "max_hedges"),
        ({"min_delay": 0}, "min_delay"),
        ({"initial_delay": 0}, "initial_delay"),
        ({"min_samples": 0}, "min_samples"),
        ({"spread": 1}, "spread"),
    ],
)
def test_a_bad_hedging_policy_names_its_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        rc.Hedging(**kwargs)


def test_hedging_merges_like_any_policy() -> None:
    base = rc.Policy(hedging=rc.Hedging(delay=0.3, max_hedges=2))
    endpoints = {"GET /a": rc.Policy(hedging=rc.Hedging(delay=0.1)), "GET /b": rc.Policy()}
    transport = rc.ResilientTransport(policy=base, endpoints=endpoints)
    table = transport.pipeline.endpoints
    a, b = (table.match(httpx.Request("GET", f"http://h/{p}")) for p in "ab")
    assert a.policy.hedging == rc.Hedging(delay=0.1, max_hedges=2)
    assert b.policy.hedging == rc.Hedging(delay=0.3, max_hedges=2)


def test_a_policy_without_hedging_keeps_no_hedge_state() -> None:
    transport = rc.ResilientTransport()
    endpoint = transport.pipeline.endpoints.match(httpx.Request("GET", "http://h/"))
    assert endpoint.hedge is None


def test_hedging_from_toml(tmp_path: Any) -> None:
    path = tmp_path / "client.toml"
    path.write_text(
        '[policy.hedging]\ndelay = "p95"\nmax_hedges = 2\n\n'
        '[endpoints."GET /search".hedging]\ndelay = 0.2\n\n'
        '[endpoints."POST /pay"]\nhedging = false\n'
    )
    policies = rc.load_config(path).effective()
    assert policies["default"].hedging == rc.Hedging(delay="p95", max_hedges=2)
    assert policies["GET /search"].hedging == rc.Hedging(delay=0.2, max_hedges=2)
    assert policies["POST /pay"].hedging is None


def test_a_misspelt_delay_in_toml_names_the_field(tmp_path: Any) -> None:
    path = tmp_path / "client.toml"
    path.write_text('[policy.hedging]\ndelay = "p99"\n')
    with pytest.raises(ValueError, match=r"policy\.hedging\.delay"):
        rc.load_config(path)


# -- the async race: a caller cancelled while the losers let go -------------------------


class _SlowToLetGo(httpx.AsyncBaseTransport):
    """The first attempt stalls, and once cancelled takes its time to let go of its
    connection (a TLS close, say); every other attempt answers 200 at once."""

    def __init__(self) -> None:
        self.sent = 0
        self.letting_go = asyncio.Event()
        self.let_go = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.sent == 1:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.letting_go.set()
                await self.let_go.wait()
                raise
        return httpx.Response(200)


async def test_a_caller_cancelled_while_the_loser_lets_go_is_cancelled() -> None:
    inner = _SlowToLetGo()
    # (real time: the hedge starts 10 ms after the stalled first attempt)
    policy = rc.Policy(hedging=rc.Hedging(delay=0.01))
    async with rc.AsyncResilientClient(transport=inner, policy=policy) as client:
        call = asyncio.ensure_future(client.get("https://api.example.com/v1/items"))
        await inner.letting_go.wait()  # the hedge won; the race waits for the loser
        call.cancel()
        await asyncio.sleep(0)
        inner.let_go.set()
        with pytest.raises(asyncio.CancelledError):
            await call  # not the winner's answer, as if it had never been cancelled
