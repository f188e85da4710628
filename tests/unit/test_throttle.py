"""Adaptive throttling (Google SRE book): local shedding from requests vs accepts."""

from __future__ import annotations

import random

import pydantic
import pytest

from resilient_client._throttle import AdaptiveThrottle, ThrottleState
from resilient_client.testing import FakeClock

BOOK = AdaptiveThrottle(min_requests=0, max_rejection_probability=1.0)


def feed(state: ThrottleState, requests: int, accepts: int) -> None:
    for i in range(requests):
        state.record(accepted=i < accepts)


@pytest.mark.parametrize(
    ("k", "requests", "accepts", "expected"),
    [
        (2.0, 100, 30, (100 - 60) / 101),
        (2.0, 100, 50, 0.0),
        (2.0, 100, 0, 100 / 101),
        (1.1, 200, 150, (200 - 165) / 201),
        (1.5, 7, 2, (7 - 3) / 8),
        (2.0, 0, 0, 0.0),
    ],
)
def test_probability_is_the_books_formula(
    k: float, requests: int, accepts: int, expected: float
) -> None:
    policy = AdaptiveThrottle(k=k, min_requests=0, max_rejection_probability=1.0)
    state = ThrottleState(policy, FakeClock())
    feed(state, requests, accepts)

    assert state.rejection_probability() == pytest.approx(expected, abs=1e-12)
    snap = state.snapshot()
    assert (snap.requests, snap.accepts, snap.rejected) == (requests, accepts, 0)


def test_probability_is_capped_by_max_rejection_probability() -> None:
    state = ThrottleState(AdaptiveThrottle(min_requests=0), FakeClock())
    feed(state, 100, 0)

    assert state.rejection_probability() == 0.9


def test_no_rejection_below_min_requests() -> None:
    state = ThrottleState(AdaptiveThrottle(min_requests=10), FakeClock())
    feed(state, 9, 0)
    assert state.rejection_probability() == 0.0
    assert not any(state.should_reject() for _ in range(50))

    state.record(accepted=False)
    assert state.rejection_probability() == pytest.approx(0.9)


def test_healthy_endpoint_never_draws_random_numbers() -> None:
    class NoRandom(FakeClock):
        def random(self) -> float:
            raise AssertionError("random() drawn while p == 0")

    state = ThrottleState(BOOK, NoRandom())
    feed(state, 100, 100)

    assert not any(state.should_reject() for _ in range(100))


def test_local_rejection_counts_as_a_request() -> None:
    state = ThrottleState(BOOK, FakeClock(seed=3))
    feed(state, 20, 0)
    before = state.snapshot().requests

    rejected = sum(state.should_reject() for _ in range(50))

    snap = state.snapshot()
    assert rejected > 0
    assert snap.requests == before + rejected
    assert snap.rejected == snap.rejected_total == state.rejected_total == rejected


@pytest.mark.parametrize("policy", [BOOK, AdaptiveThrottle()], ids=["book", "default-cap"])
def test_rejection_rate_converges_on_the_formula_at_80_percent_upstream_rejections(
    policy: AdaptiveThrottle,
) -> None:
    # Upstream turns away 80 % of what it gets, whatever the load. Because shed calls
    # count as requests, the book's p settles where p = (R − 2·0.2·(1 − p)·R) / (R + 1),
    # i.e. sheds nearly everything; the default caps it at 0.9.
    clock = FakeClock(seed=11)
    upstream = random.Random(5)
    state = ThrottleState(policy, clock)
    predicted: list[float] = []
    shed: list[bool] = []
    for _ in range(4800):  # 10 calls/s for 4 windows
        predicted.append(state.rejection_probability())
        rejected = state.should_reject()
        shed.append(rejected)
        if not rejected:
            state.record(accepted=upstream.random() < 0.2)
        clock.advance(0.1)

    last_window = slice(-1200, None)
    observed = sum(shed[last_window]) / 1200
    expected = sum(predicted[last_window]) / 1200
    requests = state.snapshot().requests
    fixed_point = min(0.6 * requests / (0.6 * requests + 1), policy.max_rejection_probability)
    assert observed == pytest.approx(expected, abs=0.02)
    assert expected == pytest.approx(fixed_point, abs=0.01)


