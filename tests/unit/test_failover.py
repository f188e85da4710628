"""Failover's policy and its pure rules, as tables (the behaviour against real upstreams is
in tests/integration/test_failover_upstream.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pydantic
import pytest
from breaker_support import call

import resilient_client as rc
from resilient_client._breaker import BreakerRegistry, Permit, Rejection
from resilient_client._failover import attempt_order, first_origin, next_origin, settled
from resilient_client.testing import FakeClock


def test_origins_are_kept_in_their_normal_form() -> None:
    policy = rc.Failover(
        origins=(
            "HTTPS://US.api.example.com/",
            "http://10.0.0.1:8080",
            "https://eu.example.com:443",
        )
    )
    assert policy.origins == (
        "https://us.api.example.com",
        "http://10.0.0.1:8080",
        "https://eu.example.com",
    )
    assert policy.probe_after == 30.0


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        ((), "at least 1 item"),
        ("https://us.example.com", "not one string"),
        (("ftp://us.example.com",), "'ftp://us.example.com' is not an absolute http or https URL"),
        (("us.example.com",), "'us.example.com' is not an absolute http or https URL"),
        (("https://us.example.com/v1",), "'https://us.example.com/v1' is not an origin"),
        (("https://us.example.com/?a=1",), "'https://us.example.com/?a=1' is not an origin"),
        (("https://us.example.com#top",), "'https://us.example.com#top' is not an origin"),
        (("https://u:secret@us.example.com",), "must not carry credentials"),
        (
            ("https://us.example.com", "https://US.example.com/"),
            "'https://US.example.com/' is listed twice",
        ),
        ((42,), "origins must be URL strings, got int"),
    ],
)
def test_a_bad_origin_is_refused_by_name(origins: Any, message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        rc.Failover(origins=origins)
    assert "origins" in str(refused.value)
    assert message in str(refused.value)
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize("probe_after", [0.0, -1.0])
def test_probe_after_must_be_positive(probe_after: float) -> None:
    with pytest.raises(pydantic.ValidationError, match="probe_after"):
        rc.Failover(origins=("https://us.example.com",), probe_after=probe_after)


def test_the_policy_is_frozen_and_strict() -> None:
    policy = rc.Failover(origins=("https://us.example.com",))
    with pytest.raises(pydantic.ValidationError):
        policy.probe_after = 1.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="regions"):
        rc.Failover(origins=("https://us.example.com",), regions=2)  # type: ignore[call-arg]


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "failover needs the primary origin"),
        ({"base_url": "https://api.example.com/v1"}, ValueError, "lists the primary"),
    ],
)
def test_the_client_must_name_a_primary_other_than_the_origins(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    failover = rc.Failover(origins=("https://api.example.com",))
    with pytest.raises(error, match=message):
        rc.ResilientClient(failover=failover, transport=httpx.MockTransport(_ok), **kwargs)


def test_failover_must_be_a_failover_policy() -> None:
    with pytest.raises(TypeError, match=r"failover must be a resilient_client\.Failover, not dict"):
        rc.ResilientTransport(base_url="https://api.example.com", failover={"origins": ()})  # type: ignore[arg-type]


def test_the_transport_takes_its_primary_from_its_base_url() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(503 if request.url.host == "api.example.com" else 200)

    transport = rc.ResilientTransport(
        httpx.MockTransport(handler),
        base_url="https://api.example.com",
        failover=rc.Failover(origins=("https://us.example.com:8443",)),
        policy=rc.Policy(retry=rc.Retry(backoff=rc.Backoff(initial=0.0, max=0.0))),
    )
    with httpx.Client(transport=transport) as client:
        response = client.get("https://api.example.com/v1/x?q=1")
    assert response.status_code == 200
    assert seen == ["https://api.example.com/v1/x?q=1", "https://us.example.com:8443/v1/x?q=1"]
    assert rc.resilience_info(response).origin == "https://us.example.com:8443"  # type: ignore[union-attr]


# -- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sticky", "primary_due", "expected"),
    [(0, False, 0), (0, True, 0), (1, False, 1), (1, True, 0), (2, False, 2)],
)
def test_first_origin(sticky: int, primary_due: bool, expected: int) -> None:
    assert first_origin(sticky, primary_due) == expected


@pytest.mark.parametrize(
    ("previous", "reason", "count", "expected"),
    [
        (0, "connect_error", 2, 1),
        (0, "status_503", 3, 1),
        (1, "status_503", 3, 2),
        (2, "timeout", 3, 0),  # after the last, the primary again
        (1, "status_409", 3, 1),  # in progress there: asked there again
        (0, "status_425", 2, 0),
        (0, None, 2, 1),
    ],
)
def test_next_origin(previous: int, reason: str | None, count: int, expected: int) -> None:
    assert next_origin(previous, reason, count) == expected


@pytest.mark.parametrize(
    ("start", "count", "expected"),
    [(0, 1, (0,)), (0, 3, (0, 1, 2)), (1, 3, (1, 2, 0)), (2, 3, (2, 0, 1))],
)
def test_attempt_order(start: int, count: int, expected: tuple[int, ...]) -> None:
    assert attempt_order(start, count) == expected


@pytest.mark.parametrize(
    ("sticky", "started", "answered", "expected"),
    [
        (0, 0, 0, 0),  # the primary answered: nothing moves
        (0, 0, 1, 1),  # moved off the primary and answered there: calls follow
        (1, 0, 0, 0),  # the primary's probe answered: calls come back
        (1, 1, 1, 1),
        (1, 1, 2, 2),  # the secondary failed too: calls follow to the third
        (0, 1, 1, 0),  # a call still on the secondary after the return: calls stay back
        (0, 1, 2, 0),
        (2, 0, 1, 2),  # a probe that failed over does not move calls
    ],
)
def test_settled(sticky: int, started: int, answered: int, expected: int) -> None:
    assert settled(sticky, started, answered) == expected


def test_a_configuration_file_may_name_the_origins(tmp_path: Any) -> None:
    path = tmp_path / "api.toml"
    path.write_text(
        'base_url = "https://api.example.com"\n'
        "[failover]\n"
        'origins = ["https://us.api.example.com"]\n'
        "probe_after = 60\n"
    )
    config = rc.load_config(path)
    assert config["failover"] == rc.Failover(
        origins=("https://us.api.example.com",), probe_after=60
    )
    with rc.ResilientClient(**config) as client:
        assert client.pipeline.failover is not None
        assert client.pipeline.failover.current == "https://api.example.com"


def test_a_bad_failover_table_names_the_file_and_field(tmp_path: Any) -> None:
    path = tmp_path / "api.toml"
    path.write_text('[failover]\norigins = ["https://us.api.example.com/v1"]\n')
    with pytest.raises(ValueError, match=r"api\.toml: failover\.origins: .* is not an origin"):
        rc.load_config(path)


class _SlowIsolations(rc.MemoryBreakerStorage):
    """A shared storage whose kill-switch read waits until the caller is cancelled (a
    Redis ``GET`` in flight when the caller's timeout strikes), until ``hold`` is unset."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.hold = True
        self.reading = asyncio.Event()

    async def aisolation(self, endpoint: str, /) -> str | None:
        if self.hold:
            self.reading.set()
            await asyncio.Event().wait()
        return await super().aisolation(endpoint)


async def test_a_call_cancelled_while_reading_the_kill_switch_gives_its_probe_back() -> None:
    clock = FakeClock()
    storage = _SlowIsolations(clock)
    policy = rc.Breaker(failure_threshold=1, reset_timeout=30.0)
    registry = BreakerRegistry(storage, clock)
    primary = registry.get("* api.example.com", policy)
    secondary = registry.get("* api.example.com @ https://us.example.com", policy)
    # A shared closed-state outcome travels with the next admission: hence the admit().
    call(secondary, "failure")  # the secondary's breaker opens first...
    assert isinstance(secondary.admit(), Rejection)
    clock.advance(20.0)
    call(primary, "failure")  # ...the primary's 20 s later
    assert isinstance(primary.admit(), Rejection)
    clock.advance(15.0)  # the secondary's break is over, the primary's is not
    client = rc.AsyncResilientClient(
        base_url="https://api.example.com",
        transport=httpx.MockTransport(_ok),
        clock=clock,
        breaker_storage=storage,
        failover=rc.Failover(origins=("https://us.example.com",)),
        policy=rc.Policy(retry=None, breaker=policy),
    )
    # The secondary's breaker admits the attempt as its one probe, then the endpoint's
    # kill switch is read; the caller is cancelled during that read.
    sent = asyncio.ensure_future(client.get("/v1/rates"))
    await asyncio.wait_for(storage.reading.wait(), 5.0)
    sent.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sent
    storage.hold = False
    probe = secondary.admit()  # the slot is free: no waiting out its 30 s lease
    assert isinstance(probe, Permit) and probe.probe
    await client.aclose()
