"""An endpoint breaker's open period that grows, and what its snapshot says.

Through :class:`EndpointBreaker` on a fake clock (``fixed=`` pins the jitter), in memory
and over the in-process shared storage, which must agree.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from breaker_support import EP, breaker_over, call

import resilient_client._breaker as room
from resilient_client._breaker import (
    BreakerSnapshot,
    BreakerStorage,
    EndpointBreaker,
    MemoryBreakerStorage,
    Permit,
    Rejection,
)
from resilient_client.testing import FakeClock

GROWING = {"failure_threshold": 1, "reset_timeout": 5.0, "reset_timeout_max": 40.0}


def open_period(breaker: EndpointBreaker, clock: FakeClock) -> float:
    rejection = breaker.admit()
    assert isinstance(rejection, Rejection)
    assert rejection.state == "open"
    return rejection.retry_at - clock.monotonic()


def fail_a_probe(breaker: EndpointBreaker, clock: FakeClock, period: float) -> None:
    clock.advance(period)
    probe = breaker.admit()
    assert isinstance(probe, Permit) and probe.probe
    breaker.record(probe, "failure", 0.01)


@pytest.fixture(params=["memory", "shared"])
def storage(request: pytest.FixtureRequest) -> Any:
    return request.param


def over(kind: str, clock: FakeClock, **policy: Any) -> EndpointBreaker:
    shared: BreakerStorage | None = MemoryBreakerStorage(clock) if kind == "shared" else None
    return breaker_over(shared, clock, **policy)


@pytest.mark.parametrize(
    ("rand", "periods"),
    [
        (0.0, [5.0, 10.0, 20.0, 40.0, 40.0]),  # doubling up to the cap
        (0.5, [5.0, 9.0, 18.0, 36.0, 36.0]),  # less 10 % of jitter, never past the cap
    ],
)
def test_each_failed_probe_grows_the_open_period_up_to_the_cap(
    storage: str, rand: float, periods: list[float]
) -> None:
    clock = FakeClock(fixed=rand)
    breaker = over(storage, clock, **GROWING)
    call(breaker, "failure")
    seen = [open_period(breaker, clock)]
    for _ in periods[1:]:
        fail_a_probe(breaker, clock, seen[-1])
        seen.append(open_period(breaker, clock))
    assert seen == pytest.approx(periods)


def test_a_breaker_that_closes_starts_again_from_reset_timeout(storage: str) -> None:
    clock = FakeClock(fixed=0.0)
    breaker = over(storage, clock, **GROWING)
    call(breaker, "failure")
    assert open_period(breaker, clock) == pytest.approx(5.0)  # (a shared one hears it here)
    fail_a_probe(breaker, clock, 5.0)
    fail_a_probe(breaker, clock, 10.0)
    assert open_period(breaker, clock) == pytest.approx(20.0)
    clock.advance(20.0)
    call(breaker, "success")  # the probe closes it
    assert breaker.snapshot().state == "closed"
    call(breaker, "failure")
    assert open_period(breaker, clock) == pytest.approx(5.0)


def test_without_a_cap_the_open_period_stays_fixed(storage: str) -> None:
    clock = FakeClock(fixed=0.9)
    breaker = over(storage, clock, failure_threshold=1, reset_timeout=5.0, reset_multiplier=3.0)
    call(breaker, "failure")
    assert open_period(breaker, clock) == pytest.approx(5.0)
    for _ in range(3):
        fail_a_probe(breaker, clock, 5.0)
        assert open_period(breaker, clock) == pytest.approx(5.0)


def test_two_breakers_sharing_a_storage_see_one_grown_period() -> None:
    clock = FakeClock(fixed=0.0)
    storage = MemoryBreakerStorage(clock)
    a = breaker_over(storage, clock, **GROWING)
    b = breaker_over(storage, clock, **GROWING)
    call(a, "failure")
    a.admit()  # sends the failure
    fail_a_probe(a, clock, 5.0)
    assert open_period(b, clock) == pytest.approx(10.0)


# -- the snapshot, read by a person --------------------------------------------------------


def test_an_open_breaker_says_what_opened_it_and_when_it_probes() -> None:
    clock = FakeClock()
    breaker = breaker_over(None, clock, failure_threshold=5, reset_timeout=30.0)
    for _ in range(5):
        call(breaker, "failure")
    clock.advance(18.0)
    snap = breaker.snapshot()
    assert snap.retry_in == pytest.approx(12.0)
    assert snap.opened_by == "5 failures in a row"
    assert str(snap) == (
        "GET /v1/users/{id}: open (opened by 5 failures in a row), next probe in 12.0 s"
    )
    assert str(snap.retry_at) not in str(snap)  # no monotonic instant


@pytest.mark.parametrize(
    ("policy", "steps", "text"),
    [
        ({"failure_threshold": 5}, ["failure", "failure"], "{ep}: closed, 2 failures in a row"),
        ({"failure_threshold": 5}, ["success"] * 10, "{ep}: closed, 0 failures in a row"),
        (
            {"window": "count", "window_size": 10, "minimum_calls": 10},
            ["success", "failure", "success", "success"],
            "{ep}: closed, 1 of 4 calls failed (25 %)",
        ),
        (
            {
                "window": "count",
                "window_size": 4,
                "failure_rate_threshold": 0.5,
                "reset_timeout": 30.0,
            },
            ["success", "failure", "success", "failure"],
            "{ep}: open (opened by 2 of 4 calls failed (50 %)), next probe in 30.0 s",
        ),
        (
            {"failure_threshold": 1, "reset_timeout": 5.0, "half_open_max_calls": 2},
            ["failure", "advance", "probe"],
            "{ep}: half_open (opened by 1 failure in a row), 1 probe in flight, "
            "0 probes succeeded, next probe now",
        ),
        (
            {"failure_threshold": 1, "reset_timeout": 5.0},
            ["failure", "advance", "probe"],
            "{ep}: half_open (opened by 1 failure in a row), 1 probe in flight, "
            "0 probes succeeded, next probe in 5.0 s",
        ),
        (
            {"failure_threshold": 1, "reset_timeout": 5.0, "slow_call_duration": 1.0},
            ["failure", "advance", "slow"],
            "{ep}: open (opened by a slow probe), next probe in 5.0 s",
        ),
    ],
)
def test_snapshot_text(policy: dict[str, Any], steps: list[str], text: str) -> None:
    clock = FakeClock()
    breaker = breaker_over(None, clock, **policy)
    for step in steps:
        if step == "advance":
            clock.advance(5.0)
        elif step == "probe":
            assert isinstance(breaker.admit(), Permit)
        elif step == "slow":
            call(breaker, "success", 2.0)
        else:
            call(breaker, step)  # type: ignore[arg-type]
    assert str(breaker.snapshot()) == text.format(ep=EP)


def test_a_shared_snapshot_says_so_and_what_opened_the_fleet() -> None:
    clock = FakeClock()
    storage = MemoryBreakerStorage(clock)
    a = breaker_over(storage, clock, failure_threshold=2, reset_timeout=5.0)
    b = breaker_over(storage, clock, failure_threshold=2, reset_timeout=5.0)
    call(a, "failure")
    call(a, "failure")
    a.admit()  # sends the second failure: the fleet's breaker opens
    b.admit()
    assert str(b.snapshot()) == (
        f"{EP}: open (opened by 2 failures in a row), next probe in 5.0 s, shared"
    )


def test_the_snapshot_keeps_its_attributes() -> None:
    names = set(BreakerSnapshot.__dataclass_fields__)
    assert names >= {
        "endpoint", "state", "failures", "successes", "calls", "slow_calls", "failure_rate",
        "slow_call_rate", "retry_at", "probes_in_flight", "shared",
    }  # fmt: skip


# -- the room's layout ---------------------------------------------------------------------


def room_imports() -> dict[str, set[str]]:
    """Module -> the room's modules it imports, TYPE_CHECKING imports included."""
    folder = Path(room.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in folder.glob("_*.py"):
        if path.name == "__init__.py":
            continue
        edges = graph.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    edges.add(node.module)
                else:
                    edges.update(alias.name for alias in node.names)
            elif (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith("resilient_client._breaker.")
            ):
                edges.add((node.module or "").rsplit(".", 1)[1])
    return graph


def test_the_room_has_six_modules_importing_without_a_cycle() -> None:
    graph = room_imports()
    assert sorted(graph) == ["_breaker", "_circuit", "_lua", "_policy", "_redis", "_storage"]
    order: list[str] = []  # a topological order exists only without a cycle
    while len(order) < len(graph):
        ready = [m for m in graph if m not in order and graph[m] <= set(order)]
        assert ready, f"import cycle among {sorted(set(graph) - set(order))}"
        order.extend(sorted(ready))
    assert order[0] == "_policy"
