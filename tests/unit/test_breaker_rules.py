"""The breaker's pure rules as tables (after urllib3's tests/test_retry.py).

Every row of ``_circuit.TRANSITIONS`` is driven through a :class:`Circuit` with a fake
``now``; the trip rules per window kind, the grown open period and what counts as a
failure (statuses, and exceptions through the real pipeline) are tables too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from drivers import Driver
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import resilient_client as rc
from resilient_client._breaker import (
    TRANSITIONS,
    Breaker,
    apply_failure_predicate,
    classify_for_breaker,
)
from resilient_client._breaker._circuit import (
    CLOSED,
    FAILED,
    HALF_OPEN,
    OPEN,
    SLOW,
    Circuit,
    TimeWindow,
    Transition,
    _bucket_start,
    describe_trip,
    grown_period,
)
from resilient_client.testing import FakeClock, ScriptedTransport

T0 = 1000.0  # the fake "now" every circuit starts at

# -- the circuit in a given state ----------------------------------------------------------


def fail(circuit: Circuit, now: float, bits: int = FAILED) -> None:
    circuit.record(circuit.generation, None, bits, now)


def closed(**policy: Any) -> Circuit:
    return Circuit(Breaker(**policy))


def opened(**policy: Any) -> Circuit:
    circuit = closed(failure_threshold=1, reset_timeout=10.0, **policy)
    fail(circuit, T0)
    assert circuit.state == OPEN
    return circuit


def half_open(**policy: Any) -> Circuit:
    circuit = opened(**policy)
    circuit.tick(circuit.open_until)
    assert circuit.state == HALF_OPEN
    return circuit


def probe(circuit: Circuit, bits: int, now: float, token: str = "p") -> None:
    assert circuit.admit(now, token).kind == "probe"
    circuit.record(circuit.generation, token, bits, now)


IN_STATE: dict[str, Callable[..., Circuit]] = {
    CLOSED: closed,
    OPEN: opened,
    HALF_OPEN: half_open,
}


def fail_times(n: int) -> Callable[[Circuit], None]:
    def event(circuit: Circuit) -> None:
        for _ in range(n):
            fail(circuit, T0)

    return event


def admit_at(offset: float) -> Callable[[Circuit], None]:
    def event(circuit: Circuit) -> None:
        circuit.admit(circuit.open_until + offset, "p")

    return event


def probes(*bits: int) -> Callable[[Circuit], None]:
    def event(circuit: Circuit) -> None:
        for token, outcome in enumerate(bits):
            probe(circuit, outcome, circuit.open_until, str(token))

    return event


# Each row of TRANSITIONS: the policy, the event that makes it happen, and the same event
# one step short of it (which must change nothing).
ROW_EVENTS: dict[
    str, tuple[dict[str, Any], Callable[[Circuit], None], Callable[[Circuit], None]]
] = {
    "trip rule met": ({"failure_threshold": 3}, fail_times(3), fail_times(2)),
    "open period elapsed, on the next admission": ({}, admit_at(0.0), admit_at(-0.001)),
    "a probe fails or is slow": (
        {"slow_call_duration": 1.0, "success_threshold": 2},
        probes(SLOW),
        probes(0),
    ),
    "success_threshold probes succeed": ({"success_threshold": 2}, probes(0, 0), probes(0)),
}


def test_every_transition_has_a_row_driven_here() -> None:
    assert {row.condition for row in TRANSITIONS} == set(ROW_EVENTS)
    assert {(row.from_state, row.to_state) for row in TRANSITIONS} == {
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (HALF_OPEN, CLOSED),
    }
    assert all(isinstance(row, tuple) and len(row) == 3 for row in TRANSITIONS)


@pytest.mark.parametrize("row", TRANSITIONS, ids=lambda row: row.condition)
def test_each_transition_happens_on_its_condition_and_not_before(row: Transition) -> None:
    policy, event, short_of_it = ROW_EVENTS[row.condition]
    circuit = IN_STATE[row.from_state](**policy)
    circuit.changes.clear()
    short_of_it(circuit)
    assert (circuit.state, circuit.changes) == (row.from_state, [])
    circuit = IN_STATE[row.from_state](**policy)
    circuit.changes.clear()
    event(circuit)
    assert circuit.changes == [(row.from_state, row.to_state)]
    assert circuit.state == row.to_state


_STEP = st.one_of(
    st.tuples(st.just("advance"), st.floats(0.0, 20.0)),
    st.tuples(st.just("call"), st.sampled_from([None, 0, FAILED, SLOW, FAILED | SLOW])),
    st.tuples(st.just("release"), st.just(None)),
)


@given(steps=st.lists(_STEP, max_size=60), threshold=st.integers(1, 3))
def test_the_rules_move_only_along_the_table(steps: list[tuple[str, Any]], threshold: int) -> None:
    allowed = {(row.from_state, row.to_state) for row in TRANSITIONS}
    circuit = closed(
        failure_threshold=threshold,
        reset_timeout=10.0,
        reset_timeout_max=60.0,
        success_threshold=2,
        half_open_max_calls=2,
    )
    now, held = T0, 0
    for kind, value in steps:
        if kind == "advance":
            now += value
        elif kind == "call":
            held += 1
            admission = circuit.admit(now, f"t{held}")
            if admission.kind != "rejected":
                token = f"t{held}" if admission.kind == "probe" else None
                circuit.record(admission.generation, token, value, now, rand=0.5)
        else:
            circuit.release(f"t{held}")
    assert set(circuit.changes) <= allowed
    assert all(new == old for (_, new), (old, _) in itertools.pairwise(circuit.changes))


# -- trip rules per window kind -------------------------------------------------------------

S, F, SL = 0, FAILED, SLOW  # a fast success, a failure, a slow success
ADVANCE = -1  # then the next number is seconds to move the fake clock

TRIP_RULES: list[tuple[str, dict[str, Any], Sequence[float], str, str | None]] = [
    ("streak", {"failure_threshold": 3}, [F, F, F], OPEN, "3 failures in a row"),
    ("a success breaks it", {"failure_threshold": 3}, [F, F, S, F, F], CLOSED, None),
    ("slow extends it", {"failure_threshold": 2, "slow_call_duration": 1.0}, [F, SL], OPEN,
     "2 failures in a row"),
    ("count: rate met", {"window": "count", "window_size": 4, "failure_rate_threshold": 0.5},
     [S, S, F, F], OPEN, "2 of 4 calls failed (50 %)"),
    ("count: rate below", {"window": "count", "window_size": 4, "failure_rate_threshold": 0.5},
     [S, S, S, F], CLOSED, None),
    ("count: too few calls", {"window": "count", "window_size": 10, "minimum_calls": 4},
     [F, F, F], CLOSED, None),
    ("count: evicted", {"window": "count", "window_size": 4, "failure_rate_threshold": 0.5},
     [F, S, S, S, S, F], CLOSED, None),
    ("count: slow rate", {"window": "count", "window_size": 4, "slow_call_rate_threshold": 0.5},
     [S, S, SL, SL], OPEN, "2 of 4 calls slow (50 %)"),
    ("count: exact 7 %", {"window": "count", "window_size": 100, "minimum_calls": 100,
                          "failure_rate_threshold": 0.07},
     [S] * 93 + [F] * 7, OPEN, "7 of 100 calls failed (7 %)"),
    ("time: rate met", {"window": "time", "window_size": 10.0, "minimum_calls": 4,
                        "failure_rate_threshold": 0.5},
     [F, S, F, S], OPEN, "2 of 4 calls failed (50 %)"),
    ("time: expired", {"window": "time", "window_size": 10.0, "minimum_calls": 4,
                       "failure_rate_threshold": 0.5},
     [F, F, ADVANCE, 11, S, S, S, F], CLOSED, None),
    ("time: bucket by bucket", {"window": "time", "window_size": 10.0, "minimum_calls": 4,
                                "failure_rate_threshold": 0.5},
     [F, F, ADVANCE, 5, S, ADVANCE, 5.5, F, F, S], OPEN, "2 of 4 calls failed (50 %)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "outcomes", "state", "opened_by"),
    [row[1:] for row in TRIP_RULES],
    ids=[row[0] for row in TRIP_RULES],
)
def test_trip_rules(
    policy: dict[str, Any], outcomes: Sequence[float], state: str, opened_by: str | None
) -> None:
    circuit, now = closed(**policy), T0
    numbers = iter(outcomes)
    for bits in numbers:
        if bits == ADVANCE:
            now += next(numbers)
        elif circuit.state == CLOSED:
            fail(circuit, now, int(bits))
    assert circuit.state == state
    assert describe_trip(circuit.trip) == opened_by


# -- a time window's buckets: one float comparison stands for floor(now / width) -------------


@given(index=st.integers(-(10**6), 10**12), size=st.floats(1e-3, 1e5))
def test_a_bucket_starts_exactly_where_the_division_says(index: int, size: float) -> None:
    width = size / 10
    start = _bucket_start(index, width)
    assert math.floor(start / width) >= index
    assert math.floor(math.nextafter(start, -math.inf) / width) < index
    window = TimeWindow(size)  # head -1 until a bucket numbered 0 or more is entered
    window.add(0, math.nextafter(start, -math.inf))  # bucket index - 1's last instant
    assert window._ring.head == max(index - 1, -1)
    window.add(0, start)
    assert window._ring.head == max(index, -1)


@given(
    size=st.floats(1e-3, 1e3),
    nows=st.lists(st.floats(-1e3, 1e9), min_size=1, max_size=20),
    bits=st.sampled_from([0, FAILED, SLOW, FAILED | SLOW]),
)
def test_an_outcome_counts_in_the_bucket_the_division_names(
    size: float, nows: list[float], bits: int
) -> None:
    window, head = TimeWindow(size), -1
    for now in nows:  # in any order: a fake clock may go back
        head = max(head, math.floor(now / (size / 10)))
        window.add(bits, now)
        assert window._ring.head == head
        assert (window.failures, window.slow) == (window._ring.sums[1], window._ring.sums[2])


# -- the open period, fixed or growing --------------------------------------------------------

GROWN: list[tuple[float | None, float, float, float, tuple[float, float]]] = [
    # reset_timeout_max, multiplier, previous nominal, rand -> (nominal, period applied)
    (None, 2.0, 30.0, 0.5, (30.0, 30.0)),  # fixed: today's behaviour
    (300.0, 2.0, 30.0, 0.0, (60.0, 60.0)),
    (300.0, 2.0, 30.0, 0.5, (60.0, 54.0)),  # less 10 % of jitter
    (300.0, 2.0, 240.0, 0.0, (300.0, 300.0)),  # capped
    (300.0, 2.0, 300.0, 0.999, (300.0, 240.06)),
    (300.0, 1.0, 30.0, 0.9, (30.0, 30.0)),  # never below reset_timeout
    (300.0, 3.0, 5.0, 0.0, (30.0, 30.0)),  # a nominal below reset_timeout restarts there
]


@pytest.mark.parametrize(("cap", "multiplier", "nominal", "rand", "expected"), GROWN)
def test_grown_period(
    cap: float | None, multiplier: float, nominal: float, rand: float, expected: tuple[float, float]
) -> None:
    policy = Breaker(reset_timeout=30.0, reset_timeout_max=cap, reset_multiplier=multiplier)
    assert grown_period(policy, nominal, rand) == pytest.approx(expected)


def test_failed_probes_grow_the_open_period_and_a_close_resets_it() -> None:
    circuit = opened(reset_timeout_max=50.0)
    periods = [circuit.open_until - T0]
    for _ in range(4):
        now = circuit.open_until
        probe(circuit, FAILED, now)
        periods.append(circuit.open_until - now)
    assert periods == [10.0, 20.0, 40.0, 50.0, 50.0]
    assert describe_trip(circuit.trip) == "a failed probe"
    probe(circuit, 0, circuit.open_until)
    assert circuit.state == CLOSED
    fail(circuit, T0 + 500.0)
    assert circuit.open_until - (T0 + 500.0) == 10.0


# -- what counts as a failure -----------------------------------------------------------------

STATUSES: list[tuple[int, str, str]] = [
    # status, outcome by default, outcome with failure_on_429
    (200, "success", "success"),
    (302, "success", "success"),
    (400, "ignored", "ignored"),
    (404, "ignored", "ignored"),
    (408, "failure", "failure"),
    (409, "ignored", "ignored"),
    (429, "ignored", "failure"),
    (500, "failure", "failure"),
    (501, "ignored", "ignored"),
    (502, "failure", "failure"),
    (503, "failure", "failure"),
    (504, "failure", "failure"),
    (505, "ignored", "ignored"),
    (529, "failure", "failure"),
]


@pytest.mark.parametrize(("status", "default", "on_429"), STATUSES)
def test_statuses_for_the_breaker(status: int, default: str, on_429: str) -> None:
    assert classify_for_breaker(Breaker(), status) == default
    assert classify_for_breaker(Breaker(failure_on_429=True), status) == on_429


EXCEPTIONS: list[tuple[Exception, str]] = [
    (httpx.ConnectError("refused"), "failure"),
    (httpx.ConnectTimeout("slow connect"), "failure"),
    (httpx.PoolTimeout("no connection"), "failure"),
    (httpx.ReadTimeout("slow read"), "failure"),
    (httpx.WriteTimeout("slow write"), "failure"),
    (httpx.ReadError("reset"), "failure"),
    (httpx.RemoteProtocolError("dropped"), "failure"),
    (httpx.LocalProtocolError("our request was malformed"), "ignored"),
    (httpx.UnsupportedProtocol("ftp://"), "ignored"),
    (rc.CircuitOpenError("GET /inner", 0.0), "ignored"),  # a refusal, not the server's fault
    (ValueError("a bug of ours"), "ignored"),
]


@pytest.mark.parametrize(
    ("error", "outcome"), EXCEPTIONS, ids=[type(e).__name__ for e, _ in EXCEPTIONS]
)
def test_exceptions_for_the_breaker_through_the_pipeline(
    driver: Driver, error: Exception, outcome: str
) -> None:
    clock = FakeClock()
    policy = rc.Policy(retry=None, budget=None, breaker=rc.Breaker(failure_threshold=1))
    transport = ScriptedTransport([error], clock=clock)
    client = driver.client(transport=transport, clock=clock, policy=policy)
    with pytest.raises(type(error)):
        driver.request(client, "GET", "https://api.example.com/x")
    (snapshot,) = client.breakers().values()
    assert snapshot.state == (OPEN if outcome == "failure" else CLOSED)


# -- policy fields of the growing open period -----------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"reset_timeout": 30.0, "reset_timeout_max": 10.0}, "reset_timeout_max"),
        ({"reset_timeout_max": 0}, "reset_timeout_max"),
        ({"reset_timeout_max": float("inf")}, "reset_timeout_max"),
        ({"reset_multiplier": 0.5}, "reset_multiplier"),
        ({"reset_multiplier": float("nan")}, "reset_multiplier"),
    ],
)
def test_growing_period_fields_are_validated_naming_the_field(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field) as info:
        Breaker(**kwargs)
    assert [error["loc"] for error in info.value.errors()] == [(field,)]  # type: ignore[attr-defined]


def test_the_growing_period_defaults_to_fixed() -> None:
    policy = Breaker()
    assert (policy.reset_timeout_max, policy.reset_multiplier) == (None, 2.0)
    assert Breaker(reset_timeout=30.0, reset_timeout_max=30.0).reset_timeout_max == 30.0


# (answer of failure_if, the built-in outcome) -> the outcome the breaker records
PREDICATE = [
    (None, "failure", "failure"),
    (None, "success", "success"),
    (None, "ignored", "ignored"),
    (True, "success", "failure"),
    (True, "ignored", "failure"),
    (True, "failure", "failure"),
    (False, "failure", "success"),
    (False, "ignored", "success"),
    (False, "success", "success"),
]


@pytest.mark.parametrize(("answer", "built_in", "expected"), PREDICATE)
def test_failure_if_answers(answer: bool | None, built_in: Any, expected: str) -> None:
    assert apply_failure_predicate(answer, built_in) == expected


def test_failure_if_must_be_callable() -> None:
    with pytest.raises(ValidationError, match="failure_if"):
        Breaker(failure_if="yes")  # type: ignore[arg-type]
