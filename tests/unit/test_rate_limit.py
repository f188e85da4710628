"""The rate-limit room: the policy, the headers read, and the pacing decisions (pure, on
times passed in)."""

from __future__ import annotations

import math
import time

import httpx
import pydantic
import pytest

import resilient_client as rc
from resilient_client._rate_limit import Limits, RateLimitState, read_limits

WALL = 1_700_000_000.0


def test_policy_validates_and_is_frozen() -> None:
    policy = rc.RateLimit(per_second=5)
    assert (policy.per_second, policy.respect_headers, policy.max_wait) == (5.0, True, 1.0)
    with pytest.raises(pydantic.ValidationError, match="per_second"):
        rc.RateLimit(per_second=0)
    with pytest.raises(pydantic.ValidationError, match="max_wait"):
        rc.RateLimit(max_wait=-1)
    with pytest.raises(pydantic.ValidationError, match="per_second"):
        rc.RateLimit(respect_headers=False)
    with pytest.raises(pydantic.ValidationError):
        policy.max_wait = 3.0  # type: ignore[misc]
    assert rc.Policy(rate_limit=policy).rate_limit is policy
    assert issubclass(rc.RateLimited, rc.LoadShedError)
    assert issubclass(rc.RateLimited, httpx.TransportError)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # IETF draft -08 on: the tightest of the listed limits, with its policy's window
        (
            {
                "RateLimit": '"default";r=50;t=30, "daily";r=7;t=600',
                "RateLimit-Policy": '"default";q=100;w=60, "daily";q=1000;w=86400',
            },
            Limits(7.0, 600.0, 1000.0, 86400.0),
        ),
        ({"RateLimit": '"default";r=0;t=3'}, Limits(0.0, 3.0)),
        # the draft up to -06, X-RateLimit in seconds and as an epoch time
        ({"RateLimit-Remaining": "4", "RateLimit-Reset": "2"}, Limits(4.0, 2.0)),
        (
            {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "9", "X-RateLimit-Reset": "12"},
            Limits(9.0, 12.0, 60.0),
        ),
        (
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(WALL) + 42)},
            Limits(0.0, 42.0),
        ),
        # OpenAI's Go durations
        (
            {"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "6m0s"},
            Limits(3.0, 360.0),
        ),
        (
            {"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "20ms"},
            Limits(3.0, 0.02),
        ),
        (
            {"x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "1m1.5s"},
            Limits(1.0, 61.5),
        ),
        # Anthropic's RFC 3339 time
        (
            {
                "anthropic-ratelimit-requests-limit": "50",
                "anthropic-ratelimit-requests-remaining": "2",
                "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:50Z",
            },
            Limits(2.0, 30.0, 50.0),
        ),
    ],
)
def test_each_header_family_is_read(headers: dict[str, str], expected: Limits) -> None:
    assert read_limits(httpx.Headers(headers), WALL) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"RateLimit": "garbage;;"},
        {"RateLimit": '"default";r=?1'},  # a Boolean is no count
        {"X-RateLimit-Remaining": "nan"},
        {"x-ratelimit-remaining-requests": "-3"},
    ],
)
def test_unreadable_headers_say_nothing(headers: dict[str, str]) -> None:
    assert read_limits(httpx.Headers(headers), WALL) is None


def test_unreadable_reset_keeps_the_count() -> None:
    headers = httpx.Headers(
        {"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "soon"}
    )
    assert read_limits(headers, WALL) == Limits(5.0, None)


def test_the_tightest_family_wins() -> None:
    headers = httpx.Headers(
        {"X-RateLimit-Remaining": "9", "X-RateLimit-Reset": "5", "RateLimit": '"d";r=2;t=1'}
    )
    assert read_limits(headers, WALL) == Limits(2.0, 1.0)


def test_per_second_paces_after_a_burst_of_one_second() -> None:
    state = RateLimitState(rc.RateLimit(per_second=2))
    delays = [state.reserve(0.0, 0.0, 10.0)[0] for _ in range(5)]
    # two at once (a second's worth), then one every half second
    assert delays == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])
    # a second later the bucket holds what was not reserved
    assert state.reserve(5.0, 5.0, 0.0)[0] == 0.0


def test_a_turn_past_the_allowance_is_refused_and_takes_nothing() -> None:
    state = RateLimitState(rc.RateLimit(per_second=1))
    assert state.reserve(0.0, 0.0, 0.0) == (0.0, True)
    assert state.reserve(0.0, 0.0, 0.5) == (pytest.approx(1.0), False)
    assert state.reserve(0.0, 0.0, 1.0) == (pytest.approx(1.0), True)


def test_a_future_start_is_paced_from_then() -> None:
    state = RateLimitState(rc.RateLimit(per_second=1))
    state.reserve(0.0, 0.0, 0.0)
    # a retry after a 0.25 s backoff waits the rest of the second
    assert state.reserve(0.0, 0.25, 1.0)[0] == pytest.approx(0.75)


def test_the_providers_window_queues_calls_past_its_quota() -> None:
    state = RateLimitState(rc.RateLimit())
    assert state.reserve(0.0, 0.0, 100.0) == (0.0, True)
    state.release(0.0)
    # the answer: 2 left in a window that resets in 3 s, then 2 per 3 s
    state.learn(Limits(2.0, 3.0, 2.0, 3.0), 0.0)
    delays = [state.reserve(0.0, 0.0, 100.0)[0] for _ in range(6)]
    assert delays == pytest.approx([0.0, 0.0, 3.0, 3.0, 6.0, 6.0])
    # once the window has rolled, the queue has moved with it
    assert state.reserve(6.5, 6.5, 100.0)[0] == pytest.approx(2.5)


