"""The default clock a pipeline takes when given none, and the test kit's override."""

from __future__ import annotations

import httpx
import pytest

import resilient_client as rc
from resilient_client._clock import SYSTEM_CLOCK, clock_override, default_clock
from resilient_client.testing import FakeClock


def test_the_default_clock_is_the_system_clock() -> None:
    assert default_clock() is SYSTEM_CLOCK


def test_an_override_is_the_default_within_its_block_and_nests() -> None:
    outer, inner = FakeClock(), FakeClock()
    with clock_override(outer):
        assert default_clock() is outer
        with clock_override(inner):
            assert default_clock() is inner
        assert default_clock() is outer
    assert default_clock() is SYSTEM_CLOCK


def test_an_override_ends_when_its_block_raises() -> None:
    with pytest.raises(KeyError), clock_override(FakeClock()):
        raise KeyError("boom")
    assert default_clock() is SYSTEM_CLOCK


def test_an_override_must_be_a_clock() -> None:
    with pytest.raises(TypeError, match="Clock"), clock_override(object()):  # type: ignore[arg-type]
        pass
    assert default_clock() is SYSTEM_CLOCK


@pytest.mark.parametrize("cls", [rc.ResilientTransport, rc.AsyncResilientTransport])
def test_a_pipeline_built_under_an_override_keeps_that_clock(cls: type) -> None:
    clock = FakeClock()
    with clock_override(clock):
        transport = cls(httpx.MockTransport(lambda request: httpx.Response(200)))
    assert transport.pipeline.clock is clock
    # Built after the block: the system clock again.
    assert cls(httpx.MockTransport(lambda r: httpx.Response(200))).pipeline.clock is SYSTEM_CLOCK


@pytest.mark.parametrize("seconds", [float("nan"), float("inf")])
def test_a_fake_clock_refuses_to_advance_by_what_is_no_duration(seconds: float) -> None:
    # nan slipped past "seconds < 0": every later reading was nan, so no deadline passed
    # and no breaker's open period ever ended, silently.
    clock = FakeClock()
    start = clock.monotonic()
    with pytest.raises(ValueError, match="finite number of seconds"):
        clock.advance(seconds)
    assert clock.monotonic() == start
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1.0)
