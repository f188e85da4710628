"""The retry budget: retries per endpoint bounded by ratio × calls + reserve, per window."""

from __future__ import annotations

import sys
import threading

import pydantic
import pytest

from resilient_client._budget import RetryBudget, RetryBudgetState
from resilient_client.testing import FakeClock


def run_call(budget: RetryBudgetState, wanted_retries: int) -> int:
    """One failing call as the pipeline drives it: a refused retry ends the call."""
    budget.record_call()
    made = 0
    while made < wanted_retries and budget.try_retry():
        made += 1
    return made


def test_outage_of_500_calls_with_4_attempts_allows_exactly_135_retries() -> None:
    budget = RetryBudgetState(RetryBudget(), FakeClock())

    retries = sum(run_call(budget, wanted_retries=3) for _ in range(500))

    assert retries == 135  # 0.25 × 500 + 1.0 × 10
    assert 500 + retries == 635
    snap = budget.snapshot()
    assert (snap.calls, snap.retries, snap.available) == (500, 135, 0)
    # The first three calls take 9 of the reserve's 10 (and the ratio's 0.75); every
    # later call meets one refusal.
    assert snap.refused == 497


@pytest.mark.parametrize("start", [1000.0, 1000.55, 1000.999, 1234.5678])
def test_bound_holds_whatever_the_bucket_boundaries(start: float) -> None:
    # Spread over (almost) a whole window from an arbitrary phase against the 1 s
    # buckets: nothing is forgotten early, so nothing extra is granted.
    clock = FakeClock(start=start)
    budget = RetryBudgetState(RetryBudget(), clock)
    retries = 0
    for _ in range(500):
        retries += run_call(budget, wanted_retries=3)
        clock.advance(9.99 / 500)

    assert retries == 135


def test_every_call_asking_for_all_its_retries_still_gets_135() -> None:
    budget = RetryBudgetState(RetryBudget(), FakeClock())
    granted = 0
    for _ in range(500):
        budget.record_call()
        granted += sum(budget.try_retry() for _ in range(3))

    assert granted == 135
    assert budget.refused_total == 1500 - 135


def test_bound_is_exact_integer_arithmetic() -> None:
    # 0.29 × 100 is 28.999999999999996 in floats; the budget must still grant 29.
    budget = RetryBudgetState(RetryBudget(ratio=0.29, min_per_second=0.0), FakeClock())
    for _ in range(100):
        budget.record_call()

    granted = sum(budget.try_retry() for _ in range(40))

    assert granted == 29


def test_reserve_lets_a_quiet_client_retry() -> None:
    # Five calls a window earn half a retry by ratio; the reserve of 10 covers them all.
    clock = FakeClock()
    budget = RetryBudgetState(RetryBudget(), clock)
    retries = 0
    for _ in range(5):
        retries += run_call(budget, wanted_retries=1)
        clock.advance(2.0)

    assert retries == 5


def test_a_retry_needs_no_prior_call_while_the_reserve_lasts() -> None:
    budget = RetryBudgetState(RetryBudget(min_per_second=0.5, window=4.0), FakeClock())

    assert [budget.try_retry() for _ in range(3)] == [True, True, False]


def test_zero_ratio_and_reserve_refuses_every_retry() -> None:
    budget = RetryBudgetState(RetryBudget(ratio=0.0, min_per_second=0.0), FakeClock())

    assert run_call(budget, wanted_retries=3) == 0
    assert budget.refused_total == 1


def test_budget_refills_once_the_window_has_passed() -> None:
    clock = FakeClock(start=1000.3)
    budget = RetryBudgetState(RetryBudget(), clock)
    for _ in range(100):
        run_call(budget, wanted_retries=3)
    assert budget.snapshot().available == 0

    clock.advance(9.99)  # still inside the window: nothing forgotten
    assert budget.try_retry() is False

    clock.advance(1.02)  # 11.01 s: past window × 1.1, the outage is forgotten
    snap = budget.snapshot()
    assert (snap.calls, snap.retries, snap.available) == (0, 0, 10)
    assert snap.refused == 1  # the refusal made at 9.99 s is still remembered
    assert run_call(budget, wanted_retries=3) == 3


def test_ratio_holds_over_many_windows() -> None:
    # A steady 50 calls/s for 100 s, every call failing and wanting one retry.
    clock = FakeClock(start=1000.0)
    policy = RetryBudget()
    budget = RetryBudgetState(policy, clock)
    calls: list[float] = []
    grants: list[float] = []
    for _ in range(5000):
        calls.append(clock.monotonic())
        if run_call(budget, wanted_retries=1):
            grants.append(clock.monotonic())
        clock.advance(0.02)

    # Over any trailing window, retries stay within ratio × the calls the budget could
    # remember (at most 1.1 windows back) plus the reserve.
    for t in grants:
        in_window = sum(1 for g in grants if t - policy.window < g <= t)
        remembered = sum(1 for c in calls if t - 1.1 * policy.window < c <= t)
        assert in_window <= policy.ratio * remembered + policy.min_per_second * policy.window
    # And the budget is not stingy: the long-run retry rate is ratio × the call rate
    # plus the reserve rate, the reserve spread over 1.0–1.1 windows of memory.
    by_ratio = policy.ratio * 5000  # 1,250 with the default 0.25
    assert by_ratio + 100 / 1.1 - 1 <= len(grants) <= by_ratio + 100 + 10


