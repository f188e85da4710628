"""The incident monitor's own surface, without calls: what ``suppress()`` accepts."""

from __future__ import annotations

import math

import pytest

from resilient_client.incidents import IncidentMonitor
from resilient_client.testing import FakeClock


@pytest.fixture
def monitor() -> IncidentMonitor:
    return IncidentMonitor(clock=FakeClock(start_wall=1_800_000_000.0))


@pytest.mark.parametrize(
    ("given", "muted"),
    [
        ("post /v1/payments/", "POST /v1/payments"),
        ("  GET /v1/users/{id} ", "GET /v1/users/{id}"),
        ("API.Example.com", "api.example.com"),
        ("* api.example.com:8443", "* api.example.com:8443"),
    ],
)
def test_suppress_takes_keys_and_providers_in_their_normal_form(
    monitor: IncidentMonitor, given: str, muted: str
) -> None:
    # Spelt otherwise, the mute was kept under a name no incident carries: it muted nothing.
    monitor.suppress(given, until=60.0, reason="maintenance")
    assert monitor._muted("api.example.com", [muted], 1_800_000_030.0) == "maintenance"
    assert monitor._muted("api.example.com", [muted], 1_800_000_061.0) is None


@pytest.mark.parametrize(
    ("target", "until", "named"),
    [
        ("https://api.example.com/v1", 60.0, "not 'https://api.example.com/v1'"),
        ("/v1/payments", 60.0, "not '/v1/payments'"),
        ("", 60.0, "not ''"),
        ("FETCH /v1/payments", 60.0, "unknown method"),
        ("api.example.com", -5.0, "positive number of seconds"),
        ("api.example.com", math.nan, "positive number of seconds"),
    ],
)
def test_suppress_refuses_what_would_mute_nothing(
    monitor: IncidentMonitor, target: str, until: float, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        monitor.suppress(target, until=until)