def test_client_settles_at_k_times_what_the_upstream_accepts() -> None:
    # Upstream accepts at most 10 calls per second; the client is offered 100/s. The
    # book's promise: the client sends about k × 10 = 20/s and sheds the rest.
    clock = FakeClock(seed=2)
    state = ThrottleState(BOOK, clock)
    sent_per_second: list[int] = []
    for _second in range(600):
        sent = accepted = 0
        for _ in range(100):
            if not state.should_reject():
                sent += 1
                ok = accepted < 10
                accepted += ok
                state.record(accepted=ok)
            clock.advance(0.01)
        sent_per_second.append(sent)

    settled = sent_per_second[-120:]
    assert sum(settled) / len(settled) == pytest.approx(20.0, rel=0.1)


def test_probability_returns_to_zero_once_the_outage_leaves_the_window() -> None:
    clock = FakeClock(start=1003.7)
    state = ThrottleState(AdaptiveThrottle(), clock)
    for _ in range(600):  # 60 s of outage at 10 calls/s
        if not state.should_reject():
            state.record(accepted=False)
        clock.advance(0.1)
    assert state.rejection_probability() == 0.9

    clock.advance(60.0)  # 120 s after the outage began, 60 s after it ended
    assert state.rejection_probability() > 0
    clock.advance(60.0)  # the last outage request is a full window old
    assert state.rejection_probability() == 0.0
    assert state.snapshot().requests == 0


def test_after_recovery_accepts_bring_the_probability_back_to_zero() -> None:
    # A total outage, then a healthy upstream. The calls that still get through are
    # accepted; shedding stops within two windows (the cap keeps probes flowing).
    clock = FakeClock(seed=9)
    state = ThrottleState(AdaptiveThrottle(), clock)
    for _ in range(3000):  # 300 s at 10 calls/s, every sent call rejected
        if not state.should_reject():
            state.record(accepted=False)
        clock.advance(0.1)
    recovered_at = clock.monotonic()

    while state.rejection_probability() > 0:
        if not state.should_reject():
            state.record(accepted=True)
        clock.advance(0.1)
        assert clock.monotonic() - recovered_at < 2 * 120.0

    assert not any(state.should_reject() for _ in range(100))


def test_shedding_notice_is_given_once_per_episode() -> None:
    clock = FakeClock(seed=4)
    state = ThrottleState(AdaptiveThrottle(window=10.0), clock)
    feed(state, 50, 0)
    assert state.take_refusal_notice("GET /v1/search") is None

    # any() stops at the first shed request: the one that starts the episode.
    assert any(state.should_reject() for _ in range(1000)), (
        "no request was shed after 50 rejected ones"
    )
    notice = state.take_refusal_notice("GET /v1/search")
    assert notice is not None
    assert "'GET /v1/search'" in notice
    assert "\n" not in notice
    for _ in range(200):
        state.should_reject()
        assert state.take_refusal_notice("GET /v1/search") is None

    clock.advance(10.0)  # a full window without shedding: the outage is forgotten
    feed(state, 50, 0)
    assert any(state.should_reject() for _ in range(1000)), (
        "no request was shed in the second outage"
    )
    assert state.take_refusal_notice("GET /v1/search") is not None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("k", 0.5),
        ("k", float("inf")),
        ("window", 0.0),
        ("min_requests", -1),
        ("max_rejection_probability", 0.0),
        ("max_rejection_probability", 1.5),
    ],
)
def test_invalid_policy_names_the_field(field: str, value: float) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        AdaptiveThrottle(**{field: value})

    assert info.value.errors()[0]["loc"] == (field,)


def test_policy_defaults_match_the_contract() -> None:
    policy = AdaptiveThrottle()
    assert (policy.k, policy.window) == (2.0, 120.0)
    with pytest.raises(pydantic.ValidationError):
        policy.k = 3.0  # type: ignore[misc]