def test_refusals_are_counted_in_the_window_and_in_total() -> None:
    clock = FakeClock()
    budget = RetryBudgetState(RetryBudget(ratio=0.0, min_per_second=0.1), clock)

    assert [budget.try_retry() for _ in range(3)] == [True, False, False]
    snap = budget.snapshot()
    assert (snap.retries, snap.refused, snap.refused_total, snap.refusing) == (1, 2, 2, True)

    clock.advance(12.0)
    snap = budget.snapshot()
    assert (snap.retries, snap.refused, snap.refused_total, snap.refusing) == (0, 0, 2, False)
    assert (snap.retries_total, snap.calls_total) == (1, 0)


def test_refusal_notice_is_given_once_per_episode() -> None:
    clock = FakeClock()
    budget = RetryBudgetState(RetryBudget(ratio=0.0, min_per_second=0.0), clock)
    assert budget.take_refusal_notice("GET /v1/users/{id}") is None

    budget.try_retry()
    notice = budget.take_refusal_notice("GET /v1/users/{id}")
    assert notice is not None
    assert "'GET /v1/users/{id}'" in notice
    assert "\n" not in notice

    for _ in range(20):  # refusals keep coming, a few seconds apart: same episode
        clock.advance(3.0)
        budget.try_retry()
        assert budget.take_refusal_notice("GET /v1/users/{id}") is None

    clock.advance(10.0)  # a full window without refusals: the next one is news again
    budget.try_retry()
    assert budget.take_refusal_notice("GET /v1/users/{id}") is not None


def test_concurrent_threads_never_overdraw() -> None:
    budget = RetryBudgetState(RetryBudget(), FakeClock())
    granted: list[int] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        granted.append(sum(run_call(budget, wanted_retries=3) for _ in range(100)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    snap = budget.snapshot()
    assert sum(granted) == snap.retries
    assert snap.calls == 800
    # Interleaving decides how many calls came in before the last grant, never the cap.
    assert snap.retries <= 0.25 * 800 + 10
    assert snap.retries >= 10


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ratio", -0.1),
        ("ratio", 10.5),
        ("ratio", float("nan")),
        ("min_per_second", -1.0),
        ("window", 0.0),
        ("window", -5.0),
        ("window", float("inf")),
    ],
)
def test_invalid_policy_names_the_field(field: str, value: float) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        RetryBudget(**{field: value})

    assert info.value.errors()[0]["loc"] == (field,)


def test_policy_is_frozen_and_rejects_unknown_fields() -> None:
    policy = RetryBudget()
    with pytest.raises(pydantic.ValidationError):
        policy.ratio = 0.5  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError) as info:
        RetryBudget(percent=20)  # type: ignore[call-arg]
    assert info.value.errors()[0]["loc"] == ("percent",)


def test_policy_defaults_match_the_contract() -> None:
    # The ratio is the scenario benchmark's choice (README, "How it behaves in an outage").
    assert RetryBudget() == RetryBudget(ratio=0.25, min_per_second=1.0, window=10.0)


def test_calls_leave_the_window_bucket_by_bucket() -> None:
    clock = FakeClock(fixed=0.0)
    budget = RetryBudgetState(RetryBudget(window=10.0), clock)  # buckets of 1 s
    for _ in range(5):
        budget.record_call()
    clock.advance(5.0)
    for _ in range(3):
        budget.record_call()
    clock.advance(5.5)  # 10.5 s: the first bucket is the oldest of the eleven kept
    assert budget.snapshot().calls == 8
    clock.advance(0.5)  # 11 s: it has gone, with its five calls
    assert budget.snapshot().calls == 3
    clock.advance(5.0)  # 16 s: the second batch has gone too
    snap = budget.snapshot()
    assert (snap.calls, snap.calls_total) == (0, 8)


def test_threads_counting_across_bucket_moves_lose_no_call() -> None:
    # The clock starts at 0, where the calls' own readings are: a clock far ahead of
    # them (FakeClock's default 1000 s) makes every call "late", so no bucket ever moves.
    budget = RetryBudgetState(RetryBudget(window=1.0), FakeClock(start=0.0))
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        for step in range(3000):  # 0 to 3 s: thirty bucket moves, raced by four threads
            budget.record_call(now=step * 0.001)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave within a bucket, not one per run
    try:
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    snap = budget.snapshot()
    assert snap.calls_total == 12000
    # The buckets did move (the first second's calls have left the window), and no call
    # read at 2 s or later went into a bucket the window has already dropped.
    assert 4 * 1000 <= snap.calls < 12000
