"""Policies are immutable, validated at construction, and merge field by field."""

from __future__ import annotations

import math

import pydantic
import pytest

import resilient_client as rc
from resilient_client._policy import merge


def test_defaults_bound_attempts_and_time() -> None:
    policy = rc.Policy()
    assert policy.retry is not None
    assert policy.retry.max_attempts == 3
    assert policy.timeouts.total == 30.0
    assert policy.timeouts.attempt == 10.0
    assert policy.idempotency is not None
    assert policy.idempotency.methods == frozenset({"POST", "PATCH"})


def test_policies_are_frozen() -> None:
    policy = rc.Policy()
    with pytest.raises(pydantic.ValidationError):
        policy.timeouts = rc.Timeouts()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: rc.Backoff(jitter="fancy"), "jitter"),
        (lambda: rc.Retry(max_attempts=0), "max_attempts"),
        (lambda: rc.Timeouts(read=-1), "read"),
        (lambda: rc.Timeouts(total=0), "total"),
        # None is "no limit": inf made every sync call raise OverflowError
        (lambda: rc.Timeouts(total=math.inf, attempt=None, read=None), "total"),
        (lambda: rc.Timeouts(attempt=math.inf), "attempt"),
        (lambda: rc.Timeouts(read=math.nan), "read"),
        (lambda: rc.Backoff(initial=2.0, max=1.0), "max"),
        (lambda: rc.Retry(retry_on_status=frozenset({999})), "retry_on_status"),
        (lambda: rc.Policy(retries=3), "retries"),
        (lambda: rc.Idempotency(header="Bad Header"), "header"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(build: object, field: str) -> None:
    with pytest.raises((pydantic.ValidationError, ValueError)) as info:
        build()  # type: ignore[operator]
    assert field in str(info.value)


def test_merge_overrides_only_given_fields_recursively() -> None:
    base = rc.Policy(timeouts=rc.Timeouts(total=5.0), retry=rc.Retry(max_attempts=4))
    merged = merge(base, rc.Policy(timeouts=rc.Timeouts(read=2.0)))
    assert merged.timeouts.read == 2.0
    assert merged.timeouts.total == 5.0
    assert merged.retry is not None and merged.retry.max_attempts == 4


def test_merge_with_none_switches_a_strategy_off() -> None:
    merged = merge(rc.Policy(), rc.Policy(retry=None))
    assert merged.retry is None
    assert merged.idempotency is not None


def test_merge_of_nested_backoff_keeps_the_rest() -> None:
    base = rc.Policy(retry=rc.Retry(max_attempts=5, backoff=rc.Backoff(max=3.0)))
    merged = merge(base, rc.Policy(retry=rc.Retry(backoff=rc.Backoff(initial=0.1))))
    assert merged.retry is not None
    assert merged.retry.max_attempts == 5
    assert merged.retry.backoff.max == 3.0
    assert merged.retry.backoff.initial == 0.1


def test_merge_validates_the_result() -> None:
    base = rc.Policy(retry=rc.Retry(backoff=rc.Backoff(initial=1.0, max=2.0)))
    # Valid on its own (initial defaults to 0.25), invalid over a base with initial=1.0.
    with pytest.raises(pydantic.ValidationError, match="max"):
        merge(base, rc.Policy(retry=rc.Retry(backoff=rc.Backoff(max=0.5))))


def test_merged_policy_merges_on_like_its_parts() -> None:
    first = merge(rc.Policy(), rc.Policy(timeouts=rc.Timeouts(read=2.0)))
    second = merge(rc.Policy(timeouts=rc.Timeouts(total=9.0)), first)
    assert second.timeouts.read == 2.0
    assert second.timeouts.total == 9.0


def test_merge_derives_defaults_anew_for_the_merged_values() -> None:
    # Nobody set minimum_calls: a count window of 5 clamps it to 5, merged or not.
    base = rc.Breaker(window="count", window_size=100)
    merged = merge(base, rc.Breaker(window_size=5))
    assert (merged.window, merged.window_size, merged.minimum_calls) == ("count", 5, 5)
    assert merged.model_fields_set == {"window", "window_size"}
    explicit = merge(rc.Breaker(window="count", minimum_calls=20), rc.Breaker(window_size=50))
    assert explicit.minimum_calls == 20
