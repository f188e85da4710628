"""The per-endpoint breaker in one process: policy, trip rules, half-open, observation.

Every test runs on a fake clock except the two no-serialization tests, which show that
concurrent calls are not serialized by the breaker's lock: all of them hold a permit at
once (a barrier they all must reach), which a lock held across the call would forbid.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pybreaker
import pytest
from breaker_support import EP, breaker_over, call, run_fleet
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from resilient_client._breaker import (
    Breaker,
    BreakerRegistry,
    BreakerState,
    EndpointBreaker,
    Permit,
    Rejection,
    classify_for_breaker,
)
from resilient_client._breaker._circuit import FAILED, SLOW, Circuit, describe_trip
from resilient_client.testing import FakeClock


def make(clock: FakeClock, **policy: Any) -> EndpointBreaker:
    return breaker_over(None, clock, **policy)


def admitted(result: Permit | Rejection) -> bool:
    return isinstance(result, Permit)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- policy ------------------------------------------------------------------------------


def test_policy_defaults_match_the_contract() -> None:
    # The scenario benchmark's choice (README, "How it behaves in an outage").
    policy = Breaker()
    assert (policy.window, policy.window_size, policy.minimum_calls) == ("time", 5.0, 100)
    assert (policy.failure_rate_threshold, policy.reset_timeout) == (0.7, 1.0)
    assert (policy.half_open_max_calls, policy.success_threshold) == (1, 1)
    assert policy.reset_timeout_max is None
    assert policy.failure_threshold == 5  # for window="consecutive"
    assert policy.slow_call_duration is None
    assert policy.failure_on_429 is False
    assert policy.model_fields_set == set()


def test_a_count_window_not_sized_holds_100_calls() -> None:
    policy = Breaker(window="count")
    assert (policy.window_size, policy.minimum_calls) == (100, 100)
    assert isinstance(policy.window_size, int)
    assert policy.model_fields_set == {"window"}  # the size is derived, not given


def test_a_failure_threshold_without_a_window_means_failures_in_a_row() -> None:
    # Breaker(failure_threshold=N) was a streak breaker before the default window became
    # "time"; it stays one, whatever else it is given.
    assert Breaker(failure_threshold=3).window == "consecutive"
    assert Breaker(failure_threshold=3, reset_timeout=30.0).window == "consecutive"
    assert "window" not in Breaker(failure_threshold=3).model_fields_set
    assert Breaker(failure_threshold=3, window="time").window == "time"
    assert Breaker(reset_timeout=30.0).window == "time"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"reset_timeout": 0}, "reset_timeout"),
        ({"reset_timeout": float("nan")}, "reset_timeout"),
        ({"reset_timeout": float("inf")}, "reset_timeout"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"window": "sliding"}, "window"),
        ({"window": "count", "window_size": 10.5}, "window_size"),
        ({"window": "time", "window_size": 0}, "window_size"),
        ({"window": "time", "window_size": float("inf")}, "window_size"),
        ({"window": "count", "window_size": 5, "minimum_calls": 6}, "minimum_calls"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"failure_rate_threshold": 0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"slow_call_duration": 0}, "slow_call_duration"),
        ({"slow_call_rate_threshold": 0}, "slow_call_rate_threshold"),
        ({"half_open_calls": 2}, "half_open_calls"),
    ],
)
def test_invalid_policy_is_rejected_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Breaker(**kwargs)
    assert field in {str(loc) for error in info.value.errors() for loc in error["loc"]}


def test_an_explicit_minimum_calls_above_a_count_window_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError) as info:
        Breaker(window="count", window_size=5, minimum_calls=10)
    (error,) = info.value.errors()
    assert error["loc"] == ("minimum_calls",)
    assert "minimum_calls (10)" in error["msg"] and "window_size (5)" in error["msg"]


def test_a_default_minimum_calls_is_clamped_to_a_smaller_count_window() -> None:
    policy = Breaker(window="count", window_size=5)
    assert policy.minimum_calls == 5
    assert "minimum_calls" not in policy.model_fields_set  # still "not given"
    assert Breaker(window="count", window_size=5, minimum_calls=3).minimum_calls == 3
    assert Breaker(window="count", window_size=50).minimum_calls == 50
    assert Breaker(window="count", window_size=500).minimum_calls == 100
    assert Breaker(window="time", window_size=2.0).minimum_calls == 100  # seconds, not calls
    assert Breaker(window="count", window_size=5) == Breaker(
        window="count", window_size=5, minimum_calls=5
    )


def test_a_small_count_window_with_the_default_minimum_can_trip(clock: FakeClock) -> None:
    breaker = make(clock, window="count", window_size=5)
    for _ in range(4):
        call(breaker, "failure")
    assert breaker.snapshot().state == "closed"  # 4 calls: fewer than the window
    call(breaker, "failure")
    assert breaker.snapshot().state == "open"


def test_policy_is_frozen_and_a_count_window_size_becomes_an_int() -> None:
    policy = Breaker(window="count", window_size=20.0, minimum_calls=20)
    assert policy.window_size == 20
    assert isinstance(policy.window_size, int)
    with pytest.raises(ValidationError):
        policy.failure_threshold = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("status", "on_429", "expected"),
    [
        (200, False, "success"),
        (204, False, "success"),
        (304, False, "success"),
        (500, False, "failure"),
        (502, False, "failure"),
        (503, False, "failure"),
        (504, False, "failure"),
        (501, False, "ignored"),
        (505, False, "ignored"),
        (408, False, "failure"),
        (400, False, "ignored"),
        (404, False, "ignored"),
        (422, False, "ignored"),
        (429, False, "ignored"),
        (429, True, "failure"),
        (503, True, "failure"),
        (404, True, "ignored"),
    ],
)
def test_classify_for_breaker(status: int, on_429: bool, expected: str) -> None:
    policy = Breaker(failure_on_429=on_429)
    # As the pipeline calls it (it classifies exceptions itself)...
    assert classify_for_breaker(policy, status, False) == expected
    assert classify_for_breaker(policy, status) == expected


@pytest.mark.parametrize("status", [200, 404, 429, 503])
def test_a_transport_error_is_a_failure_whatever_the_status(status: int) -> None:
    assert classify_for_breaker(Breaker(), status, True) == "failure"


# -- consecutive -------------------------------------------------------------------------


def test_consecutive_failures_open_the_breaker(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=3, reset_timeout=10.0)
    for _ in range(3):
        assert admitted(call(breaker, "failure"))
    rejection = breaker.admit()
    assert isinstance(rejection, Rejection)
    assert rejection.endpoint == EP
    assert rejection.retry_at == pytest.approx(clock.monotonic() + 10.0)
    assert rejection.state == "open"


def test_a_success_breaks_the_streak(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=3)
    for outcome in ("failure", "failure", "success", "failure", "failure"):
        call(breaker, outcome)
    assert breaker.snapshot().state == "closed"
    assert breaker.snapshot().failures == 2


def test_ignored_outcomes_neither_count_nor_break_the_streak(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2)
    call(breaker, "failure")
    call(breaker, "ignored")
    call(breaker, "failure")
    assert breaker.snapshot().state == "open"


def test_an_outcome_from_before_a_trip_does_not_count_after_it(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2, reset_timeout=1.0)
    late = breaker.admit()
    assert isinstance(late, Permit)
    call(breaker, "failure")
    call(breaker, "failure")
    clock.advance(1.0)
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    assert probe.probe
    breaker.record(late, "failure", 0.0)  # issued two generations ago
    breaker.record(probe, "success", 0.0)
    assert breaker.snapshot().state == "closed"


# -- rate windows ------------------------------------------------------------------------


def test_count_window_waits_for_minimum_calls(clock: FakeClock) -> None:
    breaker = make(clock, window="count", window_size=10, minimum_calls=4)
    for _ in range(3):
        call(breaker, "failure")
    assert breaker.snapshot().state == "closed"  # 100% failures, but only 3 calls
    call(breaker, "failure")
    assert breaker.snapshot().state == "open"


def test_count_window_trips_on_the_failure_rate(clock: FakeClock) -> None:
    breaker = make(
        clock, window="count", window_size=10, minimum_calls=10, failure_rate_threshold=0.5
    )
    for outcome in ["success"] * 6 + ["failure"] * 4:
        call(breaker, outcome)  # type: ignore[arg-type]
    snap = breaker.snapshot()
    assert (snap.state, snap.calls, snap.failures, snap.failure_rate) == ("closed", 10, 4, 0.4)
    call(breaker, "failure")  # evicts a success: 5 of 10
    assert breaker.snapshot().state == "open"


def test_count_window_forgets_what_fell_out_of_it(clock: FakeClock) -> None:
    breaker = make(clock, window="count", window_size=4, minimum_calls=4)
    for outcome in ["failure"] * 1 + ["success"] * 4:
        call(breaker, outcome)  # type: ignore[arg-type]
    snap = breaker.snapshot()
    assert (snap.calls, snap.failures) == (4, 0)


def test_time_window_counts_only_the_last_window_size_seconds(clock: FakeClock) -> None:
    breaker = make(
        clock, window="time", window_size=10.0, minimum_calls=4, failure_rate_threshold=0.5
    )
    for _ in range(3):
        call(breaker, "failure")
    clock.advance(11.0)  # those failures leave the window
    call(breaker, "failure")
    for _ in range(3):
        call(breaker, "success")
    snap = breaker.snapshot()
    assert (snap.state, snap.calls, snap.failures) == ("closed", 4, 1)
    call(breaker, "failure")
    call(breaker, "failure")  # 3 of 6 within the window
    assert breaker.snapshot().state == "open"


def test_time_window_evicts_bucket_by_bucket(clock: FakeClock) -> None:
    breaker = make(clock, window="time", window_size=10.0, minimum_calls=100)
    call(breaker, "failure")
    clock.advance(5.0)
    call(breaker, "success")
    clock.advance(5.5)  # the first bucket left, the second is still inside
    snap = breaker.snapshot()
    assert (snap.calls, snap.failures) == (1, 0)


def test_slow_calls_trip_on_the_slow_call_rate(clock: FakeClock) -> None:
    breaker = make(
        clock,
        window="count",
        window_size=10,
        minimum_calls=5,
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.6,
    )
    for duration in (0.1, 0.1, 1.0, 2.0):
        call(breaker, "success", duration)
    assert breaker.snapshot().slow_calls == 2
    call(breaker, "success", 1.5)  # 3 of 5 slow, none failed
    snap = breaker.snapshot()
    assert snap.state == "open"


@pytest.mark.parametrize("window", ["count", "time"])
def test_a_rate_exactly_at_the_threshold_trips(clock: FakeClock, window: str) -> None:
    # In floating point 0.07 * 100 is 7.000000000000001: 7 failures in 100 calls missed it.
    breaker = make(
        clock, window=window, window_size=100, minimum_calls=100, failure_rate_threshold=0.07
    )
    for outcome in ["success"] * 93 + ["failure"] * 6:
        call(breaker, outcome)  # type: ignore[arg-type]
    assert breaker.snapshot().state == "closed"
    call(breaker, "failure")
    snap = breaker.snapshot()
    assert snap.state == "open"


def test_a_slow_call_rate_exactly_at_the_threshold_trips(clock: FakeClock) -> None:
    breaker = make(
        clock,
        window="count",
        window_size=100,
        minimum_calls=100,
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.07,
    )
    for duration in [0.1] * 93 + [1.0] * 6:
        call(breaker, "success", duration)
    assert breaker.snapshot().state == "closed"
    call(breaker, "success", 1.0)
    assert breaker.snapshot().state == "open"


def test_a_tiny_rate_threshold_does_not_trip_without_failures(clock: FakeClock) -> None:
    # Below a millionth: it must still take a failure to trip.
    breaker = make(
        clock, window="count", window_size=10, minimum_calls=10, failure_rate_threshold=1e-9
    )
    for _ in range(10):
        call(breaker, "success")
    assert breaker.snapshot().state == "closed"
    call(breaker, "failure")
    assert breaker.snapshot().state == "open"


def test_slow_calls_are_not_detected_without_a_duration(clock: FakeClock) -> None:
    breaker = make(clock, window="count", window_size=5, minimum_calls=5)
    for _ in range(5):
        call(breaker, "success", 1000.0)
    assert breaker.snapshot().slow_calls == 0


def test_a_slow_success_extends_a_consecutive_streak(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2, slow_call_duration=1.0)
    call(breaker, "failure")
    call(breaker, "success", 1.0)
    assert breaker.snapshot().state == "open"


# -- a time window's successes, counted without the lock ------------------------------------

# The default window, scaled down so a few calls can trip it; slow calls detected too.
SMALL_TIME_WINDOW = {
    "window": "time",
    "window_size": 2.0,
    "minimum_calls": 5,
    "failure_rate_threshold": 0.6,
    "slow_call_duration": 1.0,
    "slow_call_rate_threshold": 0.5,
    "reset_timeout": 0.5,
}

# One step of a call story: an outcome with its duration, or seconds for the clock.
STEPS = st.one_of(
    st.sampled_from([("success", 0.01), ("failure", 0.01), ("success", 1.0), ("ignored", 0.0)]),
    st.floats(min_value=0.01, max_value=1.5).map(lambda seconds: ("advance", seconds)),
)


@given(st.lists(STEPS, max_size=120))
def test_a_time_window_decides_as_if_every_success_took_the_lock(
    steps: list[tuple[str, float]],
) -> None:
    # The reference: the same state machine with every outcome recorded under its rules.
    clock = FakeClock()
    breaker = make(clock, **SMALL_TIME_WINDOW)
    reference = Circuit(Breaker(**SMALL_TIME_WINDOW))
    for number, (step, value) in enumerate(steps):
        now = clock.monotonic()
        if step == "advance":
            clock.advance(value)
            continue
        call(breaker, step, value)  # type: ignore[arg-type]
        admission = reference.admit(now, f"p{number}")
        if admission.kind != "rejected":
            token = f"p{number}" if admission.kind == "probe" else None
            bits = None if step == "ignored" else (FAILED if step == "failure" else 0)
            if bits is not None and value >= 1.0:
                bits |= SLOW
            reference.record(admission.generation, token, bits, now)
        reference.window.expire(now)
        window, snap = reference.window, breaker.snapshot()
        assert (snap.state, snap.failures, snap.calls, snap.slow_calls) == (
            reference.state,
            window.failures,
            window.calls,
            window.slow,
        )
        assert snap.opened_by == (describe_trip(reference.trip) if snap.state != "closed" else None)


class _NoLock:
    """Stands in for the breaker's lock where it must not be taken."""

    def __enter__(self) -> None:
        raise AssertionError("the lock was taken")

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_fast_success_in_a_closed_time_window_takes_no_lock(clock: FakeClock) -> None:
    breaker = make(clock)  # the default policy: a time window
    call(breaker, "success")  # the first of a bucket marks it, under the lock
    lock, breaker._lock = breaker._lock, _NoLock()  # type: ignore[assignment]
    for _ in range(50):
        call(breaker, "success")
    breaker._lock = lock
    assert breaker.snapshot().calls == 51