def test_an_unknown_next_window_opens_at_the_reset() -> None:
    state = RateLimitState(rc.RateLimit())
    state.reserve(0.0, 0.0, 10.0)
    state.release(0.0)
    state.learn(Limits(0.0, 2.0), 0.0)
    assert state.reserve(0.5, 0.5, 10.0)[0] == pytest.approx(1.5)
    # after the reset, nothing is known to pace by
    assert state.reserve(2.0, 2.0, 0.0)[0] == 0.0


def test_calls_still_on_their_way_count_against_an_answer() -> None:
    state = RateLimitState(rc.RateLimit())
    assert all(state.reserve(0.0, 0.0, 10.0)[1] for _ in range(3))
    state.release(0.0)
    # the first call's answer says 2 left, but two more calls are already on their way
    state.learn(Limits(2.0, 5.0), 0.0)
    assert state.reserve(0.0, 0.0, 10.0)[0] == pytest.approx(5.0)


def test_within_a_window_the_count_only_goes_down() -> None:
    state = RateLimitState(rc.RateLimit())
    state.learn(Limits(1.0, 5.0), 0.0)
    state.learn(Limits(9.0, 5.0), 1.0)  # answered out of order: an older count
    assert state.reserve(1.0, 1.0, 10.0)[0] == 0.0
    # (and the window ends at the earlier of the two resets told, both rounded up)
    assert state.reserve(1.0, 1.0, 10.0)[0] == pytest.approx(4.0)
    # past the reset, an answer's count is taken as it is
    state.learn(Limits(3.0, 5.0), 6.0)
    assert state.snapshot()["remaining"] == 1.0  # 3, less the two turns not handed back


def test_a_released_turn_no_longer_counts() -> None:
    state = RateLimitState(rc.RateLimit())
    state.reserve(0.0, 0.0, 10.0)
    state.release(0.0)
    state.release(0.0)  # (handed back twice: no harm)
    state.learn(Limits(4.0, 5.0), 0.0)
    assert state.snapshot()["remaining"] == 4.0


def test_turns_waiting_for_a_later_window_do_not_count_twice() -> None:
    state = RateLimitState(rc.RateLimit())
    state.learn(Limits(0.0, 2.0, 5.0, 2.0), 0.0)
    assert state.reserve(0.0, 0.0, 10.0) == (pytest.approx(2.0), True)  # queued
    # an answer in this window: the queued turn is in remaining already, not on its way
    state.learn(Limits(0.0, 2.0, 5.0, 2.0), 0.5)
    assert state.snapshot()["remaining"] == -1.0


def test_rate_limited_message_is_one_line_without_the_url() -> None:
    request = httpx.Request("GET", "https://api.example.com/v1/secret?token=abc")
    error = rc.RateLimited("GET /v1/secret", 2.5, request=request)
    assert "\n" not in str(error) and "token" not in str(error)
    assert error.retry_after == 2.5 and error.endpoint == "GET /v1/secret"


def test_a_windows_unused_calls_do_not_carry_over() -> None:
    state = RateLimitState(rc.RateLimit())
    # 50 of 100 a minute left, the window resetting in 1 s: none of them used
    state.learn(Limits(50.0, 1.0, 100.0, 60.0), 0.0)
    granted = [state.reserve(2.0, 2.0, 0.0)[1] for _ in range(150)]
    assert granted.count(True) == 100  # the new window's quota, not 150
    # an endpoint idle for an hour finds one window's quota, not sixty
    state = RateLimitState(rc.RateLimit())
    state.learn(Limits(50.0, 1.0, 100.0, 60.0), 0.0)
    granted = [state.reserve(3601.0, 3601.0, 0.0)[1] for _ in range(200)]
    assert granted.count(True) == 100


@pytest.mark.parametrize(
    ("remaining", "later", "granted"),
    [
        (-250.0, 2.5, 0),  # 250 queued: two windows of 100 go to them, 50 still wait
        (-250.0, 3.5, 50),  # the third window serves the last 50 and has 50 to spare
        (-250.0, 4.5, 100),  # then every window is a fresh quota
        (-30.0, 1.5, 70),
        (40.0, 1.5, 100),  # unused calls end with their window
    ],
)
def test_the_windows_that_ended_serve_the_queued_calls_first(
    remaining: float, later: float, granted: int
) -> None:
    state = RateLimitState(rc.RateLimit())
    state.learn(Limits(remaining, 1.0, 100.0, 1.0), 0.0)  # 100 a second, resetting at 1 s
    turns = [state.reserve(later, later, 0.0)[1] for _ in range(150)]
    assert turns.count(True) == granted


def test_a_tiny_window_left_idle_for_a_day_is_rolled_at_once() -> None:
    # w=0.001 for a day: 86 million windows. Stepped through one by one under the
    # endpoint's lock, they held every call to it for seconds.
    state = RateLimitState(rc.RateLimit())
    state.learn(Limits(0.0, 0.001, 5.0, 0.001), 0.0)
    started = time.perf_counter()
    turns = [state.reserve(86_400.0, 86_400.0, 0.0)[1] for _ in range(10)]
    assert time.perf_counter() - started < 1.0  # microseconds; stepped, ~7 s
    assert turns.count(True) == 5


def test_an_endless_reset_does_not_hold_the_endpoint_for_good() -> None:
    state = RateLimitState(rc.RateLimit())
    # a 429 whose Retry-After is 400 digits long: read as inf seconds
    state.learn(Limits(0.0, math.inf), 0.0)
    assert state.reserve(1.0, 1.0, 0.0) == (0.0, True)
