"""Breakers over a shared storage: one exchange per call, sharing, fallback and recovery.

The in-process :class:`MemoryBreakerStorage` stands in for Redis here (same protocol,
same state machine); ``tests/integration/test_breaker_redis.py`` runs the real thing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from breaker_support import breaker_over, call, free_port

from resilient_client._breaker import EndpointBreaker, Permit, Rejection
from resilient_client._breaker._circuit import RATE_SCALE, TIME_BUCKETS
from resilient_client._breaker._lua import REPLY_FIELDS, SCRIPT
from resilient_client._breaker._redis import RedisBreakerStorage, _key_base
from resilient_client._breaker._storage import (
    BreakerStorage,
    BreakerStorageUnavailable,
    Exchange,
    MemoryBreakerStorage,
    SharedView,
)
from resilient_client.testing import FakeClock


class Spy:
    """A storage that counts exchanges, can go down, and can be interrupted once.

    Its async exchange awaits (a checkpoint, under any async library) before it reaches
    the state, as a network storage does.
    """

    def __init__(self, inner: BreakerStorage) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []
        self.down = False
        self.interrupt: type[BaseException] | None = None

    def _check(self) -> None:
        if self.down:
            raise BreakerStorageUnavailable("down")

    def _maybe_interrupt(self) -> None:
        if self.interrupt is not None:
            exc, self.interrupt = self.interrupt, None
            raise exc()

    def exchange(self, request: Exchange, /) -> SharedView:
        self._check()
        self.exchanges.append(request)
        view = self.inner.exchange(request)
        self._maybe_interrupt()
        return view

    async def aexchange(self, request: Exchange, /) -> SharedView:
        self._check()
        self.exchanges.append(request)
        await anyio.lowlevel.checkpoint()
        view = await self.inner.aexchange(request)
        self._maybe_interrupt()
        return view


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def spy(clock: FakeClock) -> Spy:
    return Spy(MemoryBreakerStorage(clock))


def opened(
    storage: BreakerStorage, clock: FakeClock, reset_timeout: float = 1.0
) -> EndpointBreaker:
    """A breaker over ``storage`` tripped by one failure, which the storage has heard."""
    breaker = breaker_over(storage, clock, failure_threshold=1, reset_timeout=reset_timeout)
    call(breaker, "failure")
    breaker.admit()  # sends the failure: open
    return breaker


def test_the_storage_protocol_is_met() -> None:
    assert isinstance(MemoryBreakerStorage(), BreakerStorage)
    assert isinstance(RedisBreakerStorage(), BreakerStorage)


def test_a_closed_call_costs_one_exchange(spy: Spy, clock: FakeClock) -> None:
    breaker = breaker_over(spy, clock, failure_threshold=100)
    for outcome in ("success", "failure", "success", "failure"):
        call(breaker, outcome)
    assert len(spy.exchanges) == 4
    assert all(e.admit_token is not None for e in spy.exchanges)


def test_outcomes_travel_with_the_next_admission(spy: Spy, clock: FakeClock) -> None:
    breaker = breaker_over(spy, clock, failure_threshold=100)
    call(breaker, "failure")
    call(breaker, "ignored")
    call(breaker, "success")
    call(breaker, "failure")
    assert [e.pending for e in spy.exchanges] == [(), ((0, 1),), (), ((0, 0),)]


def test_a_half_open_probe_costs_one_more_exchange(spy: Spy, clock: FakeClock) -> None:
    breaker = breaker_over(spy, clock, failure_threshold=1, reset_timeout=1.0)
    call(breaker, "failure")
    assert isinstance(breaker.admit(), Rejection)
    clock.advance(1.0)
    before = len(spy.exchanges)
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    assert probe.probe
    breaker.record(probe, "success", 0.01)
    assert len(spy.exchanges) - before == 2
    assert breaker.snapshot().state == "closed"


def test_breakers_of_two_registries_trip_together(clock: FakeClock) -> None:
    storage = MemoryBreakerStorage(clock)
    a = breaker_over(storage, clock, failure_threshold=4)
    b = breaker_over(storage, clock, failure_threshold=4)
    attempts = 0
    for turn in range(8):
        if isinstance(call((a, b)[turn % 2], "failure"), Permit):
            attempts += 1
    # Each process holds back at most one outcome until its next call.
    assert attempts <= 4 + 2
    assert isinstance(a.admit(), Rejection)
    assert isinstance(b.admit(), Rejection)
    assert a.snapshot().shared
    assert b.snapshot().state == "open"


def test_half_open_probes_are_limited_across_registries(clock: FakeClock) -> None:
    storage = MemoryBreakerStorage(clock)
    a = opened(storage, clock)
    b = breaker_over(storage, clock, failure_threshold=1, reset_timeout=1.0)
    clock.advance(1.0)
    probe = a.admit()
    assert isinstance(probe, Permit)
    rejected = b.admit()
    assert isinstance(rejected, Rejection)
    assert rejected.state == "half_open"
    a.release(probe)
    assert isinstance(b.admit(), Permit)


def test_an_unreachable_storage_falls_back_to_local_state(spy: Spy, clock: FakeClock) -> None:
    breaker = breaker_over(spy, clock, failure_threshold=3)
    call(breaker, "failure")
    spy.down = True
    results = [call(breaker, "failure") for _ in range(4)]
    # The pending failure is counted locally; local counts start afresh otherwise.
    assert [isinstance(r, Permit) for r in results] == [True, True, False, False]
    snap = breaker.snapshot()
    assert (snap.state, snap.shared) == ("open", False)


def test_the_shared_state_takes_over_again_when_the_storage_answers(
    spy: Spy, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = breaker_over(spy, clock, failure_threshold=1)
    spy.down = True
    call(breaker, "failure")
    assert breaker.snapshot().state == "open"
    spy.down = False
    with caplog.at_level(logging.INFO, logger="resilient_client.breaker"):
        assert isinstance(breaker.admit(), Permit)  # the fleet's breaker is closed
    assert breaker.snapshot().shared
    assert any("open -> closed" in r.getMessage() for r in caplog.records)


def test_an_open_state_from_the_fleet_survives_a_storage_outage(spy: Spy, clock: FakeClock) -> None:
    opened(spy.inner, clock, reset_timeout=10.0)  # the fleet's breaker is now open
    breaker = breaker_over(spy, clock, failure_threshold=1, reset_timeout=10.0)
    assert isinstance(breaker.admit(), Rejection)
    spy.down = True
    clock.advance(5.0)
    assert isinstance(breaker.admit(), Rejection)
    clock.advance(5.0)
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    assert probe.probe


def test_a_probe_finished_while_the_storage_is_down_counts_locally(
    spy: Spy, clock: FakeClock
) -> None:
    breaker = opened(spy, clock)
    clock.advance(1.0)
    probe = breaker.admit()
    assert isinstance(probe, Permit)
    spy.down = True
    breaker.record(probe, "failure", 0.01)
    assert breaker.snapshot().state == "open"


def test_an_interrupted_admission_gives_its_probe_slot_back(spy: Spy, clock: FakeClock) -> None:
    breaker = opened(spy, clock)
    clock.advance(1.0)
    spy.interrupt = KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        breaker.admit()  # the storage granted a probe nobody received
    assert isinstance(breaker.admit(), Permit)


async def test_a_cancelled_async_admission_gives_its_probe_slot_back(
    spy: Spy, clock: FakeClock
) -> None:
    breaker = breaker_over(spy, clock, failure_threshold=1, reset_timeout=1.0)
    permit = await breaker.aadmit()
    assert isinstance(permit, Permit)
    await breaker.arecord(permit, "failure", 0.01)
    await breaker.aadmit()
    clock.advance(1.0)
    spy.interrupt = asyncio.CancelledError
    with pytest.raises(asyncio.CancelledError):
        await breaker.aadmit()
    probe = await breaker.aadmit()
    assert isinstance(probe, Permit)
    assert probe.probe


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_probe_released_by_a_cancelled_caller_frees_the_shared_slot(
    clock: FakeClock, backend: str
) -> None:
    storage = MemoryBreakerStorage(clock)
    breaker = opened(Spy(storage), clock)
    other = breaker_over(storage, clock, failure_threshold=1, reset_timeout=1.0)
    clock.advance(1.0)

    async def cancelled_probe() -> bool:
        probe = await breaker.aadmit()
        assert isinstance(probe, Permit) and probe.probe
        with anyio.CancelScope() as scope:
            scope.cancel()
            try:
                await anyio.sleep_forever()  # the attempt, cancelled
            except BaseException:
                # What AsyncDriver._attempt does, still inside the cancelled scope.
                await breaker.arecord(probe, "ignored", 0.0)
                raise
        return scope.cancelled_caught

    assert anyio.run(cancelled_probe, backend=backend)
    probe = other.admit()  # the only slot was given back, not left to its lease
    assert isinstance(probe, Permit) and probe.probe


def test_a_shared_half_open_rejection_tells_when_to_retry(clock: FakeClock) -> None:
    storage = MemoryBreakerStorage(clock)
    a = opened(storage, clock, reset_timeout=5.0)
    b = breaker_over(storage, clock, failure_threshold=1, reset_timeout=5.0)
    assert b.retry_at() is None  # b has not heard of it yet
    assert isinstance(b.admit(), Rejection)
    assert b.retry_at() == pytest.approx(clock.monotonic() + 5.0)  # open, from the fleet
    clock.advance(5.0)
    probe = a.admit()
    assert isinstance(probe, Permit) and probe.probe
    clock.advance(1.0)
    rejection = b.admit()  # every fleet slot is taken; b's mirror holds none of them
    assert isinstance(rejection, Rejection)
    assert rejection.state == "half_open"
    assert rejection.retry_at == pytest.approx(clock.monotonic() + 4.0)  # the lease's end
    snap = b.snapshot()
    assert (snap.state, snap.shared, snap.retry_at) == ("half_open", True, rejection.retry_at)
    assert b.retry_at() == rejection.retry_at
    clock.advance(4.0)  # the probe's lease is over: b may get the slot
    assert b.retry_at() is None
    assert b.snapshot().retry_at is None


def test_a_shared_retry_at_is_forgotten_once_admitted(clock: FakeClock) -> None:
    storage = MemoryBreakerStorage(clock)
    a = opened(storage, clock, reset_timeout=5.0)
    b = breaker_over(storage, clock, failure_threshold=1, reset_timeout=5.0)
    clock.advance(5.0)
    probe = a.admit()
    assert isinstance(probe, Permit)
    assert isinstance(b.admit(), Rejection)
    assert b.retry_at() is not None
    a.release(probe)
    probe = b.admit()
    assert isinstance(probe, Permit) and probe.probe
    assert b.retry_at() is None
    b.record(probe, "success", 0.01)
    assert (b.snapshot().state, b.retry_at()) == ("closed", None)


async def test_async_breakers_share_state_with_sync_ones(clock: FakeClock) -> None:
    storage = MemoryBreakerStorage(clock)
    sync = breaker_over(storage, clock, failure_threshold=2)
    async_ = breaker_over(storage, clock, failure_threshold=2)
    call(sync, "failure")
    call(sync, "failure")
    sync.admit()
    assert isinstance(await async_.aadmit(), Rejection)


# -- RedisBreakerStorage without a server ------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"key_ttl": -1}, "key_ttl"),
        ({"warn_interval": -1}, "warn_interval"),
        ({"reconnect_interval": -0.5}, "reconnect_interval"),
        ({"namespace": ""}, "namespace"),
        ({"url": "http://localhost:6379"}, "redis"),
    ],
)
def test_redis_storage_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisBreakerStorage(**kwargs)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:Zm9v/YmFy@redis:6379/0",  # a base64 password with a '/' not percent-encoded
        "redis://default:p4ss:w0rd#1@redis:6379/0",
        "rediss://:s3cret?x@redis:6380",
    ],
)
def test_a_malformed_url_is_refused_without_its_password(url: str) -> None:
    # redis-py reads what follows the first '/', '?' or '#' as the host part, and its
    # error quotes the "port" it found there: the password's beginning.
    with pytest.raises(ValueError) as refused:
        RedisBreakerStorage(url)
    error = refused.value
    text = "".join(str(e) for e in (error, error.__cause__, error.__context__) if e)
    assert not any(secret in text for secret in ("Zm9v", "p4ss", "w0rd", "s3cret"))
    assert "url" in str(error) and "\n" not in str(error)


def test_the_lua_port_shares_the_python_ports_constants() -> None:
    assert f"local BUCKETS = {TIME_BUCKETS}\n" in SCRIPT
    assert f"local RATE_SCALE = {RATE_SCALE}\n" in SCRIPT
    assert f"local reply = table.concat({{{', '.join(REPLY_FIELDS)}}}, ',')" in SCRIPT
    assert "$" not in SCRIPT


def test_keys_keep_the_endpoint_readable_and_cluster_safe() -> None:
    assert _key_base("svc", "GET /v1/users/{id}") == "svc:breaker:{GET /v1/users/%7Bid%7D}"
    assert _key_base("svc", "GET /a%7Bb") != _key_base("svc", "GET /a{b")


def test_unreachable_redis_warns_once_per_interval_and_skips_retries(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    storage = RedisBreakerStorage(
        f"redis://127.0.0.1:{free_port()}/0",
        warn_interval=30.0,
        reconnect_interval=1.0,
        clock=clock,
    )
    breaker = breaker_over(storage, clock, failure_threshold=1000)
    with caplog.at_level(logging.WARNING, logger="resilient_client.breaker"):
        for _ in range(20):
            assert isinstance(call(breaker, "success"), Permit)
        assert storage.round_trips == 1  # then no retry for reconnect_interval
        clock.advance(1.0)
        call(breaker, "success")
        assert storage.round_trips == 2
        clock.advance(29.0)
        call(breaker, "success")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "unreachable" in warnings[0].getMessage()
    assert not breaker.snapshot().shared


async def test_unreachable_redis_falls_back_on_the_async_path(clock: FakeClock) -> None:
    storage = RedisBreakerStorage(f"redis://127.0.0.1:{free_port()}/0", clock=clock)
    breaker = breaker_over(storage, clock, failure_threshold=2)
    for _ in range(2):
        permit = await breaker.aadmit()
        assert isinstance(permit, Permit)
        await breaker.arecord(permit, "failure", 0.01)
    assert isinstance(await breaker.aadmit(), Rejection)
    await storage.aclose()
    storage.close()


async def test_an_async_record_of_a_closed_call_makes_no_exchange(
    spy: Spy, clock: FakeClock
) -> None:
    breaker = breaker_over(spy, clock, failure_threshold=5)
    permit = await breaker.aadmit()
    assert isinstance(permit, Permit)
    await breaker.arecord(permit, "failure", 0.01)
    assert len(spy.exchanges) == 1  # the admission's
    second = await breaker.aadmit()
    assert isinstance(second, Permit)
    await breaker.arecord(second, "ignored", 0.01)
    await breaker.aadmit()
    assert len(spy.exchanges) == 3  # admissions only: the outcomes rode along
    assert [len(e.pending) for e in spy.exchanges] == [0, 1, 0]