def test_a_success_filling_the_window_to_its_minimum_trips_it(clock: FakeClock) -> None:
    # Counted without the lock, it still applies the trip rule: 7 of 10 failed is 70 %.
    breaker = make(clock, window="time", window_size=5.0, minimum_calls=10)
    for outcome in ["success"] * 2 + ["failure"] * 7:
        call(breaker, outcome)  # type: ignore[arg-type]
    assert breaker.snapshot().state == "closed"
    call(breaker, "success")
    snap = breaker.snapshot()
    assert (snap.state, snap.opened_by) == ("open", "7 of 10 calls failed (70 %)")


def test_a_fast_success_from_before_a_trip_counts_in_no_later_window(clock: FakeClock) -> None:
    # Counted without the lock, it must still be of the current generation.
    breaker = make(clock, minimum_calls=2, failure_rate_threshold=0.5, reset_timeout=1.0)
    late = breaker.admit()
    assert isinstance(late, Permit)
    call(breaker, "failure")
    call(breaker, "failure")
    assert not admitted(breaker.admit())
    clock.advance(1.0)
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    breaker.record(probe, "success", 0.0)
    fresh = breaker.admit()  # lock-free again, with the new generation's permit
    assert isinstance(fresh, Permit)
    assert (fresh.probe, fresh.generation) == (False, probe.generation)
    breaker.record(late, "success", 0.0)
    assert (breaker.snapshot().state, breaker.snapshot().calls) == ("closed", 0)
    breaker.record(fresh, "success", 0.0)
    assert breaker.snapshot().calls == 1


def test_threads_counting_successes_without_the_lock_lose_none() -> None:
    clock = FakeClock()  # still: every success falls in one bucket
    breaker = make(clock)
    call(breaker, "success")

    def successes(index: int, start: threading.Barrier) -> None:
        start.wait()
        for _ in range(2000):
            call(breaker, "success")
        call(breaker, "failure")

    run_fleet(successes, workers=8, processes=False, timeout=20.0)
    snap = breaker.snapshot()
    assert (snap.state, snap.calls, snap.failures) == ("closed", 1 + 8 * 2001, 8)


# -- half-open ---------------------------------------------------------------------------


def open_breaker(clock: FakeClock, **policy: Any) -> EndpointBreaker:
    breaker = make(clock, failure_threshold=1, reset_timeout=5.0, **policy)
    call(breaker, "failure")
    assert breaker.snapshot().state == "open"
    return breaker


def test_open_becomes_half_open_after_reset_timeout(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(4.999)
    assert not admitted(breaker.admit())
    clock.advance(0.001)
    assert breaker.snapshot().state == "half_open"
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    assert probe.probe


@pytest.mark.parametrize("max_calls", [1, 3])
def test_half_open_admits_exactly_max_calls_of_20_concurrent_threads(
    clock: FakeClock, max_calls: int
) -> None:
    breaker = open_breaker(clock, half_open_max_calls=max_calls)
    clock.advance(5.0)
    results: list[Permit | Rejection] = []

    def worker(index: int, start: threading.Barrier) -> None:
        start.wait()
        results.append(breaker.admit())

    run_fleet(worker, workers=20, processes=False, timeout=10.0)
    assert len(results) == 20
    assert sum(admitted(r) for r in results) == max_calls
    rejections = [r for r in results if isinstance(r, Rejection)]
    assert all(r.state == "half_open" for r in rejections)
    assert all(r.retry_at == pytest.approx(clock.monotonic() + 5.0) for r in rejections)


def test_success_threshold_probes_close_the_breaker(clock: FakeClock) -> None:
    breaker = open_breaker(clock, success_threshold=3)
    clock.advance(5.0)
    for expected in ("half_open", "half_open", "closed"):
        probe = breaker.admit()
        assert isinstance(probe, Permit)
        breaker.record(probe, "success", 0.01)
        assert breaker.snapshot().state == expected


def test_a_failed_probe_reopens_for_another_reset_timeout(clock: FakeClock) -> None:
    breaker = open_breaker(clock, success_threshold=2)
    clock.advance(5.0)
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    breaker.record(probe, "failure", 0.01)
    rejection = breaker.admit()
    assert isinstance(rejection, Rejection)
    assert rejection.state == "open"
    assert rejection.retry_at == pytest.approx(clock.monotonic() + 5.0)


def test_a_slow_probe_reopens(clock: FakeClock) -> None:
    breaker = open_breaker(clock, slow_call_duration=1.0)
    clock.advance(5.0)
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    breaker.record(probe, "success", 1.2)
    assert breaker.snapshot().state == "open"


def test_a_released_probe_frees_its_slot(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(5.0)
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    assert not admitted(breaker.admit())
    breaker.release(probe)
    assert breaker.snapshot().state == "half_open"
    assert admitted(breaker.admit())


def test_an_ignored_probe_frees_its_slot_without_closing(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(5.0)
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    breaker.record(probe, "ignored", 0.01)
    assert breaker.snapshot().state == "half_open"
    assert admitted(breaker.admit())


def test_a_lost_probe_slot_is_reclaimed_after_reset_timeout(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(5.0)
    assert admitted(breaker.admit())  # never recorded nor released
    clock.advance(4.9)
    assert not admitted(breaker.admit())
    clock.advance(0.1)
    assert admitted(breaker.admit())


def test_release_after_record_is_harmless(clock: FakeClock) -> None:
    breaker = open_breaker(clock, success_threshold=2, half_open_max_calls=1)
    clock.advance(5.0)
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    breaker.record(probe, "success", 0.01)
    breaker.release(probe)
    snap = breaker.snapshot()
    assert (snap.state, snap.successes) == ("half_open", 1)


# -- observation -------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[str, BreakerState, BreakerState]] = []

    def state_change(self, breaker: EndpointBreaker, old: BreakerState, new: BreakerState) -> None:
        self.changes.append((breaker.endpoint, old, new))


class PybreakerRecorder(pybreaker.CircuitBreakerListener):
    def __init__(self) -> None:
        self.changes: list[tuple[str | None, str | None, str, int]] = []

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        old = old_state.name if old_state is not None else None
        self.changes.append((cb.name, old, new_state.name, cb.fail_counter))


def test_listeners_and_log_lines_follow_every_transition(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    ours, theirs = Recorder(), PybreakerRecorder()
    registry = BreakerRegistry(clock=clock, listeners=[ours, theirs])
    breaker = registry.get(EP, Breaker(failure_threshold=1, reset_timeout=5.0))
    with caplog.at_level(logging.INFO, logger="resilient_client.breaker"):
        call(breaker, "failure")
        clock.advance(5.0)
        call(breaker, "success")
    expected = [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert ours.changes == [(EP, old, new) for old, new in expected]
    assert [(name, old, new) for name, old, new, _ in theirs.changes] == [
        (EP, "closed", "open"),
        (EP, "open", "half-open"),
        (EP, "half-open", "closed"),
    ]
    records = [r for r in caplog.records if r.name == "resilient_client.breaker"]
    assert [r.levelname for r in records] == ["WARNING", "INFO", "INFO"]
    assert all(EP in r.getMessage() for r in records)
    assert "closed -> open" in records[0].getMessage()
    assert "half_open -> closed" in records[2].getMessage()


def test_a_failing_listener_is_logged_and_does_not_break_the_call(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def state_change(
            self, breaker: EndpointBreaker, old: BreakerState, new: BreakerState
        ) -> None:
            raise RuntimeError("boom")

    registry = BreakerRegistry(clock=clock, listeners=[Broken()])
    breaker = registry.get(EP, Breaker(failure_threshold=1))
    call(breaker, "failure")
    assert not admitted(breaker.admit())
    assert any("listener" in r.getMessage() and r.exc_info for r in caplog.records)


def test_snapshot_reports_state_counts_and_next_probe(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=3, reset_timeout=5.0)
    call(breaker, "failure")
    snap = breaker.snapshot()
    assert (snap.endpoint, snap.state, snap.failures, snap.retry_at, snap.shared) == (
        EP,
        "closed",
        1,
        None,
        False,
    )
    assert snap.failure_rate is None  # no rate in consecutive mode
    assert breaker.retry_at() is None
    call(breaker, "failure")
    call(breaker, "failure")
    assert breaker.snapshot().retry_at == pytest.approx(clock.monotonic() + 5.0)
    assert breaker.retry_at() == breaker.snapshot().retry_at
    clock.advance(5.0)
    assert breaker.retry_at() is None  # the break is over: the next admission probes
    probe = breaker.admit()
    snap = breaker.snapshot()
    assert (snap.state, snap.probes_in_flight) == ("half_open", 1)
    assert snap.retry_at == pytest.approx(clock.monotonic() + 5.0)  # the slot's lease
    assert breaker.retry_at() == snap.retry_at
    assert isinstance(probe, Permit)
    clock.advance(5.0)  # the lease ended: the slot is free again
    assert breaker.retry_at() is None
    assert breaker.snapshot().retry_at is None


def test_retry_at_is_none_with_a_probe_slot_free(clock: FakeClock) -> None:
    breaker = open_breaker(clock, half_open_max_calls=2)
    clock.advance(5.0)
    assert admitted(breaker.admit())
    assert breaker.retry_at() is None  # one slot of two is free
    assert admitted(breaker.admit())
    assert breaker.retry_at() == pytest.approx(clock.monotonic() + 5.0)


def test_an_ignored_closed_call_reads_no_clock() -> None:
    class CountingClock(FakeClock):
        reads = 0

        def monotonic(self) -> float:
            self.reads += 1
            return super().monotonic()

    counting = CountingClock()
    breaker = make(counting, window="count", window_size=10, minimum_calls=2)
    permit = breaker.admit()
    assert isinstance(permit, Permit)
    before = counting.reads
    breaker.record(permit, "ignored", 0.01)
    assert counting.reads == before  # the lock-free early return: nothing to count
    snap = breaker.snapshot()
    assert (snap.state, snap.calls, snap.failures) == ("closed", 0, 0)


# -- registry ----------------------------------------------------------------------------


def test_registry_keeps_one_breaker_per_endpoint(clock: FakeClock) -> None:
    registry = BreakerRegistry(clock=clock)
    policy = Breaker()
    assert registry.get(EP, policy) is registry.get(EP, Breaker())
    assert registry.get(EP, policy) is not registry.get("POST /v1/payments", policy)
    assert [s.endpoint for s in registry.snapshots()] == ["GET /v1/users/{id}", "POST /v1/payments"]


def test_a_new_rate_policy_counts_successes_it_would_once_have_skipped(clock: FakeClock) -> None:
    # The first policy lets a success skip the lock; the second must count every success.
    registry = BreakerRegistry(clock=clock)
    breaker = registry.get(EP, Breaker(window="consecutive"))
    rated = Breaker(window="count", window_size=4, minimum_calls=4, failure_rate_threshold=0.75)
    assert registry.get(EP, rated) is breaker
    for outcome in ("success", "failure", "failure"):
        call(breaker, outcome)
    snap = breaker.snapshot()
    assert (snap.state, snap.calls, snap.failures) == ("closed", 3, 2)
    call(breaker, "success")  # 2 of 4 failed: below 75 %
    assert (breaker.snapshot().state, breaker.snapshot().calls) == ("closed", 4)
    registry.get(EP, Breaker(failure_threshold=2))  # and back to a streak
    call(breaker, "failure")
    call(breaker, "success")
    call(breaker, "failure")
    assert breaker.snapshot().state == "closed"
    call(breaker, "failure")
    assert breaker.snapshot().state == "open"


def test_a_new_policy_applies_to_the_same_state(clock: FakeClock) -> None:
    registry = BreakerRegistry(clock=clock)
    breaker = registry.get(EP, Breaker(failure_threshold=5))
    call(breaker, "failure")
    call(breaker, "failure")
    assert registry.get(EP, Breaker(failure_threshold=3)) is breaker
    call(breaker, "failure")
    assert breaker.snapshot().state == "open"


def test_unknown_outcome_is_a_value_error(clock: FakeClock) -> None:
    breaker = make(clock)
    permit = breaker.admit()
    assert isinstance(permit, Permit)
    with pytest.raises(ValueError, match="outcome"):
        breaker.record(permit, "boom", 0.0)  # type: ignore[arg-type]


# -- async mirrors -----------------------------------------------------------------------


async def test_async_mirrors_behave_like_the_sync_calls(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2, reset_timeout=1.0)
    for _ in range(2):
        permit = await breaker.aadmit()
        assert isinstance(permit, Permit)
        await breaker.arecord(permit, "failure", 0.01)
    assert isinstance(await breaker.aadmit(), Rejection)
    clock.advance(1.0)
    probe = await breaker.aadmit()
    assert isinstance(probe, Permit)
    await breaker.arelease(probe)
    probe = await breaker.aadmit()
    assert isinstance(probe, Permit)
    await breaker.arecord(probe, "success", 0.01)
    assert breaker.snapshot().state == "closed"


# -- no serialization (real time) ------------------------------------------------------


def test_concurrent_threads_are_not_serialized_by_the_breaker() -> None:
    breaker = BreakerRegistry().get(EP, Breaker())
    # All eight must hold a permit at once to pass this barrier: a lock held from admit
    # to record (pybreaker's call()) would break it after its timeout instead.
    inside = threading.Barrier(8, timeout=5)
    permits: list[Permit | Rejection] = []

    def guarded_call(index: int, start: threading.Barrier) -> None:
        start.wait()
        permit = breaker.admit()
        permits.append(permit)
        assert isinstance(permit, Permit)
        inside.wait()
        breaker.record(permit, "success", 0.1)

    run_fleet(guarded_call, workers=8, processes=False, timeout=10.0)
    assert len(permits) == 8
    assert all(isinstance(permit, Permit) for permit in permits)
    assert breaker.snapshot().state == "closed"


async def test_concurrent_tasks_are_not_serialized_by_the_breaker() -> None:
    breaker = BreakerRegistry().get(EP, Breaker())
    inside = asyncio.Barrier(8)  # passed only while all eight hold a permit
    permits: list[Permit | Rejection] = []

    async def guarded_call() -> None:
        permit = await breaker.aadmit()
        permits.append(permit)
        assert isinstance(permit, Permit)
        await inside.wait()
        await breaker.arecord(permit, "success", 0.1)

    async with asyncio.timeout(5):
        results = await asyncio.gather(*(guarded_call() for _ in range(8)), return_exceptions=True)
    assert [r for r in results if r is not None] == []
    assert len(permits) == 8
    assert all(isinstance(permit, Permit) for permit in permits)
    assert breaker.snapshot().state == "closed"
